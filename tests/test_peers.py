"""The benchmark peers compute meanfield's step: velocities agree to 1e-12 (NumPy always,
JAX and PyTorch when installed), and one step of each moves the parameters the same."""
import numpy as np
import pytest

import meanfield as mf
from benchmarks import peers


def _obj(L, dtype=np.float64):
    net = mf.stack(5, [7, 6, 5][:L], [2, 3][:L - 1], seed=L, dtype=dtype)
    X = mf.data.Gaussian(5, 0.5).sample(40, 3).astype(dtype)
    return mf.Objective(net, mf.Dataset(X, mf.ReluNorm(1.0)(X)))


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("name", ["numpy", "jax", "pytorch"])
def test_peer_velocity_and_step_match_meanfield(name, L):
    obj = _obj(L)
    step, vel = peers.PEERS[name](obj, 0.1)
    if step is None:
        pytest.skip(vel)
    assert peers.check(name, vel, obj, 1e-12) <= 1e-12
    step()
    _, V = obj.velocity()
    expected = obj.network.theta + 0.1 * V   # one meanfield Euler step
    assert np.max(np.abs(step.theta() - expected)) <= 1e-12 * np.max(np.abs(expected))


def test_check_refuses_a_wrong_peer():
    obj = _obj(2)
    _, V = obj.velocity()
    with pytest.raises(RuntimeError, match="disagree"):
        peers.check("broken", V * (1 + 1e-6), obj, 1e-10)
