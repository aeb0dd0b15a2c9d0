"""The gap file (docs/format.md, ``format = "meanfield-gap"``) and :class:`GapResult`,
the in-memory form of a sweep that :func:`meanfield.discretization.sweep` returns and
:func:`open_gap` reads back.

The file is small (particles of the reference at the gap times, final particles of
every member, outputs on the test sample) and is written whole: to a temporary file in
the same folder, then renamed over the previous version.  A sweep killed at any moment
leaves the last complete version, with every finished task in it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile

import numpy as np

from .sweep import DECOMPOSITION_TERMS, SweepOptions

FORMAT = "meanfield-gap"
FORMAT_VERSION = 1
READS_VERSIONS = (1,)


class GapFileError(ValueError):
    """Not a readable gap file (one line)."""


class GapResult:
    """A width sweep: options, reference trace, members' gaps, rates.

    Arrays (W widths, S seeds, T gap times, L blocks, N test points):

    widths (W,) the first block's widths;  block_widths (W, L);  seeds (S,);  t, steps (T,)
    function (W, S, T) ‖f_m − f_M‖ on the test sample
    loss_train, loss_test (W, S, T) L_m − L_M
    feature, coupling, w2, sliced_w2, mmd2 (W, S, T, L);  w2_floor, sliced_w2_floor (W, T, L)
    outputs (W, S, T, N) f_m on the test sample;  decomposition: dict term -> (W, S, T)
    reference: dict with t, step, theta (T, P), outputs (T, N), loss_train, loss_test
    (T,), features (list of (T, N, k_l)), decomposition (dict term -> (T,) or None),
    status, message
    done (W,) bool;  status (W,) str per width ("" until it ran)
    theta: list of (S, P_w) final particles per width (None until it ran);  sigma: list
    (per width) of lists (per block) of (S, m_l), subsample coupling only
    rates: dict name -> {"beta", "beta_lo", "beta_hi", "C"} (T,) arrays, with "x" (what
    the width axis is), "level", "n_boot"; names "function", "bias", "feature/<l>",
    "coupling/<l>" (1-based l); empty until the sweep is complete
    extrapolation: dict (see :meth:`compute_rates`)
    """

    def __init__(self, config: dict, options: SweepOptions, x_test, y_test):
        self.config = config
        self.options = options
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
        W = options.W
        self.done = np.zeros(W, dtype=bool)
        self.status = [""] * W
        self.theta = [None] * W
        self.sigma = [None] * W
        self.reference = None
        self.data = {}
        self.rates = {}
        self.extrapolation = {}
        self.path = None
        self.created = None
        self.attrs = {}
        self._template = None

    # -- shape helpers --
    @property
    def widths(self) -> np.ndarray:
        return self.options.m

    @property
    def block_widths(self) -> np.ndarray:
        return np.array(self.options.widths)

    @property
    def seeds(self) -> np.ndarray:
        return np.arange(self.options.seeds)

    @property
    def t(self) -> np.ndarray:
        return self.reference["t"] if self.reference else np.zeros(0)

    @property
    def steps(self) -> np.ndarray:
        return self.reference["step"] if self.reference else np.zeros(0, dtype=np.int64)

    @property
    def complete(self) -> bool:
        return self.reference is not None and bool(self.done.all())

    def __getattr__(self, name):
        data = self.__dict__.get("data", {})
        if name in data:
            return data[name]
        raise AttributeError(name)

    def set_reference(self, trace: dict) -> None:
        """Take the reference task's trace and allocate the members' arrays (NaN)."""
        self.reference = dict(trace)
        W, S, T, L = self.options.W, self.options.seeds, len(trace["t"]), len(trace["features"])
        N = self.x_test.shape[0]
        d = self.data
        for k in ("function", "loss_train", "loss_test"):
            d[k] = np.full((W, S, T), np.nan)
        for k in ("feature", "coupling", "w2", "sliced_w2", "mmd2"):
            d[k] = np.full((W, S, T, L), np.nan)
        d["outputs"] = np.full((W, S, T, N), np.nan)
        d["w2_floor"] = np.asarray(trace["w2_floor"])
        d["sliced_w2_floor"] = np.asarray(trace["sliced_w2_floor"])
        d["decomposition"] = ({k: np.full((W, S, T), np.nan) for k in DECOMPOSITION_TERMS}
                              if trace["decomposition"] is not None else None)

    def set_width(self, w: int, res: dict) -> None:
        """Take width index ``w``'s task result."""
        ref = self.reference
        d = self.data
        d["function"][w] = res["function"]
        d["loss_train"][w] = res["loss_train"] - ref["loss_train"][None, :]
        d["loss_test"][w] = res["loss_test"] - ref["loss_test"][None, :]
        for k in ("feature", "coupling", "w2", "sliced_w2", "mmd2", "outputs"):
            d[k][w] = res[k]
        if d["decomposition"] is not None:
            for i, k in enumerate(DECOMPOSITION_TERMS):
                d["decomposition"][k][w] = res["decomposition"][..., i]
        self.theta[w] = np.asarray(res["theta"])
        self.sigma[w] = res["sigma"]
        self.status[w] = res["status"]
        self.done[w] = True

    def template(self):
        """The reference's initial network (its architecture, and the initial particles):
        a copy, made once (every write of the file needs the architecture)."""
        if self._template is None:
            from .. import config as C
            from .sweep import reference_config

            self._template = C.make_network(reference_config(self.config, self.options))
        return self._template.copy()

    # -- rates --
    def compute_rates(self) -> None:
        """Fit the rates at every gap time and extrapolate (needs every width done).

        Rates: the RMS gap of single networks ("function"), the gap of the seed-averaged
        function ("bias"), the feature and coupling gaps per block; against the effective
        width (1/m ∓ 1/M)⁻¹ of the first block (see :func:`.rates.effective_widths`).
        A time where a measure is zero or not finite for some member gets NaN.
        Extrapolation: the seed-mean test loss at every time (Richardson, in 1/m or 1/√m,
        whichever fits better) against the reference's; at the last time, f on the test
        sample point by point, and its L² distance to f_M next to the widest member's.
        """
        from .measures import output_gap
        from .rates import _xlabel, extrapolate, fit_bias_rate, fit_rate

        o = self.options
        m = self.widths
        T, L = len(self.t), len(self.reference["features"])
        kw = dict(M=o.reference_width[0], coupling=o.coupling, n_boot=o.n_boot, level=o.level)
        series = {"function": self.function}
        for l in range(L):
            series[f"feature/{l + 1}"] = self.feature[..., l]
            if o.coupling == "subsample":
                series[f"coupling/{l + 1}"] = self.coupling[..., l]
        rates = {}
        for name, g in list(series.items()) + [("bias", None)]:
            r = {k: np.full(T, np.nan) for k in ("beta", "beta_lo", "beta_hi", "C")}
            for j in range(T):
                if name == "bias":
                    f = self.outputs[:, :, j]
                    if not np.isfinite(f).all():
                        continue
                    fit = fit_bias_rate(m, f, self.reference["outputs"][j], seed=j, **kw)
                else:
                    gj = g[:, :, j]
                    if not (np.isfinite(gj).all() and (gj > 0).all()):
                        continue
                    fit = fit_rate(m, gj, seed=j, **kw)
                for k in r:
                    r[k][j] = getattr(fit, k)
            r.update(x=_xlabel(kw["M"], o.coupling), level=o.level, n_boot=o.n_boot)
            rates[name] = r
        self.rates = rates
        ex = {"value": np.full(T, np.nan), "error": np.full(T, np.nan),
              "variable": [""] * T, "reference": np.asarray(self.reference["loss_test"])}
        if m.size >= 3:
            for j in range(T):
                vals = np.mean(self.loss_test[:, :, j], axis=1) + self.reference["loss_test"][j]
                if np.isfinite(vals).all():
                    e = extrapolate(m, vals)
                    ex["value"][j], ex["error"][j], ex["variable"][j] = e.value, e.error, e.variable
        fx = {}
        f = self.outputs[:, :, -1].mean(axis=1)   # (W, N)
        if m.size >= 3 and np.isfinite(f).all():
            e = extrapolate(m, f)
            fref = self.reference["outputs"][-1]
            fx = {"variable": e.variable, "extrapolated_gap": output_gap(e.value, fref),
                  "widest_gap": output_gap(f[-1], fref)}
        self.extrapolation = {"test_loss": ex, "function": fx}

    # -- text summary --
    def summary(self) -> str:
        o = self.options
        lines = []
        status = getattr(self, "file_status", None) or ("complete" if self.complete else "incomplete")
        if status == "running" and not self.complete:
            status = "incomplete (resume with --resume)"
        lines.append(f"sweep: {status}; {o.W} widths {list(map(int, self.widths))} x {o.seeds} "
                     f"seeds, reference {list(o.reference_width)}, coupling {o.coupling}")
        lines.append(f"done: {int(self.done.sum())}/{o.W} widths" +
                     ("" if self.reference is not None else "; the reference has not finished"))
        if self.reference is not None:
            lines.append(f"gap times: {len(self.t)} (every {o.every} steps), t = 0 … {self.t[-1]:.6g}; "
                         f"reference {self.reference['status']}, test loss "
                         f"{self.reference['loss_test'][0]:.4e} -> {self.reference['loss_test'][-1]:.4e}")
        if self.reference is not None and self.done.any():
            w = int(np.flatnonzero(self.done)[-1])
            j = len(self.t) - 1
            lines.append(f"distances between clouds of at most {o.distance_size} particles (seeded "
                         f"subsamples of member and reference), at t = {self.t[j]:.4g} for m = "
                         f"{int(self.widths[w])} (mean over seeds; noise floor in brackets):")
            for l in range(len(self.reference["features"])):
                lines.append(f"  block {l + 1}: W2 {np.mean(self.w2[w, :, j, l]):.4g} "
                             f"[{self.w2_floor[w, j, l]:.4g}], sliced W2 "
                             f"{np.mean(self.sliced_w2[w, :, j, l]):.4g} [{self.sliced_w2_floor[w, j, l]:.4g}], "
                             f"MMD2 {np.mean(self.mmd2[w, :, j, l]):.3g}")
        if self.rates:
            r = self.rates["function"]
            b = self.rates["bias"]
            lines.append(f"rate of the function gap against the {r['x']} ({100 * r['level']:.0f} % "
                         f"bootstrap interval over seeds, {r['n_boot']} resamples):")
            for j in sorted({0, len(self.t) - 1}):
                lines.append(f"  t = {self.t[j]:<10.4g} beta = {r['beta'][j]:.3f} "
                             f"[{r['beta_lo'][j]:.3f}, {r['beta_hi'][j]:.3f}];  bias (seed-averaged) "
                             f"beta = {b['beta'][j]:.3f} [{b['beta_lo'][j]:.3f}, {b['beta_hi'][j]:.3f}]")
            ex = self.extrapolation.get("test_loss")
            if ex is not None and np.isfinite(ex["value"][-1]):
                lines.append(f"test loss at the end extrapolated to m -> inf (in {ex['variable'][-1]}): "
                             f"{ex['value'][-1]:.4e} +- {ex['error'][-1]:.1e}; reference "
                             f"{ex['reference'][-1]:.4e}")
            fx = self.extrapolation.get("function")
            if fx:
                lines.append(f"f at the end extrapolated (in {fx['variable']}): gap to f_M "
                             f"{fx['extrapolated_gap']:.3e}, against {fx['widest_gap']:.3e} for the "
                             "widest members' mean")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------
def _s(text) -> np.bytes_:
    return np.bytes_(str(text).encode("utf-8"))


def write(path, res: GapResult, status: str, message: str = "") -> None:
    """Write ``res`` to ``path`` atomically (temporary file, fsync, rename).  A failed
    write raises OSError and leaves ``path`` as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        try:
            _fill(tmp, res, status, message)
        except (OSError, RuntimeError) as e:   # HDF5 reports a failed write on close as RuntimeError
            raise _os_error(e) from None
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _os_error(e) -> OSError:
    """An OSError with errno and strerror from an HDF5 error (its text names the errno)."""
    import errno as _errno
    import re

    if isinstance(e, OSError) and e.errno:
        return e
    m = re.search(r"errno = (\d+)", str(e))
    code = int(m.group(1)) if m else _errno.EIO
    return OSError(code, os.strerror(code))


def _fill(tmp, res, status, message) -> None:
    import h5py
    import numba

    from .. import __version__
    from .. import config as C
    from ..store import write_architecture

    with h5py.File(tmp, "w") as f:
        a = f.attrs
        text = C.dumps(res.config)
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        a["package_version"] = __version__
        a["created"] = res.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["config"] = text
        a["config_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        a["options"] = json.dumps(res.options.to_dict(), sort_keys=True)
        for k in ("init", "data", "noise"):
            a[f"seed_{k}"] = np.uint64(res.config["seed"][k])
        a["numpy_version"] = np.__version__
        a["numba_version"] = numba.__version__
        a["h5py_version"] = h5py.__version__
        write_architecture(f.create_group("network"), res.template())
        dg = f.create_group("data")
        dg.create_dataset("x_test", data=res.x_test)
        dg.create_dataset("y_test", data=res.y_test)
        g = f.create_group("gap")
        g.create_dataset("widths", data=res.widths.astype(np.int64))
        g.create_dataset("block_widths", data=res.block_widths.astype(np.int64))
        g.create_dataset("seeds", data=res.seeds.astype(np.int64))
        g.create_dataset("reference_width", data=np.array(res.options.reference_width, dtype=np.int64))
        if res.reference is not None:
            ref = res.reference
            g.create_dataset("t", data=np.asarray(ref["t"], dtype=float))
            g.create_dataset("steps", data=np.asarray(ref["step"], dtype=np.int64))
            for k, v in res.data.items():
                if k == "decomposition":
                    if v is not None:
                        for term, arr in v.items():
                            g.create_dataset(f"decomposition/{term}", data=arr)
                else:
                    g.create_dataset(k, data=v)
            rg = f.create_group("reference")
            rg.attrs["status"] = ref["status"]
            rg.attrs["message"] = ref["message"]
            for k in ("theta", "outputs", "loss_train", "loss_test"):
                rg.create_dataset(k, data=np.asarray(ref[k], dtype=float))
            for l, h in enumerate(ref["features"]):
                rg.create_dataset(f"features/{l + 1}", data=h)
            if ref["decomposition"] is not None:
                for i, term in enumerate(DECOMPOSITION_TERMS):
                    rg.create_dataset(f"decomposition/{term}", data=ref["decomposition"][:, i])
            for k in ("w2_floor", "sliced_w2_floor"):
                rg.create_dataset(k, data=ref[k])
        mg = f.create_group("members")
        for w in range(res.options.W):
            if res.done[w]:
                wg = mg.create_group(str(w))
                wg.attrs["status"] = res.status[w]
                wg.create_dataset("theta", data=res.theta[w])
                if res.sigma[w] is not None:
                    for l, s in enumerate(res.sigma[w]):
                        wg.create_dataset(f"sigma/{l + 1}", data=np.asarray(s, dtype=np.int64))
        for name, r in res.rates.items():
            rg = g.create_group(f"rate/{name}")
            for k in ("beta", "beta_lo", "beta_hi", "C"):
                rg.create_dataset(k, data=r[k])
            rg.attrs["x"], rg.attrs["level"], rg.attrs["n_boot"] = r["x"], r["level"], r["n_boot"]
        if res.extrapolation:
            eg = g.create_group("extrapolation")
            ex = res.extrapolation["test_loss"]
            tg = eg.create_group("test_loss")
            for k in ("value", "error", "reference"):
                tg.create_dataset(k, data=np.asarray(ex[k], dtype=float))
            tg.create_dataset("variable", data=np.array([_s(v) for v in ex["variable"]], dtype="S16"))
            fg = eg.create_group("function")
            for k, v in res.extrapolation["function"].items():
                fg.attrs[k] = v
        # written last: what is done
        g.create_dataset("done", data=res.done.astype(np.uint8))
        a["status"] = status
        a["message"] = message


# ----------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------
def open_gap(path) -> GapResult:
    """Read a gap file into a :class:`GapResult` (GapFileError, one line, when it is
    not a readable gap file of a supported version)."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise GapFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise GapFileError(f"{path}: not a readable HDF5 file ({str(e).splitlines()[0]})") from None
    try:
        with f:
            return _read(f, path)
    except GapFileError:
        raise
    except (KeyError, ValueError, TypeError, OSError, IndexError) as e:
        raise GapFileError(f"{path}: damaged or incomplete gap file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None


def _str(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _read(f, path) -> GapResult:
    from .. import config as C

    a = f.attrs
    fmt = _str(a.get("format", ""))
    if fmt != FORMAT:
        hint = " (a run file: use open_run)" if fmt == "meanfield-run" else ""
        raise GapFileError(f"{path}: not a meanfield gap file (no format = '{FORMAT}' attribute){hint}")
    ver = int(a.get("format_version", -1))
    if ver not in READS_VERSIONS:
        raise GapFileError(f"{path}: gap format version {ver} is not supported by this meanfield "
                           f"(reads versions {', '.join(map(str, READS_VERSIONS))}); upgrade meanfield")
    text = _str(a["config"])
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != _str(a["config_sha256"]):
        raise GapFileError(f"{path}: the stored configuration does not match its checksum (edited or "
                           "damaged); refusing to use it")
    try:
        cfg = C.load(text)
    except C.ConfigError as e:
        raise GapFileError(f"{path}: the stored configuration is invalid ({e})") from None
    opts = SweepOptions.from_dict(json.loads(_str(a["options"])))
    g = f["gap"]
    res = GapResult(cfg, opts, f["data/x_test"][()], f["data/y_test"][()])
    res.path, res.created = path, _str(a["created"])
    res.attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in a.items()}
    res.file_status, res.file_message = _str(a["status"]), _str(a["message"])
    if "reference" in f:
        rg = f["reference"]
        L = len(opts.reference_width)
        trace = {"t": g["t"][()], "step": g["steps"][()], "status": _str(rg.attrs["status"]),
                 "message": _str(rg.attrs["message"])}
        for k in ("theta", "outputs", "loss_train", "loss_test", "w2_floor", "sliced_w2_floor"):
            trace[k] = rg[k][()]
        trace["features"] = [rg[f"features/{l + 1}"][()] for l in range(L)]
        trace["decomposition"] = (np.stack([rg[f"decomposition/{k}"][()] for k in DECOMPOSITION_TERMS],
                                           axis=1) if "decomposition" in rg else None)
        res.set_reference(trace)
        for k in res.data:
            if k == "decomposition":
                if res.data[k] is not None:
                    res.data[k] = {t: g[f"decomposition/{t}"][()] for t in DECOMPOSITION_TERMS}
            else:
                res.data[k] = g[k][()]
    done = g["done"][()].astype(bool)
    if done.shape != (opts.W,) or (done.any() and res.reference is None):
        raise GapFileError(f"{path}: damaged gap file (/gap/done does not match the sweep)")
    for w in np.flatnonzero(done):
        wg = f[f"members/{w}"]
        res.done[w] = True
        res.status[w] = _str(wg.attrs["status"])
        res.theta[w] = wg["theta"][()]
        res.sigma[w] = ([wg[f"sigma/{l + 1}"][()] for l in range(len(opts.reference_width))]
                        if "sigma" in wg else None)
    if "rate" in g:
        for name in _rate_names(g["rate"]):
            rg = g[f"rate/{name}"]
            r = {k: rg[k][()] for k in ("beta", "beta_lo", "beta_hi", "C")}
            r.update(x=_str(rg.attrs["x"]), level=float(rg.attrs["level"]), n_boot=int(rg.attrs["n_boot"]))
            res.rates[name] = r
    if "extrapolation" in g:
        tg = g["extrapolation/test_loss"]
        ex = {k: tg[k][()] for k in ("value", "error", "reference")}
        ex["variable"] = [_str(v) for v in tg["variable"][()]]
        fx = {k: (_str(v) if isinstance(v, (bytes, str)) else float(v))
              for k, v in g["extrapolation/function"].attrs.items()}
        res.extrapolation = {"test_loss": ex, "function": fx}
    return res


def _rate_names(group) -> list:
    out = []
    for k, v in group.items():
        if "beta" in v:
            out.append(k)
        else:
            out.extend(f"{k}/{s}" for s in v)
    return sorted(out)
