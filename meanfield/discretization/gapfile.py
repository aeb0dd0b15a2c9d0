"""The gap file (docs/format.md, ``format = "meanfield-gap"``): the stored form of a
:class:`~.result.GapResult`, written by :func:`write` and read by :func:`open_gap`.

The file is small (particles of the reference at the gap times, final particles of
every member, outputs on the test sample) and is written whole: to a temporary file in
the same folder, then renamed over the previous version.  A sweep killed at any moment
leaves the last complete version, with every finished task in it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .. import config as C
from ..layout import GAP_ATTRS, GAP_DIMS
from ..store import fileformat, write_architecture
from .options import SweepOptions
from .result import (ARRAYS, DECOMPOSITION_TERMS, FLOORS, RATE_FIELDS,
                     REFERENCE_ARRAYS, GapResult, Trace)

FORMAT = "meanfield-gap"
FORMAT_VERSION = 2     # 2: the options' reference, samples and limit rules; /reference/weights, error
READS_VERSIONS = (1, 2)


class GapFileError(ValueError):
    """Not a readable gap file (one line)."""


class GapWriteError(OSError):
    """The gap file could not be written (full disk, I/O error); its previous version is
    intact (the command line exits with 1)."""


# ----------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------
def write(path, res: GapResult, status: str, message: str = "") -> None:
    """Write ``res`` to ``path`` atomically: the file is built in memory, written to a
    temporary file with plain writes (fsync), then renamed over ``path``.  A failed
    write (full disk) raises OSError, removes the temporary file and leaves ``path`` as
    it was."""
    image = fileformat.build_image(lambda f: _fill(f, res, status, message))
    tmp = fileformat.temporary(path)
    try:
        fileformat.write_image(tmp, image)
        fileformat.publish(tmp, path, overwrite=True)
    except BaseException:
        fileformat.discard(tmp)
        raise


def _fill(f, res, status, message) -> None:
    """Write ``res`` into the new, empty HDF5 file ``f``."""
    a = f.attrs
    fileformat.stamp(a, FORMAT, FORMAT_VERSION, C.dumps(res.config), res.config["seed"],
                     created=res.created)
    a["updated"] = fileformat.now()
    a["options"] = json.dumps(res.options.to_dict(), sort_keys=True)
    a["options_sha256"] = fileformat.sha256(a["options"])
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
        g.create_dataset("t", data=np.asarray(ref.t, dtype=float))
        g.create_dataset("steps", data=np.asarray(ref.step, dtype=np.int64))
        for k in ARRAYS:
            g.create_dataset(k, data=getattr(res, k))
        if res.decomposition is not None:
            for term, arr in res.decomposition.items():
                g.create_dataset(f"decomposition/{term}", data=arr)
        rg = f.create_group("reference")
        rg.attrs["status"] = ref.status
        rg.attrs["message"] = ref.message
        for k in REFERENCE_ARRAYS:
            rg.create_dataset(k, data=np.asarray(getattr(ref, k), dtype=float))
        for l, h in enumerate(ref.features):
            rg.create_dataset(f"features/{l + 1}", data=h)
        if ref.decomposition is not None:
            for i, term in enumerate(DECOMPOSITION_TERMS):
                rg.create_dataset(f"decomposition/{term}", data=ref.decomposition[:, i])
        for k in FLOORS:
            rg.create_dataset(k, data=getattr(ref, k))
        if ref.weights is not None:
            rg.create_dataset("weights", data=np.asarray(ref.weights, dtype=float))
            rg.create_dataset("error", data=np.asarray(ref.error, dtype=float))
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
        for k in RATE_FIELDS:
            rg.create_dataset(k, data=r[k])
        rg.attrs["x"], rg.attrs["level"], rg.attrs["n_boot"] = r["x"], r["level"], r["n_boot"]
        rg.attrs["interval"] = r.get("interval", res.options.interval)
    if res.extrapolation:
        eg = g.create_group("extrapolation")
        ex = res.extrapolation["test_loss"]
        tg = eg.create_group("test_loss")
        for k in ("value", "error", "reference"):
            tg.create_dataset(k, data=np.asarray(ex[k], dtype=float))
        tg.create_dataset("variable", data=np.array([fileformat.fixed_bytes(v, 16) for v in ex["variable"]], dtype="S16"))
        fg = eg.create_group("function")
        for k, v in res.extrapolation["function"].items():
            fg.attrs[k] = v
    # written last: what is done
    g.create_dataset("done", data=res.done.astype(np.uint8))
    _labels(f, res)
    a["status"] = status
    a["message"] = message


def _labels(f, res) -> None:
    """Dimension scales, long names and units (docs/format.md, "Labels"), so that xarray
    (engine h5netcdf) and other netCDF-4 readers see named dimensions: ``widths``,
    ``seeds``, ``t``, ``block`` and ``point`` (the test sample) at the root;
    ``coordinate`` in /data, and per group ``parameter``, ``feature_<l>``,
    ``particle_<l>``, ``node``."""
    ff = fileformat
    g, dg = f["gap"], f["data"]
    L = len(res.options.reference_width)
    # dimensions shared by sibling groups live at the root (netCDF scoping: a group sees
    # its own and its ancestors' dimensions); /gap/widths, /gap/seeds, /gap/t carry
    # their values and so become xarray's coordinates of those dimensions
    widths = ff.dimension(f, "widths", g["widths"].shape[0])
    seeds = ff.dimension(f, "seeds", g["seeds"].shape[0])
    block = ff.dimension(f, "block", L)
    point = ff.dimension(f, "point", res.x_test.shape[0])
    ff.attach(ff.label(g["widths"], "width m of the members' first block"), widths)
    ff.attach(ff.label(g["seeds"], "member index within a width"), seeds)
    ff.attach(ff.label(dg["x_test"], "test inputs"), point, ff.dimension(dg, "coordinate", res.x_test.shape[1]))
    ff.attach(ff.label(dg["y_test"], "test targets"), point)
    ff.attach(ff.label(g["block_widths"], "member widths per block"), widths, block)
    ff.attach(ff.label(g["reference_width"], "reference width per block"), block)
    ff.attach(ff.label(g["done"], "1 where every seed of the width is finished"), widths)
    if "t" in g:
        t = ff.dimension(f, "t", g["t"].shape[0])
        ff.attach(ff.label(g["t"], "flow time of the gap time"), t)
        ff.attach(ff.label(g["steps"], "solver step of the gap time"), t)
        scales = {"W": widths, "S": seeds, "T": t, "L": block, "N": point}
        for k in ARRAYS:
            ff.attach(ff.label(g[k], *GAP_ATTRS[k]), *(scales[c] for c in GAP_DIMS[k]))
        if "decomposition" in g:
            for term in g["decomposition"]:
                ff.attach(ff.label(g[f"decomposition/{term}"], f"[RZG] decomposition: {term}"),
                          widths, seeds, t)
        rg = f["reference"]
        ff.attach(ff.label(rg["theta"], "the reference's parameters (the limit's state)"), t,
                  ff.dimension(rg, "parameter", rg["theta"].shape[1]))
        ff.attach(ff.label(rg["outputs"], "f_M on the test sample"), t, point)
        for k in ("loss_train", "loss_test"):
            ff.attach(ff.label(rg[k], f"the reference's {k.replace('_', ' ')}"), t)
        for k in FLOORS:
            ff.attach(ff.label(rg[k], *GAP_ATTRS[k]), *(scales[c] for c in GAP_DIMS[k]))
        for l in range(L):
            h = rg[f"features/{l + 1}"]
            ff.attach(ff.label(h, f"the reference's feature h of block {l + 1} on the test sample"),
                      t, point, ff.dimension(rg, f"feature_{l + 1}", h.shape[2]))
        if "decomposition" in rg:
            for term in rg["decomposition"]:
                ff.attach(ff.label(rg[f"decomposition/{term}"], f"[RZG] decomposition: {term}"), t)
        if "weights" in rg:
            ff.attach(ff.label(rg["weights"], "quadrature weights of the limit's nodes"),
                      ff.dimension(rg, "node", rg["weights"].shape[0]))
            ff.attach(ff.label(rg["error"], "estimated error of the limit's f (half the nodes)"), t)
        if "rate" in g:
            def rates(group):
                for k, v in group.items():
                    if k in RATE_FIELDS:
                        ff.attach(ff.label(v, f"rate fit: {k}"), t)
                    elif hasattr(v, "items"):
                        rates(v)
            rates(g["rate"])
        if "extrapolation" in g:
            for k, v in g["extrapolation/test_loss"].items():
                ff.attach(ff.label(v, f"test loss extrapolated to m -> inf: {k}"), t)
    for w, wg in f["members"].items():
        th = wg["theta"]
        ff.attach(ff.label(th, "final parameters of each seed"), seeds,
                  ff.dimension(wg, "parameter", th.shape[1]))
        if "sigma" in wg:
            for l, sg in wg["sigma"].items():
                ff.attach(ff.label(sg, "index of each particle's reference particle"), seeds,
                          ff.dimension(wg, f"particle_{l}", sg.shape[1]))


# ----------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------
def open_gap(path: str | os.PathLike[str]) -> GapResult:
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


_str = fileformat.text


def _read(f, path) -> GapResult:
    a = f.attrs
    fileformat.check(a, path, FORMAT, READS_VERSIONS, GapFileError, kind="gap file")
    text = fileformat.config_text(a, path, GapFileError)
    try:
        cfg = C.load(text)
    except C.ConfigError as e:
        raise GapFileError(f"{path}: the stored configuration is invalid ({e})") from None
    options = _str(a["options"])
    if "options_sha256" in a and fileformat.sha256(options) != _str(a["options_sha256"]):
        raise GapFileError(f"{path}: the stored sweep options do not match their checksum (edited "
                           "or damaged); refusing to use the gap file")
    opts = SweepOptions.from_dict(json.loads(options))
    g = f["gap"]
    res = GapResult(cfg, opts, f["data/x_test"][()], f["data/y_test"][()])
    res.path, res.created = path, _str(a["created"])
    res.attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in a.items()}
    res.mark(_str(a["status"]), _str(a["message"]))
    if "reference" in f:
        rg = f["reference"]
        L = len(opts.reference_width)
        arrays = {k: rg[k][()] for k in REFERENCE_ARRAYS + FLOORS}
        res.set_reference(Trace(
            t=g["t"][()], step=g["steps"][()], status=_str(rg.attrs["status"]),
            message=_str(rg.attrs["message"]),
            features=[rg[f"features/{l + 1}"][()] for l in range(L)],
            decomposition=(np.stack([rg[f"decomposition/{k}"][()] for k in DECOMPOSITION_TERMS],
                                    axis=1) if "decomposition" in rg else None),
            weights=rg["weights"][()] if opts.limit else None,
            error=rg["error"][()] if opts.limit else None,
            **arrays))
        for k in ARRAYS:
            setattr(res, k, g[k][()])
        if res.decomposition is not None:
            res.decomposition = {t: g[f"decomposition/{t}"][()] for t in DECOMPOSITION_TERMS}
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
            r = {k: rg[k][()] for k in RATE_FIELDS}
            r.update(x=_str(rg.attrs["x"]), level=float(rg.attrs["level"]), n_boot=int(rg.attrs["n_boot"]),
                     interval=_str(rg.attrs["interval"]) if "interval" in rg.attrs else "percentile")
            res.rates[name] = r
    if "extrapolation" in g:
        tg = g["extrapolation/test_loss"]
        ex = {k: tg[k][()] for k in ("value", "error", "reference")}
        ex["variable"] = [_str(v) for v in tg["variable"][()]]
        fx = {k: (_str(v) if isinstance(v, (bytes, str)) else float(v))
              for k, v in g["extrapolation/function"].attrs.items()}
        res.extrapolation = {"test_loss": ex, "function": fx}
    _check_shapes(res, path)
    return res


def _check_shapes(res: GapResult, path) -> None:
    """Every array against the sweep's dimensions (W widths, S seeds, T gap times, L
    blocks, N test points, P parameters): GapFileError naming the first that differs."""
    o, cfg = res.options, res.config
    dims = [cfg["model"]["d"]] + list(cfg["model"]["bottleneck"]) + [1]
    W, S, L, N = o.W, o.seeds, len(dims) - 1, res.x_test.shape[0]

    def expect(name, arr, shape):
        got = np.shape(arr)
        if got != tuple(shape):
            raise GapFileError(f"{path}: damaged gap file ({name} has shape {got}, the sweep's "
                               f"dimensions give {tuple(shape)})")

    if len(o.reference_width) != L or any(len(w) != L for w in o.widths):
        raise GapFileError(f"{path}: damaged gap file (the options' widths do not have the "
                           f"network's {L} blocks)")
    expect("/data/x_test", res.x_test, (N, dims[0]))
    expect("/data/y_test", res.y_test, (N,))
    ref = res.reference
    if ref is not None:
        T = len(ref.t)
        P = C.parameter_count(cfg, o.reference_width)
        if o.limit:   # the limit's state and weights, as its rules give them
            try:
                lim = C.make_limit(cfg, nodes=o.limit_nodes, norm_nodes=o.limit_norm_nodes,
                                   rule=o.limit_rule)
            except C.ConfigError as e:
                raise GapFileError(f"{path}: the stored configuration has no limit ({e})") from None
            P = lim.size
            expect("/reference/weights", ref.weights, (sum(w.size for _, w in lim.clouds(lim.y0)),))
            expect("/reference/error", ref.error, (T,))
        for k, shape in (("t", (T,)), ("step", (T,)), ("theta", (T, P)),
                         ("outputs", (T, N)), ("loss_train", (T,)), ("loss_test", (T,)),
                         ("w2_floor", (W, T, L)), ("sliced_w2_floor", (W, T, L))):
            expect(f"/reference/{k}", getattr(ref, k), shape)
        if len(ref.features) != L:
            raise GapFileError(f"{path}: damaged gap file ({len(ref.features)} reference features "
                               f"for {L} blocks)")
        for l, h in enumerate(ref.features):
            expect(f"/reference/features/{l + 1}", h, (T, N, dims[l + 1]))
        if ref.decomposition is not None:
            expect("/reference/decomposition", ref.decomposition, (T, len(DECOMPOSITION_TERMS)))
        sizes = {"W": W, "S": S, "T": T, "L": L, "N": N}
        for k in ARRAYS:
            expect(f"/gap/{k}", getattr(res, k), tuple(sizes[c] for c in GAP_DIMS[k]))
        for term, arr in (res.decomposition or {}).items():
            expect(f"/gap/decomposition/{term}", arr, (W, S, T))
        for name, r in res.rates.items():
            for k in RATE_FIELDS:
                expect(f"/gap/rate/{name}/{k}", r[k], (T,))
        ex = res.extrapolation.get("test_loss")
        if ex is not None:
            for k in ("value", "error", "reference"):
                expect(f"/gap/extrapolation/test_loss/{k}", ex[k], (T,))
            expect("/gap/extrapolation/test_loss/variable", ex["variable"], (T,))
    for w in np.flatnonzero(res.done):
        expect(f"/members/{w}/theta", res.theta[w], (S, C.parameter_count(cfg, o.widths[w])))
        if res.sigma[w] is not None:
            for l, sg in enumerate(res.sigma[w]):
                expect(f"/members/{w}/sigma/{l + 1}", sg, (S, o.widths[w][l]))
                if sg.size and not (0 <= sg.min() and sg.max() < o.reference_width[l]):
                    raise GapFileError(f"{path}: damaged gap file (/members/{w}/sigma/{l + 1} "
                                       "indexes particles the reference does not have)")


def _rate_names(group) -> list:
    out = []
    for k, v in group.items():
        if "beta" in v:
            out.append(k)
        else:
            out.extend(f"{k}/{s}" for s in v)
    return sorted(out)
