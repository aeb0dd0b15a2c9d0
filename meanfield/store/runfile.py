"""The HDF5 run file (docs/format.md, format version 2): its writer :class:`H5Recorder`
and its reader :class:`Run`.

The writer is a :class:`~meanfield.record.Recorder` (what to record and when), storing
rows in the file.  Crash safety: each record event writes its rows, then the
counters (``/progress/counters``) and flushes; checkpoints alternate between two slots
and the counter naming the valid slot is written last.  A file killed at any moment
therefore reads consistently up to its counters.  The file is written in HDF5's
single-writer/multiple-reader (SWMR) mode, so :func:`open_run` can read it while it is
being written (:meth:`Run.refresh` sees new rows).  The store owns the mapping between
solver states and checkpoints (:func:`write_checkpoint`, :func:`checkpoint_state`) and
describes the network itself (``/network``), so a file reopens without its config.
The configuration is kept as text and never parsed here (:mod:`meanfield.runs` attaches
the parsed configuration); the header is :mod:`.fileformat`'s.
"""
from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from .._h5lock import WriterLock, status_flags, superblock_eof, writer_alive
from ..layout import OUT_BIAS, PARAMS, RUN_ATTRS, SERIES_ATTRS, group_name
from ..record import Recorder
from . import fileformat

if TYPE_CHECKING:
    import pandas
    import xarray

    from ..network import Network

FORMAT = "meanfield-run"
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)

STATE_FIELDS = ("t", "step", "loss", "stage", "stage_t0", "stage_step0", "dt", "seed",
                "rejected", "wall_time")
FLOAT_FIELDS = ("t", "loss", "stage_t0", "dt", "wall_time")      # /checkpoint/<slot>/floats
INT_FIELDS = ("step", "stage", "stage_step0", "rejected")         # /checkpoint/<slot>/ints
MESSAGE_BYTES = 1024
# HDF5's file-format bounds of run files: SWMR needs the 1.10 format, and nothing newer is
# used, so HDF5 1.10's own tools (h5dump 1.10.8 of Debian 12, measured) read them; with
# "latest" (HDF5 2.0's format) they fail on every attribute
LIBVER = ("v110", "v110")
CLOSE_HINT = ("its writer died without closing it: plain h5py, xarray and h5dump refuse it "
              "until 'meanfield close {path}' (no row is lost)")


class RunFileError(ValueError):
    """A file that is not a readable meanfield run (one-line message)."""


class RunWriteError(OSError):
    """Writing the run file failed (full disk, I/O error): the run stopped; the file's
    counters and checkpoint still describe what was written before (one-line message)."""


SPACE_MARGIN = 64 * 1024   # bytes kept free beyond what a record event writes

# Files whose writes failed: HDF5 holds data it cannot write and reports the failure again
# (with a printed traceback, and at interpreter exit a crash was measured) whenever one of
# their handles is dropped, so they are kept here, never closed.  The command line exits
# at once after a failed write; a Python process should too.
_UNWRITABLE = []


def write_architecture(group, network) -> None:
    """Describe ``network`` (everything but its parameters) in the attributes of
    ``group`` and its subgroups ``<l>`` (docs/format.md, ``/network``)."""
    a = group.attrs
    a["n_blocks"] = network.L
    a["output"] = network.output
    a["scaling"] = network.scaling
    a["dtype"] = str(network.dtype)
    a["out_bias"] = bool(network.has_out_bias)
    a["train_out_bias"] = bool(network.train_out_bias)
    for l, b in enumerate(network.blocks):
        ba = group.create_group(str(l + 1)).attrs
        ba["m"], ba["k_in"], ba["k_out"] = b.m, b.k_in, b.k_out
        ba["activation"] = b.activation
        ba["bias"] = bool(b.bias)
        ba["train"] = "".join(p for p in PARAMS if p in b.train)


def read_architecture(group):
    """The network described by ``group`` (:func:`write_architecture`), parameters zero."""
    from ..network import Block, Network   # deferred: it loads Numba

    a = group.attrs
    blocks = []
    for l in range(int(a["n_blocks"])):
        ba = group[str(l + 1)].attrs
        m, kin, kout = int(ba["m"]), int(ba["k_in"]), int(ba["k_out"])
        blocks.append(Block(np.zeros((m, kin)), np.zeros(m), np.zeros((m, kout)),
                            str(ba["activation"]), bool(ba["bias"]), tuple(str(ba["train"]))))
    return Network(blocks, output=str(a["output"]), scaling=str(a["scaling"]),
                   out_bias=0.0 if bool(a["out_bias"]) else None,
                   train_out_bias=bool(a["train_out_bias"]), dtype=str(a["dtype"]))


def write_checkpoint(get, slot: int, state, wall_time: float) -> None:
    """Store a solver state in checkpoint slot ``slot``: its parameters and counters.
    ``get(name)`` returns the dataset of that name (the file's, or a writer's handle)."""
    get(f"checkpoint/{slot}/theta")[...] = state.y
    fl = dict(t=state.t, loss=state.loss, stage_t0=state.stage_t0, dt=state.dt, wall_time=wall_time)
    get(f"checkpoint/{slot}/floats")[...] = np.array([fl[k] for k in FLOAT_FIELDS], dtype=np.float64)
    get(f"checkpoint/{slot}/ints")[...] = np.array([getattr(state, k) for k in INT_FIELDS],
                                                   dtype=np.int64)


def checkpoint_state(ck: dict, seed: int, dtype):
    """The solver state of a checkpoint read by :func:`read_checkpoint`."""
    import solvers   # deferred: it loads Numba

    return solvers.State(y=ck["theta"].astype(dtype), t=ck["t"], step=ck["step"], loss=ck["loss"],
                         stage=ck["stage"], stage_t0=ck["stage_t0"], stage_step0=ck["stage_step0"],
                         dt=ck["dt"], seed=int(seed), rejected=ck["rejected"])


def read_checkpoint(slot_group, version: int) -> dict:
    """The fields (STATE_FIELDS but seed) and ``theta`` of a checkpoint slot."""
    if version == 1:
        out = {k: slot_group.attrs[k] for k in STATE_FIELDS if k != "seed"}
    else:
        fl = slot_group["floats"][...]
        it = slot_group["ints"][...]
        out = {k: float(v) for k, v in zip(FLOAT_FIELDS, fl)}
        out.update({k: int(v) for k, v in zip(INT_FIELDS, it)})
    out["theta"] = slot_group["theta"][...]
    return out


class H5Recorder(Recorder):
    """Writes the run file (docs/format.md).  Use :meth:`create` or :meth:`resume`."""

    BATCH_ROWS = 256
    BATCH_SECONDS = 1.0

    def __init__(self, f, network, record, test_loss=None, wall_offset: float = 0.0, lock=None,
                 path=None):
        super().__init__(network, record, test_loss, wall_offset)
        self.f = f
        self.lock = lock
        self.path = os.fspath(path) if path is not None else f.filename
        self.folder = os.path.dirname(os.path.abspath(self.path))
        self.failed = None
        self._handles = {}
        self._rows = []
        self._last_commit = time.perf_counter()
        self._counters = f["progress/counters"]
        self.n_series, self.n_snapshots, self.slot = (int(x) for x in self._counters[...])
        self._handles["progress/counters"] = self._counters
        self._pending_slot = None
        if self.n_snapshots:
            self.last_snapshot_step = int(f["snapshots/step"][self.n_snapshots - 1])

    @classmethod
    def create(cls, path, *, network, record, config_text, seeds, train, test=None,
               test_loss=None, initial_state=None, overwrite=False, lock=None, content=None):
        """Create the run file at ``path``.

        The file's first version (its data, architecture, (given ``initial_state``) a
        step-0 checkpoint and, for a rewritten file, the ``content`` kept from the old
        one) is built in memory, written to a temporary file in the same folder with
        plain file writes, and only then renamed to ``path``: a file at ``path`` is
        always resumable, with ``overwrite`` an existing file is replaced only once the
        new one is complete, and a disk that cannot hold the first version is a
        :class:`RunWriteError` that leaves nothing behind (HDF5 never writes to a file
        that could fail: its failed handles would crash the interpreter later).
        Without ``overwrite`` an existing ``path`` is never touched (FileExistsError).
        The writer lock of ``path`` is taken first and held until :meth:`close`: a file
        that another process is writing is never replaced (LockedError).
        ``seeds``: {"init", "data", "noise"} -> int, or None where not known.
        """
        import h5py

        lock = lock or WriterLock(path).acquire()
        try:
            fileformat.remove_debris(path)   # left by killed writers (a live one holds the lock)
            if not overwrite and os.path.exists(path):
                raise FileExistsError(f"{path} exists")
            tmp = fileformat.temporary(path)
        except BaseException:
            lock.release()
            raise
        f = None
        try:
            def build(g):
                cls._layout(g, network, record, config_text, seeds, train, test, initial_state)
                if content is not None:
                    cls(g, network, record, path=path)._restore(content)

            try:
                fileformat.write_image(tmp, fileformat.build_image(build, libver=LIBVER))
            except OSError as e:
                raise RunWriteError(e.errno or errno.EIO, f"{path}: cannot write the run file's "
                                    f"first version ({e.strerror or e}); nothing was written"
                                    + (", the previous file is unchanged" if os.path.exists(path)
                                       else "")) from None
            f = h5py.File(tmp, "r+", libver=LIBVER)
            f.swmr_mode = True   # from here on: readers may open the file
            f.flush()
            fileformat.publish(tmp, path, overwrite=overwrite)
        except BaseException:
            if f is not None:
                try:
                    f.close()
                except Exception:
                    pass
            fileformat.discard(tmp)
            lock.release()
            raise
        wall = content["wall_time"] if content is not None else 0.0
        return cls(f, network, record, test_loss, wall_offset=wall, lock=lock, path=path)

    @classmethod
    def _layout(cls, f, network, record, config_text, seeds, train, test, initial_state) -> None:
        """The groups, datasets and attributes of a new run file (docs/format.md)."""
        fileformat.stamp(f.attrs, FORMAT, FORMAT_VERSION, config_text, seeds)
        write_architecture(f.create_group("network"), network)
        pg = f.create_group("progress")
        pg.create_dataset("counters", data=np.array([0, 0, -1], dtype=np.int64))
        pg.create_dataset("status", data=fileformat.fixed_bytes("running", 16), dtype="S16")
        pg.create_dataset("message", data=fileformat.fixed_bytes("", MESSAGE_BYTES),
                          dtype=f"S{MESSAGE_BYTES}")
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
        cls._labels(f, network)
        ck = f.create_group("checkpoint")
        dims = (fileformat.dimension(ck, "parameter", network.n_params),
                fileformat.dimension(ck, "float_field", len(FLOAT_FIELDS)),
                fileformat.dimension(ck, "int_field", len(INT_FIELDS)))
        for slot in ("0", "1"):
            cs = ck.create_group(slot)
            arrays = (cs.create_dataset("theta", shape=(network.n_params,), dtype=dt),
                      cs.create_dataset("floats", data=np.zeros(len(FLOAT_FIELDS))),
                      cs.create_dataset("ints", data=np.zeros(len(INT_FIELDS), dtype=np.int64)))
            for ds, dim, what in zip(arrays, dims, ("parameter vector", ", ".join(FLOAT_FIELDS),
                                                    ", ".join(INT_FIELDS))):
                fileformat.attach(fileformat.label(ds, f"checkpoint: {what}"), dim)
        fileformat.attach(fileformat.label(pg["counters"], "rows of /series, rows of "
                                           "/snapshots, valid checkpoint slot"),
                          fileformat.dimension(pg, "counter", 3))
        if initial_state is not None:
            write_checkpoint(lambda name: f[name], 0, initial_state, 0.0)
            f["progress/counters"][2] = 0

    @classmethod
    def resume(cls, path, network, record, test_loss=None):
        """Reopen a run at its checkpoint: rows recorded after it are dropped.

        A file whose writer did not close it (killed, or stopped by a failed write, after
        which HDF5's allocation records on disk cannot be trusted for more writes) is
        rewritten instead: a new file with its data, architecture, the rows before its
        checkpoint and the checkpoint, renamed over the old one.

        Returns (recorder, the checkpoint's solver state).
        """
        import h5py

        lock = WriterLock(path).acquire()
        try:
            rewrite = status_flags(path) != 0   # its writer died (and we hold the lock)
            with Run(path) as r:
                if r.version != FORMAT_VERSION:
                    raise RunFileError(f"written in format version {r.version}; this meanfield "
                                       f"resumes version {FORMAT_VERSION} files only")
                ck = r.checkpoint()
                if not ck:
                    raise RunFileError("the run has no checkpoint to resume from")
                state = checkpoint_state(ck, r.seeds["noise"], network.dtype)
                slot = r.checkpoint_slot
                # keep only what was recorded before the checkpoint's step (recorded again)
                ns = int(np.searchsorted(np.asarray(r.series["step"]), state.step, side="left"))
                nn = int(np.searchsorted(np.asarray(r.snapshots["step"]), state.step, side="left"))
                if rewrite:
                    content = cls._content(r, ns, nn)
            if rewrite:
                content["wall_time"] = float(ck["wall_time"])
                rec = cls.create(path, network=network, record=record, test_loss=test_loss,
                                 initial_state=state, overwrite=True, lock=lock,
                                 content=content, **content.pop("file"))
                return rec, state
            f = h5py.File(path, "r+", libver=LIBVER)
        except BaseException:
            lock.release()
            raise
        try:
            f["progress/counters"][...] = np.array([ns, nn, slot], dtype=np.int64)
            f["progress/status"][()] = fileformat.fixed_bytes("running", 16)
            f["progress/message"][()] = fileformat.fixed_bytes("", MESSAGE_BYTES)
            f.swmr_mode = True
            f.flush()
        except BaseException:
            f.close()
            lock.release()
            raise
        rec = cls(f, network, record, test_loss, wall_offset=float(ck["wall_time"]), lock=lock,
                  path=path)
        return rec, state

    @staticmethod
    def _labels(f, network) -> None:
        """Dimension scales, long names and units (docs/format.md, "Labels"): xarray
        (engine h5netcdf) and other netCDF-4 readers see named dimensions: /series over
        ``step`` (its coordinate) and ``block``; /snapshots over ``step``, and per block
        ``particle``, ``coordinate_in``, ``coordinate_out``; /data over ``sample``,
        ``test_sample`` and ``coordinate``."""
        L = fileformat.label
        s, sn, g = f["series"], f["snapshots"], f["data"]
        step = L(fileformat.coordinate(s["step"]), *RUN_ATTRS["step"])
        L(s["t"], *RUN_ATTRS["t"])
        fileformat.attach(s["t"], step)
        block = fileformat.dimension(s, "block", network.L)
        for k, (name, units) in SERIES_ATTRS.items():
            L(s[k], name, units)
            fileformat.attach(s[k], *((step, block) if s[k].ndim == 2 else (step,)))
        sstep = L(fileformat.coordinate(sn["step"]), "solver step of the snapshot", "1")
        L(sn["t"], "flow time of the snapshot", "1")
        fileformat.attach(sn["t"], sstep)
        if "out_bias" in sn:
            fileformat.attach(L(sn["out_bias"], *RUN_ATTRS["out_bias"]), sstep)
        for l, b in enumerate(network.blocks):
            bg = sn[f"blocks/{l + 1}"]
            dims = {"particle": fileformat.dimension(bg, "particle", b.m),
                    "in": fileformat.dimension(bg, "coordinate_in", b.k_in),
                    "out": fileformat.dimension(bg, "coordinate_out", b.k_out)}
            fileformat.attach(L(bg["u"], *RUN_ATTRS["u"]), sstep, dims["particle"], dims["in"])
            fileformat.attach(L(bg["c"], *RUN_ATTRS["c"]), sstep, dims["particle"])
            fileformat.attach(L(bg["v"], *RUN_ATTRS["v"]), sstep, dims["particle"], dims["out"])
        coord = fileformat.dimension(g, "coordinate", network.d)
        for split, n_name in (("", "sample"), ("_test", "test_sample")):
            n = fileformat.dimension(g, n_name, g["y" + split].shape[0])
            fileformat.attach(L(g["x" + split], *RUN_ATTRS["x" + split]), n, coord)
            fileformat.attach(L(g["y" + split], *RUN_ATTRS["y" + split]), n)

    @classmethod
    def seal(cls, path) -> str:
        """Close a run file whose writer died, so that every HDF5 tool opens it.

        A writer killed without closing its file (SIGKILL, a power cut) leaves the
        superblock's "open for writing" flag set; HDF5 then refuses a plain
        ``h5py.File(path, "r")`` (and so xarray, pandas and ``h5dump``) with "file is
        already open for write", and only SWMR readers such as :func:`open_run` read it.
        This rewrites the file as :meth:`resume` would, but keeps *every* row its
        counters cover (none is lost: rows past the checkpoint stay, and a later resume
        drops and recomputes them as usual), every snapshot, the checkpoint with its wall
        time, the data, configuration text and seeds; its status becomes "interrupted"
        (a writer killed after it recorded "complete" or "diverged" keeps that status).
        The new file is written beside the old one and renamed over it.

        Returns what was done, in words: "closed" or "already closed" (a file closed
        by its writer, or sealed before, is left untouched).  Raises
        :class:`LockedError` if a process is writing the file now, :class:`RunFileError`
        if it is not a readable run file of the current format.
        """
        from types import SimpleNamespace

        lock = WriterLock(path).acquire()
        try:
            if status_flags(path) == 0:
                with Run(path):   # a readable run file, or the reader's one-line error
                    pass
                lock.release()
                return "already closed"
            with Run(path) as r:
                if r.version != FORMAT_VERSION:
                    raise RunFileError(f"{path}: written in format version {r.version}; this "
                                       f"meanfield rewrites version {FORMAT_VERSION} files only")
                network = r.template()
                content = cls._content(r, r.n_series, r.n_snapshots)
                ck = r.checkpoint()
                comp = r.f["snapshots/blocks/1/u"].compression or "none"
                # a writer killed after it wrote its final status keeps it; "running"
                # (the writer died mid-run) becomes "interrupted"
                status = r.live_status if r.live_status != "running" else "interrupted"
                message = r.message
            content["wall_time"] = float(ck["wall_time"]) if ck else 0.0
            rec = cls.create(path, network=network, record={"compression": comp},
                             overwrite=True, lock=lock, content=content, **content.pop("file"))
        except BaseException:
            lock.release()
            raise
        try:
            if ck:
                state = SimpleNamespace(y=ck["theta"], **{k: ck[k] for k in FLOAT_FIELDS + INT_FIELDS
                                                           if k != "wall_time"})
                write_checkpoint(rec._ds, 0, state, float(ck["wall_time"]))
                rec.slot = 0
            rec._status(status, message or "the writer died; the file was closed by "
                        "'meanfield close'")
            rec._commit(True)
        finally:
            rec.close()
        return "closed"

    @staticmethod
    def _content(r, ns, nn) -> dict:
        """What a rewritten file keeps of ``r``: its first ``ns`` series rows and ``nn``
        snapshots, its data, configuration and seeds."""
        from ..objective import Dataset   # deferred: it loads Numba

        test = None
        if r.data["x_test"].shape[0]:
            test = Dataset(np.asarray(r.data["x_test"]), np.asarray(r.data["y_test"]))
        return {
            "series": {k: np.asarray(v)[:ns] for k, v in r.series.items()},
            "snapshots": [(int(r.snapshots["step"][i]), float(r.snapshots["t"][i]), r.theta(i))
                          for i in range(nn)],
            "file": {"config_text": r.config_text, "seeds": r.seeds, "test": test,
                     "train": Dataset(np.asarray(r.data["x"]), np.asarray(r.data["y"]))},
        }

    def _restore(self, content: dict) -> None:
        """Write the rows of :meth:`_content` into this (new, in-memory) file."""
        series = content["series"]
        n = len(next(iter(series.values()))) if series else 0
        self._rows = [{k: v[i] for k, v in series.items()} for i in range(n)]
        for step, t, theta in content["snapshots"]:
            self._snapshot(step, t, theta)
        self._commit(True)
        self._handles.clear()

    # -- writing, with failures surfaced -----------------------------------------------
    # HDF5 caches raw data and reports a failed write (a full disk) when the cache is
    # flushed; a dataset handle dropped with dirty chunks reports it from a destructor,
    # where Python ignores it (measured: a run on a full disk then printed "complete",
    # recorded zero-filled snapshots and crashed at exit).  So the recorder keeps its
    # handles, flushes them explicitly, checks the free space before every record event
    # and stops at the first failure, before the counters that would make it visible.
    def _ds(self, name):
        ds = self._handles.get(name)
        if ds is None:
            ds = self._handles[name] = self.f[name]
        return ds

    def _event_bytes(self) -> int:
        """An upper bound of what one record event writes (rows, snapshot, checkpoint)."""
        net = self.network
        theta = net.n_params * np.dtype(net.dtype).itemsize
        rows = (self.BATCH_ROWS + 1) * 8 * (5 + net.L)
        return 2 * theta + rows + 4096

    def _check_space(self) -> None:
        import resource

        try:
            st = os.statvfs(self.folder)
        except OSError:
            return
        free = st.f_bavail * st.f_frsize
        cap = resource.getrlimit(resource.RLIMIT_FSIZE)[0]   # a file-size limit counts too
        if cap != resource.RLIM_INFINITY:
            free = min(free, max(0, cap - os.fstat(self.f.id.get_vfd_handle()).st_size))
        need = self._event_bytes() + SPACE_MARGIN
        if free < need:
            raise OSError(errno.ENOSPC, f"{free} bytes free, a record needs about {need}")

    def _fail(self, err, step) -> None:
        _UNWRITABLE.append((self.f, self._handles))
        ck = self.slot
        reason = err.strerror if isinstance(err, OSError) and err.strerror else \
            str(err).splitlines()[0] if str(err) else type(err).__name__
        where = (f"its last checkpoint is the resume point (meanfield run --resume {self.path})"
                 if ck >= 0 else "it holds no checkpoint")
        self.failed = RunWriteError(
            errno.EIO, f"{self.path}: writing the run file failed at step {step} ({reason}); the "
            f"run stopped and {where}")
        raise self.failed

    def _guarded(self, write, step, check_space=True) -> None:
        """Run a record event: refused after a failure, stopped at the first one."""
        if self.failed is not None:
            raise self.failed
        try:
            if check_space:
                self._check_space()
            write()
        except (OSError, RuntimeError) as e:
            self._fail(e, step)

    def __call__(self, state) -> None:
        self._guarded(lambda: super(H5Recorder, self).__call__(state), state.step)

    def finish(self, status: str, message: str = "") -> None:
        self._guarded(lambda: super(H5Recorder, self).finish(status, message), "the end", False)

    def record_last(self, state) -> None:
        self._guarded(lambda: super(H5Recorder, self).record_last(state), state.step)

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
        n, k = self.n_series, len(self._rows)
        for key in self._rows[0]:
            ds = self._ds(f"series/{key}")
            if ds.shape[0] < n + k:
                ds.resize(n + k, axis=0)
            ds[n:n + k] = np.array([r[key] for r in self._rows])
        self.n_series = n + k
        self._rows = []

    def _snapshot(self, step, t, theta):
        n = self.n_snapshots
        self._append(self._ds("snapshots/step"), n, step)
        self._append(self._ds("snapshots/t"), n, t)
        net = self.network
        for l in range(net.L):
            for p, arr in zip(PARAMS, net.block_arrays(theta, l)):
                self._append(self._ds(f"snapshots/blocks/{l + 1}/{p}"), n, arr)
        if net.has_out_bias:
            self._append(self._ds("snapshots/out_bias"), n, theta[net.off_b])
        self.n_snapshots = n + 1

    def _checkpoint(self, state):
        slot = 1 - self.slot if self.slot >= 0 else 0
        write_checkpoint(self._ds, slot, state, self.wall())
        self._pending_slot = slot

    def _status(self, status, message):
        self._ds("progress/status")[()] = fileformat.fixed_bytes(status, 16)
        self._ds("progress/message")[()] = fileformat.fixed_bytes(message, MESSAGE_BYTES)

    def _flush(self):
        for ds in self._handles.values():
            ds.flush()
        self.f.flush()

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
        self._flush()  # rows first ...
        if self._pending_slot is not None:
            self.slot = self._pending_slot
            self._pending_slot = None
        self._counters[...] = np.array([self.n_series, self.n_snapshots, self.slot], dtype=np.int64)
        self._counters.flush()
        self.f.flush()  # ... then the counters that make them visible
        self._last_commit = time.perf_counter()

    def close(self):
        """Close the file and release the writer lock.  After a failed write the file is
        left open (see ``_UNWRITABLE``): on disk it holds what its counters describe."""
        try:
            if self.failed is None:
                self._handles.clear()
                if self.f.id.valid:
                    self.f.close()
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None


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
    """An open run file (read only; it may be a run still being written: see
    :meth:`refresh`).  Attributes:

    config_text (the stored configuration, "" for a run made from Python), config (the
    parsed configuration: set by :func:`meanfield.open_run`, which parses it; None when
    the file was opened here, or for a run made from Python), seeds ({"init", "data",
    "noise"} -> int, or None where the run did not know it), status ("running" while a
    writer holds the file's lock, "interrupted" when its writer stopped or died before
    the end, "complete", "diverged"), message, series (dict of :class:`Rows`), snapshots (dict: step, t, and
    per block u, c, v as :class:`Rows`), data (x, y, x_test, y_test as h5py datasets),
    n_series, n_snapshots, version, attrs.  :meth:`refresh` replaces ``series``,
    ``snapshots`` and ``data`` (rows taken before it refer to the closed file).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(path)
        if not os.path.exists(path):
            raise RunFileError(f"{path}: no such file")
        self._reopen()
        try:
            self._open()
        except RunFileError:
            self.f.close()
            raise
        except (KeyError, ValueError, TypeError, OSError) as e:
            self.f.close()
            raise RunFileError(f"{path}: damaged or incomplete run file ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None

    def _reopen(self):
        """Open the file: in SWMR mode when a writer's flag is set (a live run, or one
        whose writer was killed), plainly otherwise (SWMR reads retry failed metadata
        checksums for minutes: measured on a truncated file)."""
        import h5py

        try:
            eof = superblock_eof(self.path)
            size = os.path.getsize(self.path)
        except OSError as e:
            raise RunFileError(f"{self.path}: cannot read ({e.strerror})") from None
        if eof is not None and size < eof:
            raise RunFileError(f"{self.path}: truncated ({size} bytes of the {eof} its header "
                               "records)")
        try:
            self.write_flag = status_flags(self.path) != 0   # HDF5's "open for writing"
            if not self.write_flag:
                try:
                    self.f = h5py.File(self.path, "r")
                    return
                except OSError as e:
                    if "already open" not in str(e):
                        raise
            self.f = h5py.File(self.path, "r", libver="latest", swmr=True)
        except OSError as e:
            raise RunFileError(f"{self.path}: not a readable HDF5 file ({str(e).splitlines()[0]})") from None

    def _open(self):
        a = self.f.attrs
        path = self.path
        ver = fileformat.check(a, path, FORMAT, READS_VERSIONS, RunFileError, kind="run file")
        self.version = ver
        self.attrs = dict(a)
        if ver == 1:
            self.config_text = fileformat.text(a.get("config", ""))
            s = int(a["seed"])
            self.seeds = {"init": s, "data": s, "noise": s}
        else:
            self.config_text = fileformat.config_text(a, path, RunFileError)
            self.seeds = fileformat.read_seeds(a)
        self.config = None
        self._template = None
        self._read_progress()

    def refresh(self) -> "Run":
        """Re-read the counters, status and rows (a live run grows between calls).

        The file is reopened: an HDF5 reader that stays open across the writer's growth
        of a chunk index can see stale index entries (measured here: rows past the first
        chunk read as the first chunk again), a fresh open cannot.
        """
        if self.version > 1:
            self.f.close()
            self._reopen()
        return self._read_progress()

    def _read_progress(self) -> "Run":
        f = self.f
        self.data = {k: f["data"][k] for k in ("x", "y", "x_test", "y_test")}
        if self.version == 1:
            a = f.attrs
            n_series, n_snapshots, slot = int(a["n_series"]), int(a["n_snapshots"]), int(a["checkpoint_slot"])
            st, msg = str(a["status"]), str(a.get("message", ""))
        else:
            pg = f["progress"]
            n_series, n_snapshots, slot = (int(x) for x in pg["counters"][...])
            st = pg["status"][()].decode("utf-8", "replace")
            msg = pg["message"][()].decode("utf-8", "replace")
        if slot not in (-1, 0, 1):
            raise RunFileError(f"{self.path}: checkpoint slot {slot} is invalid (expected -1, 0 or 1)")
        for what, n, ds in (("series", n_series, f["series/step"]),
                            ("snapshots", n_snapshots, f["snapshots/step"])):
            if not 0 <= n <= ds.shape[0]:
                raise RunFileError(f"{self.path}: the file claims {n} {what} rows but holds {ds.shape[0]}")
        self.n_series, self.n_snapshots, self.checkpoint_slot = n_series, n_snapshots, slot
        self.live_status = st
        if st == "running":   # written now, or left so by a writer that died
            st = "running" if writer_alive(self.path) else "interrupted"
        self.status = st
        self.message = msg
        # a writer that died leaves HDF5's "open for writing" flag: plain h5py, xarray and
        # h5dump refuse the file until `meanfield close` rewrites it (H5Recorder.seal)
        self.unclosed = st != "running" and self.version > 1 and self.write_flag
        self.series = {k: Rows(v, n_series) for k, v in f["series"].items() if k != "block"}
        sn = f["snapshots"]
        self.snapshots = {"step": Rows(sn["step"], n_snapshots), "t": Rows(sn["t"], n_snapshots)}
        for l in sn["blocks"]:
            for p in PARAMS:
                self.snapshots[group_name(int(l), p)] = Rows(sn[f"blocks/{l}/{p}"], n_snapshots)
        if "out_bias" in sn:
            self.snapshots[OUT_BIAS] = Rows(sn["out_bias"], n_snapshots)
        return self

    def __repr__(self) -> str:
        if not self.f.id.valid:
            return f"<Run {self.path} (closed)>"
        try:
            net = self.template()
            arch = f", d={net.d}, widths={list(net.widths)}"
        except RunFileError:
            arch = ""
        return (f"<Run {self.status}: {self.path}, format {self.version}{arch}, "
                f"{self.n_series} series rows, {self.n_snapshots} snapshots"
                + (f"; {CLOSE_HINT.format(path=self.path)}" if self.unclosed else "") + ">")

    def to_dataframe(self) -> pandas.DataFrame:
        """The series as a pandas DataFrame indexed by step (:func:`meanfield.analysis.
        run_dataframe`; needs pandas)."""
        from ..analysis import run_dataframe

        return run_dataframe(self)

    def to_xarray(self, snapshots: bool = True) -> xarray.Dataset:
        """The run as a labelled xarray Dataset: series over ``step`` and ``block``,
        particles over ``snapshot``, ``particle_l``, ``coordinate_*_l``, with units and
        long names (:func:`meanfield.analysis.run_xarray`; needs xarray)."""
        from ..analysis import run_xarray

        return run_xarray(self, snapshots)

    def attach(self, config: dict, template: Network | None = None) -> Run:
        """Attach the parsed configuration (and, for a version-1 file, which describes no
        network, the network it builds): what :func:`meanfield.open_run` does."""
        self.config = config
        if template is not None and self._template is None:
            self._template = template
        return self

    def template(self) -> Network:
        """The run's network architecture (parameters zero; for a version-1 file, the
        network the attached configuration builds)."""
        if self._template is None:
            if "network" not in self.f:
                raise RunFileError(f"{self.path}: the file describes no network (a version-1 "
                                   "file: open it with meanfield.open_run)")
            self._template = read_architecture(self.f["network"])
        return self._template

    def theta(self, i: int) -> np.ndarray:
        """The flat parameter vector of snapshot ``i`` (negative counts from the end)."""
        net = self.template()
        theta = np.empty_like(net.theta)
        for name, start, shape, _ in net.groups():
            row = self.snapshots[name][i]
            theta[start:start + int(np.prod(shape))] = np.asarray(row).ravel()
        return theta

    def network(self, i: int = -1) -> Network:
        """The network at snapshot ``i`` (a callable :class:`~meanfield.Network`)."""
        return self.template().with_theta(self.theta(i))

    def checkpoint(self) -> dict:
        """The newest checkpoint: its state fields and ``theta`` ({} if none)."""
        if self.checkpoint_slot < 0:
            return {}
        cs = self.f[f"checkpoint/{self.checkpoint_slot}"]
        out = read_checkpoint(cs, self.version)
        out["seed"] = self.seeds["noise"]
        return out

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

