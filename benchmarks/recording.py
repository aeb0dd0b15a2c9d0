"""``python -m benchmarks recording``: what HDF5 recording costs on the reference problem.

The reference problem of ``benchmarks step`` (d = 16, N = 8192, [RZG] m₁ = m₂ = 4096,
k = 1, ReLU, float64, Euler) runs ``--steps`` steps twice per round: with recording off
(the bare solver loop) and with the HDF5 recorder at ``series_every = 1``,
``snapshot_every = 100``, ``checkpoint_every = 100`` (no test set, so the series row costs
no extra forward pass).  Rounds alternate the two so that drifts in machine speed hit both;
the end-to-end overhead is the ratio of the best per-round times.  Because the machine's
speed drifts by several per cent between rounds, the time spent inside the recorder (its
calls and the final flush, timed directly) is reported too, as a share of the step time:
that is the recording cost without the drift.
"""
from __future__ import annotations

import os
import tempfile
import time


def run(args) -> dict:
    import solvers

    from meanfield.store import H5Recorder

    from .step import problem

    obj = problem(args.d, args.n, args.m, args.k, "float64")
    net = obj.network
    record = {"series_every": 1, "snapshot_every": 100, "checkpoint_every": 100,
              "test_every": 1, "compression": "none"}
    stop = solvers.Stop(steps=args.steps)
    obj(net.theta, net.theta.copy(), obj.default_scales(), 0)  # compile / load the kernels
    off, on, inside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            t = time.perf_counter()
            for _ in solvers.iterate(obj, net.theta, method="euler", dt=1e-3, stop=stop,
                                     every=args.steps):
                pass
            off.append(time.perf_counter() - t)
            path = os.path.join(tmp, f"run{r}.h5")
            t = time.perf_counter()
            rec = H5Recorder.create(path, network=net, record=record, config_text="",
                                    seeds={"init": net.seed, "data": obj.data.seed, "noise": 0},
                                    train=obj.data)
            spent = 0.0
            for st in solvers.iterate(obj, net.theta, method="euler", dt=1e-3, stop=stop,
                                      every=rec.every()):
                t1 = time.perf_counter()
                rec(st)
                spent += time.perf_counter() - t1
            t1 = time.perf_counter()
            rec.finish("complete")
            rec.close()
            spent += time.perf_counter() - t1
            on.append(time.perf_counter() - t)
            inside.append(spent)
            size = os.path.getsize(path)
    res = {"steps": args.steps, "rounds": args.rounds, "off_s": off, "on_s": on,
           "inside_recorder_s": inside,
           "overhead_percent": 100 * (min(on) / min(off) - 1),
           "recorder_percent": 100 * max(i / (o - i) for i, o in zip(inside, on)),
           "file_mb": size / 2 ** 20}
    print(f"reference problem, {args.steps} Euler steps, series_every=1, snapshot_every=100, "
          f"checkpoint_every=100 ({res['file_mb']:.1f} MB file)")
    print("recording off: " + ", ".join(f"{x:.2f}" for x in off) + " s")
    print("recording on:  " + ", ".join(f"{x:.2f}" for x in on) + " s")
    print("inside the recorder: " + ", ".join(f"{x:.3f}" for x in inside) + " s")
    print(f"end-to-end overhead (best of {args.rounds} each): {res['overhead_percent']:+.1f} %")
    print(f"time inside the recorder / time of the steps (worst round): {res['recorder_percent']:.2f} %")
    return res
