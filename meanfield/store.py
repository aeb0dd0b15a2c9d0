"""Run storage: the HDF5 run file (docs/format.md, format version 1), an in-memory
recorder with the same arrays, and the offline reader :func:`open_run`.

Recorders are hooks of the run loop: they receive every yielded solver state and
decide, from ``record.series_every`` / ``snapshot_every`` / ``checkpoint_every``, what
to store.  Crash safety (HDF5 backend): each record event writes its rows, then the
counters (root attributes ``n_series``, ``n_snapshots``) and flushes; checkpoints
alternate between two slots and the attribute naming the valid slot is written last.
A file killed at any moment therefore reads consistently up to its counters.
"""
from __future__ import annotations

import datetime as _dt
import math
import time

import numpy as np

FORMAT = "meanfield-run"
FORMAT_VERSION = 1

STATE_FIELDS = ("t", "step", "loss", "stage", "stage_t0", "stage_step0", "dt", "seed",
                "rejected", "wall_time")


class RunFileError(ValueError):
    """A file that is not a readable meanfield run (one-line message)."""


def velocity_norms(network, velocity) -> np.ndarray:
    """(L,) the L²(μ_l) norm of each block's velocity: √((1/m_l) Σ_i ‖V_i‖²).

    (Plain NumPy reductions, no BLAS: a BLAS call inside the run loop leaves OpenBLAS
    threads spinning on the cores the Numba kernels need; measured 25 % slower steps.)
    """
    out = np.zeros(network.L)
    for name, start, shape, _ in network.groups():
        if name == "out.b":
            continue
        v = velocity[start:start + int(np.prod(shape))]
        out[int(name.split(".")[0]) - 1] += float(np.square(v, dtype=np.float64).sum())
    return np.sqrt(out / np.array(network.widths, dtype=float))


class Recorder:
    """What is recorded, independent of where it goes (subclasses store the rows).

    Parameters
    ----------
    network : the run's network (architecture; parameters come from the states)
    record : the resolved ``[record]`` section
    test_loss : callable theta -> test loss (or None when there is no test set)
    wall_offset : wall time already spent (a resumed run continues the clock)
    """

    def __init__(self, network, record: dict, test_loss=None, wall_offset: float = 0.0):
        self.network = network
        self.record = dict(record)
        self.test_loss = test_loss
        self.wall_offset = wall_offset
        self._t0 = time.perf_counter()
        self.last_snapshot_step = None

    def every(self) -> int:
        r = self.record
        return math.gcd(math.gcd(r["series_every"], r["snapshot_every"]), r["checkpoint_every"])

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self._t0

    def __call__(self, state) -> None:
        r = self.record
        wrote = forced = False
        if state.step % r["series_every"] == 0 or state.done is not None:
            test = math.nan
            if self.test_loss is not None and (state.step % r["test_every"] == 0 or state.done is not None):
                test = self.test_loss(state.y)
            vn = (velocity_norms(self.network, state.velocity) if state.velocity is not None
                  else np.full(self.network.L, np.nan))
            self._series(dict(step=state.step, t=state.t, loss=state.loss, test_loss=test,
                              wall_time=self.wall(), velocity_norm=vn))
            wrote = True
        if (state.step % r["snapshot_every"] == 0 or state.done is not None) \
                and self.last_snapshot_step != state.step:
            self._snapshot(state.step, state.t, state.y)
            self.last_snapshot_step = state.step
            wrote = forced = True
        if state.step % r["checkpoint_every"] == 0 or state.done is not None:
            self._checkpoint(state)
            wrote = forced = True
        if wrote:
            self._commit(forced or state.done is not None)

    def finish(self, status: str, message: str = "") -> None:
        self._status(status, message)
        self._commit(True)

    # backends implement these
    def _series(self, row: dict) -> None:
        raise NotImplementedError

    def _snapshot(self, step, t, theta) -> None:
        raise NotImplementedError

    def _checkpoint(self, state) -> None:
        raise NotImplementedError

    def _status(self, status, message) -> None:
        raise NotImplementedError

    def _commit(self, force: bool) -> None:
        pass


class MemoryRecorder(Recorder):
    """Keeps every row in memory: ``series``, ``snapshots``, ``checkpoint``, ``status``."""

    def __init__(self, network, record, test_loss=None, wall_offset: float = 0.0):
        super().__init__(network, record, test_loss, wall_offset)
        self.series = {k: [] for k in ("step", "t", "loss", "test_loss", "wall_time", "velocity_norm")}
        self.snapshots = {"step": [], "t": [], "theta": []}
        self.checkpoint = None
        self.status = "running"

    def _series(self, row):
        for k, v in row.items():
            self.series[k].append(v)

    def _snapshot(self, step, t, theta):
        self.snapshots["step"].append(step)
        self.snapshots["t"].append(t)
        self.snapshots["theta"].append(np.array(theta, copy=True))

    def _checkpoint(self, state):
        self.checkpoint = state.copy()

    def _status(self, status, message):
        self.status = status

    def arrays(self) -> dict:
        """Series and snapshots as arrays, in the HDF5 file's layout."""
        out = {f"series/{k}": np.array(v) for k, v in self.series.items()}
        out["snapshots/step"] = np.array(self.snapshots["step"])
        out["snapshots/t"] = np.array(self.snapshots["t"])
        thetas = np.array(self.snapshots["theta"])
        for l, b in enumerate(self.network.blocks):
            for p, arr in zip("ucv", self.network.block_arrays(thetas, l)):
                out[f"snapshots/blocks/{l + 1}/{p}"] = arr
        if self.network.has_out_bias:
            out["snapshots/out_bias"] = thetas[:, self.network.off_b]
        return out


class H5Recorder(Recorder):
    """Writes the run file (docs/format.md).  Use :meth:`create` or :meth:`resume`."""

    BATCH_ROWS = 256
    BATCH_SECONDS = 1.0

    def __init__(self, f, network, record, test_loss=None, wall_offset: float = 0.0):
        super().__init__(network, record, test_loss, wall_offset)
        self.f = f
        self._rows = []
        self._last_commit = time.perf_counter()
        self.n_series = int(f.attrs["n_series"])
        self.n_snapshots = int(f.attrs["n_snapshots"])
        if self.n_snapshots:
            self.last_snapshot_step = int(f["snapshots/step"][self.n_snapshots - 1])

    @classmethod
    def create(cls, path, *, network, record, config_text, seed, train, test=None, test_loss=None):
        import h5py
        import numba

        from . import __version__

        f = h5py.File(path, "w")
        a = f.attrs
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        a["package_version"] = __version__
        a["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["config"] = config_text
        a["seed"] = int(seed)
        a["numpy_version"] = np.__version__
        a["numba_version"] = numba.__version__
        a["h5py_version"] = h5py.__version__
        a["status"] = "running"
        a["message"] = ""
        a["n_series"] = 0
        a["n_snapshots"] = 0
        a["checkpoint_slot"] = -1
        dt = network.dtype
        g = f.create_group("data")
        g.create_dataset("x", data=np.asarray(train.X, dtype=dt))
        g.create_dataset("y", data=np.asarray(train.y, dtype=dt))
        d = network.d
        g.create_dataset("x_test", data=np.asarray(test.X if test is not None else np.zeros((0, d)), dtype=dt))
        g.create_dataset("y_test", data=np.asarray(test.y if test is not None else np.zeros(0), dtype=dt))
        s = f.create_group("series")
        for k, tp in (("step", np.int64), ("t", np.float64), ("loss", np.float64),
                      ("test_loss", np.float64), ("wall_time", np.float64)):
            s.create_dataset(k, shape=(0,), maxshape=(None,), dtype=tp, chunks=(1024,))
        s.create_dataset("velocity_norm", shape=(0, network.L), maxshape=(None, network.L),
                         dtype=np.float64, chunks=(1024, network.L))
        sn = f.create_group("snapshots")
        sn.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        sn.create_dataset("t", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,))
        comp = record.get("compression", "none")
        kw = {} if comp == "none" else {"compression": comp}
        for l, b in enumerate(network.blocks):
            bg = sn.create_group(f"blocks/{l + 1}")
            for p, shape in (("u", (b.m, b.k_in)), ("c", (b.m,)), ("v", (b.m, b.k_out))):
                bg.create_dataset(p, shape=(0,) + shape, maxshape=(None,) + shape, dtype=dt,
                                  chunks=(1,) + shape, **kw)
        if network.has_out_bias:
            sn.create_dataset("out_bias", shape=(0,), maxshape=(None,), dtype=dt, chunks=(256,))
        ck = f.create_group("checkpoint")
        for slot in ("0", "1"):
            cs = ck.create_group(slot)
            cs.create_dataset("theta", shape=(network.n_params,), dtype=dt)
            for k in STATE_FIELDS:
                cs.attrs[k] = 0
        f.flush()
        return cls(f, network, record, test_loss)

    @classmethod
    def resume(cls, f, network, record, test_loss=None):
        """Reopen a run at its checkpoint: rows recorded after it are dropped.

        Returns (recorder, checkpoint attributes, checkpoint parameters).
        """
        slot = int(f.attrs["checkpoint_slot"])
        if slot < 0:
            raise RunFileError("the run has no checkpoint to resume from")
        cs = f[f"checkpoint/{slot}"]
        attrs = {k: cs.attrs[k] for k in STATE_FIELDS}
        theta = cs["theta"][...]
        # keep only what was recorded before the checkpoint's step (it is recorded again)
        step = int(attrs["step"])
        ns = int(f.attrs["n_series"])
        steps = f["series/step"][:ns]
        ns = int(np.searchsorted(steps, step, side="left"))
        nn = int(f.attrs["n_snapshots"])
        snap = f["snapshots/step"][:nn]
        nn = int(np.searchsorted(snap, step, side="left"))
        f.attrs["n_series"] = ns
        f.attrs["n_snapshots"] = nn
        f.attrs["status"] = "running"
        f.attrs["message"] = ""
        f.flush()
        rec = cls(f, network, record, test_loss, wall_offset=float(attrs["wall_time"]))
        return rec, attrs, theta

    def _append(self, ds, n, value):
        if ds.shape[0] < n + 1:
            ds.resize(n + 1, axis=0)
        ds[n] = value

    def _series(self, row):
        self._rows.append(row)

    def _write_rows(self):
        """Write the buffered series rows (one resize and one write per dataset)."""
        if not self._rows:
            return
        s = self.f["series"]
        n, k = self.n_series, len(self._rows)
        for key in self._rows[0]:
            ds = s[key]
            if ds.shape[0] < n + k:
                ds.resize(n + k, axis=0)
            ds[n:n + k] = np.array([r[key] for r in self._rows])
        self.n_series = n + k
        self._rows = []

    def _snapshot(self, step, t, theta):
        sn = self.f["snapshots"]
        n = self.n_snapshots
        self._append(sn["step"], n, step)
        self._append(sn["t"], n, t)
        net = self.network
        for l in range(net.L):
            for p, arr in zip("ucv", net.block_arrays(theta, l)):
                self._append(sn[f"blocks/{l + 1}/{p}"], n, arr)
        if net.has_out_bias:
            self._append(sn["out_bias"], n, theta[net.off_b])
        self.n_snapshots = n + 1

    def _checkpoint(self, state):
        slot = 1 - int(self.f.attrs["checkpoint_slot"]) if int(self.f.attrs["checkpoint_slot"]) >= 0 else 0
        cs = self.f[f"checkpoint/{slot}"]
        cs["theta"][...] = state.y
        for k in STATE_FIELDS:
            v = self.wall() if k == "wall_time" else getattr(state, k)
            cs.attrs[k] = v
        self._pending_slot = slot

    def _status(self, status, message):
        self.f.attrs["status"] = status
        self.f.attrs["message"] = message

    def _commit(self, force):
        """Make written rows visible.  Series rows are buffered and written when a
        snapshot or checkpoint is taken, at the end, every ``BATCH_ROWS`` rows or after
        ``BATCH_SECONDS`` of wall time, whichever comes first: a crash loses at most
        that many rows, never the file's consistency (they are recorded again on resume,
        which restarts at the checkpoint)."""
        if not force and len(self._rows) < self.BATCH_ROWS \
                and time.perf_counter() - self._last_commit < self.BATCH_SECONDS:
            return
        self._write_rows()
        self.f.flush()  # rows first ...
        a = self.f.attrs
        a["n_series"] = self.n_series
        a["n_snapshots"] = self.n_snapshots
        slot = getattr(self, "_pending_slot", None)
        if slot is not None:
            a["checkpoint_slot"] = slot
            self._pending_slot = None
        self.f.flush()  # ... then the counters that make them visible
        self._last_commit = time.perf_counter()

    def close(self):
        if self.f.id.valid:
            self.f.close()


# ----------------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------------
class Rows:
    """A lazy view of the first ``n`` rows of an HDF5 dataset (reads on indexing)."""

    def __init__(self, ds, n: int):
        self.ds, self.n = ds, int(n)

    def __len__(self):
        return self.n

    @property
    def shape(self):
        return (self.n,) + self.ds.shape[1:]

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            i = int(idx) + (self.n if idx < 0 else 0)
            if not 0 <= i < self.n:
                raise IndexError(f"row {idx} out of range for {self.n} rows")
            return self.ds[i]
        if isinstance(idx, slice):
            return self.ds[:self.n][idx] if idx.step not in (None, 1) else self.ds[slice(*idx.indices(self.n))]
        return self.ds[:self.n][idx]

    def __array__(self, dtype=None, copy=None):
        a = self.ds[:self.n]
        return a.astype(dtype) if dtype is not None else a


class Run:
    """An open run file (read only).  Attributes:

    config (dict), config_text, status ("complete", "interrupted", "diverged"),
    message, series (dict of :class:`Rows`), snapshots (dict: step, t, and per block
    u, c, v as :class:`Rows`), data (x, y, x_test, y_test as h5py datasets),
    n_series, n_snapshots, attrs.
    """

    def __init__(self, path):
        import h5py

        try:
            self.f = h5py.File(path, "r")
        except FileNotFoundError:
            raise RunFileError(f"{path}: no such file") from None
        except OSError as e:
            raise RunFileError(f"{path}: not an HDF5 file ({str(e).splitlines()[0]})") from None
        a = self.f.attrs
        if a.get("format") != FORMAT:
            self.f.close()
            raise RunFileError(f"{path}: not a meanfield run file (no format = '{FORMAT}' attribute)")
        ver = int(a.get("format_version", -1))
        if ver > FORMAT_VERSION or ver < 1:
            self.f.close()
            raise RunFileError(f"{path}: format version {ver} is not supported by this meanfield "
                               f"(reads version {FORMAT_VERSION}); upgrade meanfield")
        from . import config as C

        self.path = str(path)
        self.attrs = dict(a)
        self.config_text = str(a["config"])
        self.config = C.load(self.config_text)
        st = str(a["status"])
        self.status = "interrupted" if st == "running" else st
        self.message = str(a.get("message", ""))
        self.n_series = int(a["n_series"])
        self.n_snapshots = int(a["n_snapshots"])
        self.series = {k: Rows(v, self.n_series) for k, v in self.f["series"].items()}
        sn = self.f["snapshots"]
        self.snapshots = {"step": Rows(sn["step"], self.n_snapshots), "t": Rows(sn["t"], self.n_snapshots)}
        for l in sn["blocks"]:
            for p in "ucv":
                self.snapshots[f"{l}.{p}"] = Rows(sn[f"blocks/{l}/{p}"], self.n_snapshots)
        if "out_bias" in sn:
            self.snapshots["out.b"] = Rows(sn["out_bias"], self.n_snapshots)
        self.data = {k: self.f["data"][k] for k in ("x", "y", "x_test", "y_test")}
        self._template = None

    def template(self):
        """The run's network architecture (initial parameters as configured)."""
        if self._template is None:
            from . import config as C

            self._template = C.make_network(self.config)
        return self._template

    def theta(self, i: int) -> np.ndarray:
        """The flat parameter vector of snapshot ``i`` (negative counts from the end)."""
        net = self.template()
        theta = np.empty_like(net.theta)
        for name, start, shape, _ in net.groups():
            key = name
            row = self.snapshots[key][i]
            theta[start:start + int(np.prod(shape))] = np.asarray(row).ravel()
        return theta

    def network(self, i: int = -1):
        """The network at snapshot ``i`` (a callable :class:`~meanfield.Network`)."""
        return self.template().with_theta(self.theta(i))

    def checkpoint(self) -> dict:
        """The newest checkpoint: its state attributes and ``theta``."""
        slot = int(self.f.attrs["checkpoint_slot"])
        if slot < 0:
            return {}
        cs = self.f[f"checkpoint/{slot}"]
        out = {k: cs.attrs[k] for k in STATE_FIELDS}
        out["theta"] = cs["theta"][...]
        return out

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_run(path) -> Run:
    """Open a run file for offline analysis (lazy: nothing large is read up front)."""
    return Run(path)
