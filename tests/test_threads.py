"""Bit-identical trajectories for NUMBA_NUM_THREADS = 1 and 2 (fresh processes, one of
them compiling the kernels afresh), in float64 (with Langevin noise) and float32."""
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import hashlib, numpy as np, meanfield as mf, solvers
net = mf.rzg_three_layer(5, 70, 45, k=2, activations=("relu", "tanh"), seed=0)
X = mf.data.Gaussian(5, 0.5).sample(300, 1)
ds = mf.Dataset(X, mf.ReluNorm(1.0)(X))
res = mf.train(net, ds, method="heun", dt=0.05, stop=solvers.Stop(steps=8), seed=4,
               schedule=[solvers.Stage(langevin=solvers.Langevin(tau=1e-3, lam=0.1))])
r32 = mf.train(net.astype(np.float32), ds, method="rk4", dt=0.05, stop=solvers.Stop(steps=4))
import numba
print(numba.get_num_threads(), hashlib.sha256(res.state.y.tobytes()).hexdigest(),
      hashlib.sha256(np.asarray(res.history.loss).tobytes()).hexdigest(),
      hashlib.sha256(r32.state.y.tobytes()).hexdigest())
"""


def run(threads, cache_dir=None):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    n, *hashes = out.stdout.split()
    assert int(n) == threads
    return hashes


def test_one_and_two_threads_bit_identical(tmp_path):
    """The one-thread process compiles every kernel afresh (an empty Numba cache); the
    two-thread process uses the shared cache: neither the thread count nor where the
    machine code came from may change a bit."""
    assert run(1, cache_dir=tmp_path / "numba-cache") == run(2)
