"""Width sweeps: members of several widths and seeds against one wide reference, trained
through the same schedule and compared at common flow times (docs/math.md §3).

A sweep is 1 + W tasks: the reference (M particles per block), then one task per width
that trains that width's S seeds together (one batched kernel call per step, see
:class:`solvers.Ensemble`) and measures, at every gap time, every seed's gaps to the
reference's state at that time.  Tasks are pure functions of (configuration, options,
reference trace), so they give the same bits wherever they run: in this process (the
default), on a Dask ``LocalCluster`` (``workers=N``) or on a running Dask cluster
(``scheduler="tcp://host:port"``).  The caller alone writes the gap file
(:mod:`.gapfile`), once at the start and after every finished task.

Gap times: the initial state, every ``every`` steps, and the final state.  A sweep needs
a fixed-step method (members and reference take the same steps) and a stop by steps or
flow time (not by loss).
"""
from __future__ import annotations

import copy
import errno
import functools
import logging
import math
import os
import sys
from collections.abc import Sequence

import numpy as np

import solvers

from .. import config as C
from .. import streams
from ..store import fileformat
from .._h5lock import LockedError, WriterLock
from ..parallel import available_cores
from ..distances import mmd2, sliced_wasserstein2, wasserstein2
from ..experiment import drive, interactive
from ..objective import Dataset, Objective, Stream
from . import gapfile
from .coupling import member
from .decomposition import applies as decomposition_applies
from .decomposition import decomposition
from .gapfile import GapWriteError, open_gap
from .measures import block_clouds, coupling_gap, feature_gap, output_gap
from .options import (SweepError, SweepOptions, check_int, check_memory, make_options,
                      reference_config, reference_experiment)
from .rates import weighted_power_fit
from .result import DECOMPOSITION_TERMS, GapResult, Trace

NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO)   # a full disk, in its forms



def trained_cloud(network, l: int) -> np.ndarray:
    """Block l's particles restricted to its trained coordinates (m, p)."""
    b = network.blocks[l]
    cols = {"u": range(0, b.k_in), "c": range(b.k_in, b.k_in + 1),
            "v": range(b.k_in + 1, b.k_in + 1 + b.k_out)}
    keep = [i for p in ("u", "c", "v") if p in b.train for i in cols[p]]
    return block_clouds(network, l)[:, keep]


def distance_indices(M: int, n: int, l: int) -> np.ndarray:
    """(2n,) a seeded permutation prefix of block l's reference particles: the first n
    are the reference's cloud in every distance, the next n its noise-floor partner."""
    return streams.reference_cloud(l + 1).permutation(M)[:2 * n]


def _distances(a, b, opts, key) -> tuple:
    if a.shape[1] == 0:
        return math.nan, math.nan, math.nan
    return (wasserstein2(a, b),
            sliced_wasserstein2(a, b, n_projections=opts.n_projections, seed=key),
            mmd2(a, b, bandwidth=opts.bandwidth))


# ----------------------------------------------------------------------------------
# the tasks
# ----------------------------------------------------------------------------------
def _terms(d) -> list:
    """The terms of a :class:`.decomposition.Decomposition` in DECOMPOSITION_TERMS order."""
    return [getattr(d, k) for k in DECOMPOSITION_TERMS]


def _gap_loop(exp, field, y0, every, hook):
    """The run loop of a task; a divergence is a status, Ctrl-C propagates (a task that
    was interrupted is not finished and must not be stored as such)."""
    final, status, message = drive(field, y0, hooks=(hook,), every=every, **exp.solver_kwargs())
    if status == "interrupted":
        raise KeyboardInterrupt
    return final, status, message


def training_data(exp, cfg: dict, opts: SweepOptions, member: int | None = None):
    """What the reference (``member`` None) or member ``member`` trains on: the
    experiment's fixed sample; with ``samples = "fresh"`` a
    :class:`~meanfield.objective.Stream` of ``data.n_train`` new points every step, one
    stream for all; with ``samples = "independent"`` such a stream of the member's own
    (the reference keeps the shared one).  Keys: :func:`meanfield.streams.sweep_samples_seed`."""
    if opts.samples == "fixed":
        return exp.train
    own = member if opts.samples == "independent" else None
    return Stream(C.make_distribution(cfg).sample, exp.target, int(cfg["data"]["n_train"]),
                  seed=streams.sweep_samples_seed(cfg["seed"]["data"], own))


def limit_clouds(network) -> list:
    """Per block, a network's particles in the limit's coordinates, trained ones only:
    the first block as (‖u‖, c, v) (the direction of u is what the limit integrates
    out), a second block as it is (a, b, w)."""
    b = network.blocks[0]
    cols = {"u": np.linalg.norm(b.u.astype(float), axis=1)[:, None], "c": b.c[:, None].astype(float),
            "v": b.v.astype(float)}
    first = [cols[p] for p in ("u", "c", "v") if p in b.train]
    out = [np.concatenate(first, axis=1) if first else np.zeros((b.m, 0))]
    return out + [trained_cloud(network, l) for l in range(1, network.L)]


def limit_indices(weights, n: int, l: int) -> np.ndarray:
    """(2n,) block l's nodes drawn by their weights (seeded, the same at every gap
    time): the first n are the limit's distance cloud, the next n its noise-floor
    partner."""
    p = np.asarray(weights, dtype=float)
    return streams.limit_cloud(l + 1).choice(p.size, size=2 * n, replace=True, p=p / p.sum())


def run_limit_reference(cfg: dict, opts: SweepOptions) -> Trace:
    """The reference task against the limit: integrate the exact limit
    (:func:`meanfield.config.make_limit`) through the configuration's schedule, with its
    method and step, and keep at every gap time its state, f and the blocks' outputs on
    the test sample, its population loss, the floors of the distances (two samples of
    its law) and the error estimate (the same integration with half the nodes per
    rule: initial law, norm law and, for smooth activations, directions)."""
    exp = reference_experiment(cfg, opts)
    lim = C.make_limit(cfg, nodes=opts.limit_nodes, norm_nodes=opts.limit_norm_nodes,
                       rule=opts.limit_rule)
    coarse = C.make_limit(cfg, nodes=max(2, opts.limit_nodes // 2),
                          norm_nodes=max(4, opts.limit_norm_nodes // 2), direction_nodes=32,
                          rule=opts.limit_rule)
    norms = np.linalg.norm(exp.test.X, axis=1)
    rows = {"step": [], "t": [], "theta": [], "outputs": [], "loss": [], "fine": [],
            "features": [], "clouds": []}

    def hook(st):
        rows["step"].append(st.step)
        rows["t"].append(st.t)
        rows["theta"].append(st.y.copy())
        f, blocks = lim.f_and_blocks(st.y, norms)   # one forward pass on the test norms
        rows["outputs"].append(f)
        rows["features"].append(blocks)
        rows["fine"].append(lim.profile(st.y))   # F on the fine norm rule's nodes
        rows["loss"].append(lim.loss_of(rows["fine"][-1]))
        rows["clouds"].append(lim.clouds(st.y))

    final, status, message = _gap_loop(exp, lim, lim.y0, opts.every, hook)
    coarse_rows = []
    _gap_loop(exp, coarse, coarse.y0, opts.every,
              lambda st: coarse_rows.append((st.step, coarse.profile(st.y, lim.rho))))
    error = np.full(len(rows["t"]), np.nan)
    for step, Fc in coarse_rows:
        if step in rows["step"]:
            j = rows["step"].index(step)
            error[j] = math.sqrt(float(np.dot(lim.wrho, (rows["fine"][j] - Fc) ** 2)))
    T, L, n = len(rows["t"]), len(rows["features"][0]), opts.distance_size
    weights = [w for _, w in rows["clouds"][0]]
    idx = [limit_indices(w, n, l) for l, w in enumerate(weights)]
    floor = np.full((2, opts.W, T, L), np.nan)
    for j in range(T):
        for l, (cloud, _) in enumerate(rows["clouds"][j]):
            if not cloud.shape[1]:
                continue
            for w, widths in enumerate(opts.widths):
                k = min(widths[l], n)
                a, b = cloud[idx[l][:n]], cloud[idx[l][n:n + k]]
                floor[0, w, j, l] = wasserstein2(b, a)
                floor[1, w, j, l] = sliced_wasserstein2(
                    b, a, n_projections=opts.n_projections, seed=streams.projections_seed(l + 1))
    loss = np.asarray(rows["loss"])
    return Trace(t=np.asarray(rows["t"]), step=np.asarray(rows["step"], dtype=np.int64),
                 theta=np.asarray(rows["theta"]), outputs=np.asarray(rows["outputs"]),
                 loss_train=loss, loss_test=loss.copy(),
                 features=[np.asarray([f[l] for f in rows["features"]]) for l in range(L)],
                 decomposition=None, w2_floor=floor[0], sliced_w2_floor=floor[1],
                 status=status, message=message, weights=np.concatenate(weights),
                 error=error)


def run_reference(cfg: dict, opts: SweepOptions) -> Trace:
    """The reference task: train the M-particle network and keep, at every gap time,
    its particles, outputs and features on the test sample, losses, the [RZG]
    decomposition (two blocks) and the noise floors of the distances for every width.
    Returns its :class:`~.result.Trace` (what every width task receives); against the
    limit, :func:`run_limit_reference`'s."""
    if opts.limit:
        return run_limit_reference(cfg, opts)
    exp = reference_experiment(cfg, opts)
    net0 = exp.network
    X, y = exp.test.X, exp.test.y
    obj = Objective(net0, training_data(exp, cfg, opts), loss=exp.loss)
    tobj = Objective(net0, exp.test, loss=exp.loss)
    rows = {"step": [], "t": [], "theta": [], "outputs": [], "loss_train": [], "loss_test": [],
            "features": [[] for _ in range(net0.L)], "decomposition": []}
    decomposable = decomposition_applies(net0)

    def hook(st):
        net = net0.with_theta(st.y)
        feats = net.features(X)
        rows["step"].append(st.step)
        rows["t"].append(st.t)
        rows["theta"].append(st.y.copy())
        rows["outputs"].append(net(X))
        rows["loss_train"].append(obj.loss(st.y, st.step))
        rows["loss_test"].append(tobj.loss(st.y))
        for l, h in enumerate(feats):
            rows["features"][l].append(h)
        if decomposable:
            rows["decomposition"].append(_terms(decomposition(net, net, X, y, h_reference=feats[0])))

    final, status, message = _gap_loop(exp, obj, net0.theta, opts.every, hook)
    arr = {k: np.asarray(v) for k, v in rows.items() if k not in ("features", "decomposition")}
    # noise floors: the distance between two disjoint samples of the reference's cloud,
    # of the sizes the members' distances compare
    T, L, n = len(arr["t"]), net0.L, opts.distance_size
    idx = [distance_indices(M, n, l) for l, M in enumerate(opts.reference_width)]
    floor = np.full((2, opts.W, T, L), np.nan)
    for j in range(T):
        net = net0.with_theta(arr["theta"][j])
        for l in range(L):
            cloud = trained_cloud(net, l)
            for w, widths in enumerate(opts.widths):
                k = min(widths[l], n)
                a, b = cloud[idx[l][:n]], cloud[idx[l][n:n + k]]
                if a.shape[1]:
                    floor[0, w, j, l] = wasserstein2(b, a)
                    floor[1, w, j, l] = sliced_wasserstein2(
                        b, a, n_projections=opts.n_projections, seed=streams.projections_seed(l + 1))
    return Trace(t=arr["t"], step=arr["step"].astype(np.int64), theta=arr["theta"],
                 outputs=arr["outputs"], loss_train=arr["loss_train"], loss_test=arr["loss_test"],
                 features=[np.asarray(f) for f in rows["features"]],
                 decomposition=(np.asarray(rows["decomposition"], dtype=float)
                                if rows["decomposition"] else None),
                 w2_floor=floor[0], sliced_w2_floor=floor[1], status=status, message=message)


def run_width(cfg: dict, opts: SweepOptions, w: int, trace: Trace) -> dict:
    """The task of width index ``w``: train its S members together and measure their
    gaps to the reference ``trace`` (from :func:`run_reference`) at every gap time.

    Returns arrays with leading axes (S, T): function, loss_train and loss_test (the
    member's losses; the gaps subtract the reference's), feature, coupling, w2,
    sliced_w2 and mmd2 (…, L), outputs (…, N_test), decomposition (…, 7) or None;
    theta (S, P_w) the final particles, sigma (per block (S, m_l), subsample coupling),
    status and message.
    """
    exp = reference_experiment(cfg, opts)
    ref0 = exp.network
    widths = opts.widths[w]
    S, L, T, n = opts.seeds, ref0.L, len(trace.t), opts.distance_size
    def fresh(ws, s):   # independent coupling: the initial laws with another init seed
        c = copy.deepcopy(cfg)
        c["seed"]["init"] = streams.independent_init_seed(cfg["seed"]["init"], s)
        return C.make_network(c, widths=ws)
    members = [member(ref0, widths, coupling=opts.coupling, seed=s, fresh=fresh) for s in range(S)]
    nets = [mb.network for mb in members]
    objs = [Objective(net, training_data(exp, cfg, opts, k), loss=exp.loss, member=k)
            for k, net in enumerate(nets)]
    tobjs = [Objective(net, exp.test, loss=exp.loss) for net in nets]
    field = solvers.Ensemble(objs)
    X, y = exp.test.X, exp.test.y
    N = X.shape[0]
    res = {"function": np.full((S, T), np.nan), "loss_train": np.full((S, T), np.nan),
           "loss_test": np.full((S, T), np.nan), "outputs": np.full((S, T, N), np.nan),
           "decomposition": (np.full((S, T, len(DECOMPOSITION_TERMS)), np.nan)
                             if decomposition_applies(ref0) and not opts.limit else None)}
    for k in ("feature", "coupling", "w2", "sliced_w2", "mmd2"):
        res[k] = np.full((S, T, L), np.nan)
    if opts.limit:   # the limit's clouds, drawn by its weights
        lim = C.make_limit(cfg, nodes=opts.limit_nodes, norm_nodes=opts.limit_norm_nodes,
                           rule=opts.limit_rule)
        lim_idx = [limit_indices(w, n, l)[:n] for l, (_, w) in enumerate(lim.clouds(lim.y0))]
    else:
        ref_idx = [distance_indices(M, n, l)[:n] for l, M in enumerate(opts.reference_width)]
    own_idx = [[None if widths[l] <= n else
                np.sort(streams.member_cloud(w, s, l + 1).permutation(widths[l])[:n])
                for l in range(L)] for s in range(S)]
    steps = list(trace.step)

    def hook(st):
        if st.step > steps[-1]:   # past the reference's last state (it diverged): no reference to compare
            return
        if st.step not in steps:
            raise RuntimeError(f"width {widths}: state at step {st.step} is not a gap time of the "
                               "reference (the runs took different steps)")
        j = steps.index(st.step)
        if opts.limit:
            ref = None
            ref_clouds = [cl[lim_idx[l]] for l, (cl, _) in enumerate(lim.clouds(trace.theta[j]))]
        else:
            ref = ref0.with_theta(trace.theta[j])
            ref_clouds = [trained_cloud(ref, l)[ref_idx[l]] for l in range(L)]
        for s, ys in enumerate(field.unpack(st.y)):
            net = nets[s].with_theta(ys)
            f = net(X)
            res["outputs"][s, j] = f
            res["function"][s, j] = output_gap(f, trace.outputs[j])
            res["loss_train"][s, j] = objs[s].loss(ys, st.step)
            res["loss_test"][s, j] = tobjs[s].loss(ys)
            feats = net.features(X)
            clouds = limit_clouds(net) if opts.limit else None
            if members[s].sigma is not None:
                res["coupling"][s, j] = coupling_gap(net, ref, members[s].sigma)
            for l in range(L):
                res["feature"][s, j, l] = feature_gap(feats[l], trace.features[l][j])
                cloud = clouds[l] if opts.limit else trained_cloud(net, l)
                if own_idx[s][l] is not None:
                    cloud = cloud[own_idx[s][l]]
                res["w2"][s, j, l], res["sliced_w2"][s, j, l], res["mmd2"][s, j, l] = \
                    _distances(cloud, ref_clouds[l], opts, streams.projections_seed(l + 1))
            if res["decomposition"] is not None:
                res["decomposition"][s, j] = _terms(
                    decomposition(net, ref, X, y, h_reference=trace.features[0][j]))

    final, status, message = _gap_loop(exp, field, field.pack([nt.theta for nt in nets]),
                                       opts.every, hook)
    res["theta"] = np.stack([np.array(v) for v in field.unpack(final.y)]) if final is not None \
        else np.stack([nt.theta for nt in nets])
    res["sigma"] = ([np.stack([mb.sigma[l] for mb in members]) for l in range(L)]
                    if opts.coupling == "subsample" else None)
    res["status"], res["message"] = status, message
    return res


# ----------------------------------------------------------------------------------
# executors
# ----------------------------------------------------------------------------------
def warm_up(cfg: dict) -> None:
    """Compile (or load from Numba's cache) the kernels a sweep of ``cfg`` uses, in this
    process, before any worker starts: workers then load the cache instead of writing
    it concurrently."""
    c = copy.deepcopy(cfg)
    net = C.make_network(c, widths=[2] * len(c["model"]["widths"]))
    X = np.zeros((3, net.d), dtype=net.dtype)
    obj = Objective(net, Dataset(X, np.zeros(3)), loss=c["solver"]["loss"])
    obj.velocity()
    obj.loss()
    net.features(X)
    net(X)


class InProcess:
    """Runs the tasks one after the other in this process (no Dask)."""

    description = "in-process"

    def run(self, reference_fn, width_fns, trace, on_reference, on_width):
        if trace is None:
            trace = reference_fn()
            on_reference(trace)
        for w, fn in width_fns:
            on_width(w, fn(trace))

    def close(self):
        pass


class DaskExecutor:
    """Runs the tasks on Dask: a running cluster (``scheduler`` address) or a
    LocalCluster of ``workers`` processes with cores // workers Numba threads each."""

    def __init__(self, scheduler=None, workers=None):
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise SweepError("--scheduler and --workers need Dask: pip install 'meanfield[dask]'") from None
        self.cluster = None
        if scheduler is not None:
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as e:
                raise SweepError(f"scheduler {scheduler}: cannot connect ({str(e).splitlines()[0]})") from None
            self.description = f"Dask cluster at {scheduler}"
        else:
            cores = available_cores()
            if workers > cores:
                raise SweepError(f"--workers {workers}: more worker processes than the {cores} cores "
                                 "this process may use (each worker needs one)")
            threads = cores // workers
            env = {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            # the nanny lets this process's environment override the setting, and
            # copies the setting into this process's environment: hide, then restore
            saved = {k: os.environ.pop(k, None) for k in env}
            try:
                with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
                    # silence_logs: a worker that fails to start is reported below in one
                    # line, not by the workers' own loggers (a 55-line traceback)
                    self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                                processes=True, dashboard_address=None,
                                                silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)
            except Exception as e:   # a worker died while starting, no port, ...
                if self.cluster is not None:
                    self.cluster.close()
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise SweepError(f"--workers {workers}: the Dask LocalCluster did not start "
                                 f"({type(e).__name__}{': ' + first if first else ''})") from None
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            self.description = (f"Dask LocalCluster, {workers} workers x {threads} Numba "
                                f"thread{'s' if threads > 1 else ''}")

    def run(self, reference_fn, width_fns, trace, on_reference, on_width):
        from dask.distributed import as_completed

        c = self.client
        if trace is None:
            trace = c.submit(reference_fn, pure=False).result()
            on_reference(trace)
        tf = c.scatter(trace, broadcast=True)
        futs = {c.submit(fn, tf, pure=False): w for w, fn in width_fns}
        for fut in as_completed(futs):
            on_width(futs[fut], fut.result())

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


GUARD = 'if __name__ == "__main__":'


def _unguarded_caller() -> str | None:
    """The script that calls the sweep at its top level without a ``__main__`` guard
    (file:line), or None.  Worker processes of a LocalCluster import the main script
    again: such a call would run the sweep once more in every worker."""
    import ast

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or not os.path.isfile(path):   # interactive, a notebook, python -c
        return None
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None   # a package's __main__ (python -m meanfield): multiprocessing skips it
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals.get("__name__") == "__main__"
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path) as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) \
                and "__name__" in ast.unparse(node.test) \
                and node.lineno <= line <= max(getattr(n, "end_lineno", node.lineno) for n in node.body):
            return None
    return f"{path}:{line}"


def _check_executor(scheduler, workers):
    if scheduler is not None and workers is not None:
        raise SweepError("give --scheduler or --workers, not both")
    if workers is not None:
        check_int("workers", workers)
        import multiprocessing

        if multiprocessing.parent_process() is not None \
                and getattr(sys.modules.get("__main__"), "__name__", "") == "__mp_main__":
            raise SweepError("a sweep with workers started while a worker process imported the "
                             f"main script; put the call under `{GUARD}`")
        where = _unguarded_caller()
        if where is not None:
            raise SweepError(f"{where}: a sweep with workers starts processes that import this "
                             f"script again; put the call under `{GUARD}`")
    if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
        raise SweepError(f"scheduler: expected an address like tcp://HOST:PORT, got {scheduler!r}")


def executor(scheduler=None, workers=None):
    """The executor of the tasks: in this process, or on Dask."""
    _check_executor(scheduler, workers)
    if scheduler is None and workers is None:
        return InProcess()
    return DaskExecutor(scheduler, workers)


# ----------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------
def sweep(config: dict | str | os.PathLike[str], *, widths: str | Sequence,
          seeds: int = 5, reference_width: int | Sequence[int] | None = None,
          coupling: str | None = None, every: int | None = None,
          distance_size: int | None = None, n_projections: int = 64,
          bandwidth: float | None = None, n_boot: int = 1000, level: float = 0.9,
          reference: str = "network", limit_nodes: int = 16, limit_norm_nodes: int = 64,
          samples: str = "fixed", interval: str = "jackknife", limit_rule: str = "tensor",
          path: str | os.PathLike[str] | None = None, overwrite: bool = False,
          scheduler: str | None = None, workers: int | None = None,
          progress: bool | None = None, overrides: Sequence[str] = ()) -> GapResult:
    """Run a width sweep of an experiment configuration (a dict, a TOML path or text)
    and return its :class:`~meanfield.discretization.result.GapResult`.

    ``reference="limit"`` compares the members with the exact m, N → ∞ limit
    (two-layer ReLU networks on radial problems, docs/math.md §8) instead of a wide
    network; ``samples="fresh"`` trains on new samples every step (the same for every
    member), ``samples="independent"`` on every member's own new samples.  ``progress``: a bar
    of the tasks on standard error (None: when it is a terminal or in Jupyter).

    See :func:`make_options` for the options.  With ``path`` the result is written to a
    gap file (docs/format.md) at the start and after every finished task, so a killed
    sweep resumes (:func:`resume_sweep`).  ``workers=N`` runs the tasks on a Dask
    LocalCluster of N processes, ``scheduler="tcp://host:port"`` on a running Dask
    cluster; the default runs them in this process.  The results are the same bits in
    all three cases.
    """
    _check_executor(scheduler, workers)
    res = _new_result(config, overrides, widths=widths, seeds=seeds,
                      reference_width=reference_width, coupling=coupling, every=every,
                      distance_size=distance_size, n_projections=n_projections,
                      bandwidth=bandwidth, n_boot=n_boot, level=level, reference=reference,
                      limit_nodes=limit_nodes, limit_norm_nodes=limit_norm_nodes,
                      samples=samples, interval=interval, limit_rule=limit_rule)
    return _execute(res, path, overwrite, scheduler, workers, progress, new=True)


def _new_result(config, overrides, **options) -> GapResult:
    """A new sweep's empty result, with the configuration and every option checked (and
    the memory it will hold) before anything trains."""
    try:
        cfg = C.load_config(config, overrides)
    except C.ConfigError as e:
        raise SweepError(str(e)) from None
    opts = make_options(cfg, **options)
    check_memory(cfg, opts)   # everything the sweep will hold, before anything trains
    try:
        C.check_memory(reference_config(cfg, opts))
        train, test, _ = C.make_data(cfg)
    except C.ConfigError as e:
        raise SweepError(str(e)) from None
    return GapResult(cfg, opts, test.X, test.y)


def sample_paths(path: str | os.PathLike[str], n_train: Sequence[int]) -> list[str]:
    """The gap files of a sample sweep written to ``path``: ``floor.h5`` gives
    ``floor-N512.h5``, ``floor-N2048.h5``, … (one per training-set size)."""
    root, ext = os.path.splitext(os.fspath(path))
    return [f"{root}-N{int(n)}{ext or '.h5'}" for n in n_train]


def check_n_train(n_train) -> list[int]:
    """The training-set sizes of a sample sweep, checked: at least two distinct integers
    >= 1, returned in increasing order."""
    if isinstance(n_train, (str, bytes)) or not hasattr(n_train, "__len__") or len(n_train) < 2:
        raise SweepError(f"n_train: expected at least two sample sizes, got {n_train!r}")
    ns = [check_int("n_train", n) for n in n_train]
    if len(set(ns)) != len(ns):
        raise SweepError("n_train: each sample size must appear once")
    return sorted(ns)


def sample_sweep(config: dict | str | os.PathLike[str], *, n_train: Sequence[int],
                 path: str | os.PathLike[str] | None = None, overwrite: bool = False,
                 scheduler: str | None = None, workers: int | None = None,
                 progress: bool | None = None, overrides: Sequence[str] = (),
                 **options) -> list[GapResult]:
    """Width sweeps at several training-set sizes N: the N axis next to the width axis,
    where the sample floor shows (docs/math.md §8.2).

    Runs :func:`sweep` once per ``n_train`` value (``data.n_train = N``, with fixed
    samples the size of the sample, with fresh ones the points per step), every other
    option (``widths``, ``seeds``, ``reference``, ``samples``, …) the same, and returns
    the results in increasing N.  Every sweep's configuration and options are checked,
    and no file may exist (unless ``overwrite``), before the first one trains.  With
    ``path`` each is written to its own gap file (:func:`sample_paths`), which
    :func:`resume_sweep` finishes if it is cut short.  :func:`sample_table` and
    :func:`meanfield.plots.samples_axes` compare them.
    """
    _check_executor(scheduler, workers)
    ns = check_n_train(n_train)
    if any(o.split("=", 1)[0].strip() == "data.n_train" for o in overrides):
        raise SweepError("data.n_train: a sample sweep sets it from n_train")
    over = [[*overrides, f"data.n_train={n}"] for n in ns]
    for o in over:   # all checked first; the results are made again one at a time (memory)
        _new_result(config, o, **options)
    paths = sample_paths(path, ns) if path is not None else [None] * len(ns)
    for p in paths:
        if p is not None and os.path.exists(p) and not overwrite:
            raise SweepError(f"{p} exists; use --force to overwrite it or -o to choose another "
                             "name")
    return [_execute(_new_result(config, o, **options), p, overwrite, scheduler, workers,
                     progress, new=True) for o, p in zip(over, paths)]


def sample_table(results: Sequence[GapResult], time: int = -1) -> str:
    """The seed mean's squared bias without the seeds' noise
    (:meth:`GapResult.bias_squared`, ± its standard error) at gap time index ``time`` for
    every N (rows) and width (columns) of a :func:`sample_sweep`, and the fit of the
    widest width's value against N, ‖E f − f_M‖ ≈ C N^(−γ) (weighted as the bias rate's
    fit; "not resolved" when it is not 3 standard errors above 0)."""
    results = sorted(results, key=lambda r: int(r.config["data"]["n_train"]))
    ns = np.array([int(r.config["data"]["n_train"]) for r in results])
    widths = results[0].widths
    if any(not np.array_equal(r.widths, widths) for r in results):
        raise SweepError("sample table: the sweeps have different widths")
    if any(not np.array_equal(r.t, results[0].t) for r in results):
        raise SweepError("sample table: the sweeps have different gap times")
    t = results[0].t[time]
    seeds = sorted({r.options.seeds for r in results})
    lines = [f"squared bias of the seed mean, seeds' noise removed, at t = {t:.4g} "
             f"({'/'.join(map(str, seeds))} seeds; ± one standard error):",
             "N \\ m".ljust(9) + "".join(f"{int(m):>21d}" for m in widths)]
    last = []
    for n, r in zip(ns, results):
        B, se = r.bias_squared()
        lines.append(f"{n:<9d}" + "".join(f"{B[w, time]:>+11.2e} ± {se[w, time]:<7.1e}"
                                          for w in range(len(widths))))
        last.append((B[-1, time], se[-1, time]))
    B, se = np.array(last).T
    gamma, C = (weighted_power_fit(ns.astype(float), B, se) if np.all(se > 0) and len(ns) >= 2
                else (math.nan, math.nan))
    lines.append(f"at m = {int(widths[-1])} against N: " +
                 (f"‖E f − f_M‖ ≈ {C:.3g} N^-{gamma:.3f}" if math.isfinite(gamma) else
                  "not resolved by these seeds"))
    return "\n".join(lines)


def resume_sweep(path: str | os.PathLike[str], *, scheduler: str | None = None,
                 workers: int | None = None, progress: bool | None = None) -> GapResult:
    """Finish the sweep of a gap file: the finished tasks are read, the others run."""
    _check_executor(scheduler, workers)
    res = open_gap(path)
    if res.complete and res.rates:
        raise SweepError(f"{path}: the sweep is already complete")
    return _execute(res, path, True, scheduler, workers, progress, new=False)


def _execute(res, path, overwrite, scheduler, workers, progress, new):
    progress = interactive() if progress is None else bool(progress)
    lock = None
    if path is not None:
        path = os.fspath(path)
        if os.path.isdir(path):
            raise SweepError(f"{path} is a directory")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise SweepError(f"{path}: folder {folder} does not exist")
        try:
            lock = WriterLock(path).acquire()
        except LockedError as e:
            raise SweepError(str(e)) from None
        except OSError as e:   # a read-only folder: the lock file cannot be made
            raise SweepError(f"{path}: cannot write in {folder} ({e.strerror or e})") from None
        fileformat.remove_debris(path)   # temporary files of killed writers (we hold the lock)
    ex = None
    try:
        if path is not None and new and os.path.exists(path) and not overwrite:
            raise SweepError(f"{path} exists; use --force to overwrite it or -o to choose "
                             "another file")
        if scheduler is not None or workers is not None:
            warm_up(res.config)   # compile (or load) the kernels before any worker starts
        ex = executor(scheduler, workers)   # before anything is written: it may fail
        if path is not None:
            existed = os.path.exists(path)
            try:
                gapfile.write(path, res, "running")
            except OSError as e:
                if e.errno in NO_SPACE:
                    raise GapWriteError(e.errno, f"{path}: cannot write the gap file ({e.strerror}); "
                                        "nothing was written" + (", the previous file is unchanged"
                                                                 if existed else "")) from None
                raise SweepError(f"{path}: cannot create ({e.strerror or e})") from None
        cfg, opts = res.config, res.options
        todo = [w for w in range(opts.W) if not res.done[w]]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=opts.W + 1, initial=opts.W + 1 - len(todo) - (res.reference is None),
                       unit="task", file=sys.stderr, dynamic_ncols=True,
                       desc=f"sweep ({ex.description})")

        def save(status="running", message=""):
            if path is not None:
                try:
                    gapfile.write(path, res, status, message)
                except OSError as e:
                    raise GapWriteError(e.errno, f"{path}: cannot write the gap file ({e.strerror or e}); "
                                        "its previous version is intact, resume with --resume") from None

        def on_reference(trace):
            res.set_reference(trace)
            save()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"reference {trace.status}")

        def on_width(w, out):
            res.set_width(w, out)
            save()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"width {int(opts.m[w])} {out['status']}")

        try:
            ex.run(functools.partial(run_reference, cfg, opts),
                   [(w, functools.partial(run_width, cfg, opts, w)) for w in todo],
                   res.reference, on_reference, on_width)
        except KeyboardInterrupt:
            save("interrupted", "interrupted by the user")
            raise
        finally:
            if bar is not None:
                bar.close()
        res.compute_rates()
        bad = [int(opts.m[w]) for w in range(opts.W) if res.status[w] != "complete"]
        status, message = "complete", ""
        if res.reference.status != "complete" or bad:
            status = "diverged"
            message = (f"reference {res.reference.status}" if res.reference.status != "complete"
                       else f"widths {bad} did not complete")
        res.mark(status, message)
        save(status, message)
        res.path = path
        return res
    finally:
        if ex is not None:
            ex.close()
        if lock is not None:
            lock.release()
