"""Labelled exports of run files and sweeps: pandas DataFrames and xarray Datasets.

:meth:`meanfield.store.Run.to_dataframe` / :meth:`~meanfield.store.Run.to_xarray` and
:meth:`meanfield.discretization.GapResult.to_dataframe` /
:meth:`~meanfield.discretization.GapResult.to_xarray` call the functions here.  pandas
and xarray are optional (``pip install 'meanfield[analysis]'``); they are imported when
an export is asked for, and the rest of meanfield works without them.

Dimensions (every variable carries ``long_name`` and ``units``; the flow is
dimensionless, so flow time, losses and gaps have units "1"):

- a run: ``step`` (the series rows up to the file's counters, with ``t`` as a
  coordinate), ``block`` (1 … L); snapshots ``snapshot`` (with ``snapshot_step`` and
  ``snapshot_t``), and per block l ``particle_l``, ``coordinate_in_l``,
  ``coordinate_out_l`` for the variables ``u_l`` (snapshot, particle_l,
  coordinate_in_l), ``c_l`` (snapshot, particle_l), ``v_l`` (snapshot, particle_l,
  coordinate_out_l);
- a sweep: ``width`` (the first block's width m), ``seed``, ``t`` (the gap times, with
  ``step``), ``block``, ``point`` (the test sample); rates over ``t``.
"""
from __future__ import annotations

import numpy as np

from .layout import GAP_ATTRS, GAP_DIMS, PARAMS, SERIES_ATTRS, group_name

def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this export needs {module}: pip install 'meanfield[analysis]'") from None


def _attrs(long_name: str, units: str = "1") -> dict:
    return {"long_name": long_name, "units": units}


# ----------------------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------------------
def run_dataframe(run):
    """The series of a run as a DataFrame indexed by ``step``: columns ``t``, ``loss``,
    ``test_loss``, ``wall_time`` and ``velocity_norm_<l>`` (l = 1 … L); only the rows
    the file's counters declare complete."""
    pd = _need("pandas")
    s = run.series
    data = {"t": np.asarray(s["t"])}
    for k in ("loss", "test_loss", "wall_time"):
        data[k] = np.asarray(s[k])
    vn = np.asarray(s["velocity_norm"]).reshape(run.n_series, -1)
    for l in range(vn.shape[1]):
        data[f"velocity_norm_{l + 1}"] = vn[:, l]
    return pd.DataFrame(data, index=pd.Index(np.asarray(s["step"]), name="step"))


def run_xarray(run, snapshots: bool = True):
    """A run as an xarray Dataset (see the module docstring); ``snapshots=False``
    leaves the particles out (the series alone are small)."""
    xr = _need("xarray")
    s = run.series
    steps = np.asarray(s["step"])
    net = run.template()
    L = net.L
    coords = {"step": ("step", steps, _attrs("solver step")),
              "t": ("step", np.asarray(s["t"]), _attrs("flow time")),
              "block": ("block", np.arange(1, L + 1), _attrs("block (layer) of the network"))}
    data = {}
    for k in ("loss", "test_loss", "wall_time"):
        data[k] = (("step",), np.asarray(s[k]), _attrs(*SERIES_ATTRS[k]))
    data["velocity_norm"] = (("step", "block"), np.asarray(s["velocity_norm"]).reshape(len(steps), L),
                             _attrs(*SERIES_ATTRS["velocity_norm"]))
    if snapshots and run.n_snapshots:
        coords["snapshot_step"] = ("snapshot", np.asarray(run.snapshots["step"]), _attrs("solver step"))
        coords["snapshot_t"] = ("snapshot", np.asarray(run.snapshots["t"]), _attrs("flow time"))
        for l, b in enumerate(net.blocks):
            n = l + 1
            dims = {"u": ("snapshot", f"particle_{n}", f"coordinate_in_{n}"),
                    "c": ("snapshot", f"particle_{n}"),
                    "v": ("snapshot", f"particle_{n}", f"coordinate_out_{n}")}
            names = {"u": "inner weights u", "c": "biases c", "v": "outer weights v"}
            for p in PARAMS:
                arr = np.asarray(run.snapshots[group_name(n, p)])
                data[f"{p}_{n}"] = (dims[p], arr.reshape(arr.shape[0], *(
                    (b.m,) if p == "c" else (b.m, -1))),
                    _attrs(f"block {n} particles: {names[p]}"))
        if "out.b" in run.snapshots:
            data["out_bias"] = (("snapshot",), np.asarray(run.snapshots["out.b"]).ravel(),
                                _attrs("output bias b"))
    attrs = {"status": run.status, "message": run.message, "format_version": run.version,
             "source": str(run.path), "config": run.config_text}
    attrs.update({f"seed_{k}": ("unknown" if v is None else int(v)) for k, v in run.seeds.items()})
    return xr.Dataset(data, coords=coords, attrs=attrs)


# ----------------------------------------------------------------------------------
# sweeps
# ----------------------------------------------------------------------------------
def _gap_check(res) -> None:
    if res.reference is None:
        raise ValueError("the sweep's reference has not finished: nothing to export yet")


def gap_dataframe(res):
    """A sweep's per-member gaps as a long DataFrame indexed by (``width``, ``seed``,
    ``t``): columns ``function``, ``loss_train``, ``loss_test``, then ``<gap>_<l>`` for
    the per-block gaps (feature, coupling, w2, sliced_w2, mmd2) and the [RZG]
    decomposition's terms where recorded (NaN for widths not yet done)."""
    pd = _need("pandas")
    _gap_check(res)
    W, S, T = res.function.shape
    idx = pd.MultiIndex.from_product([np.asarray(res.widths), np.arange(S), np.asarray(res.t)],
                                     names=["width", "seed", "t"])
    cols = {k: getattr(res, k).reshape(-1) for k in ("function", "loss_train", "loss_test")}
    for k in ("feature", "coupling", "w2", "sliced_w2", "mmd2"):
        arr = getattr(res, k)
        for l in range(arr.shape[-1]):
            cols[f"{k}_{l + 1}"] = arr[..., l].reshape(-1)
    for term, arr in (res.decomposition or {}).items():
        cols[term] = np.asarray(arr, dtype=float).reshape(-1)
    return pd.DataFrame(cols, index=idx)


def gap_xarray(res):
    """A sweep as an xarray Dataset: dimensions width, seed, t, block, point (see the
    module docstring); the reference's losses and outputs over t; rates and their
    bootstrap intervals over t (``beta_<name>``, ``beta_lo_<name>``, ``beta_hi_<name>``,
    ``C_<name>``; ``/`` in a rate's name becomes ``_``)."""
    xr = _need("xarray")
    _gap_check(res)
    W, S, T = res.function.shape
    L = res.feature.shape[-1]
    N = res.outputs.shape[-1]
    coords = {"width": ("width", np.asarray(res.widths), _attrs("width m of the first block")),
              "seed": ("seed", np.arange(S), _attrs("member seed")),
              "t": ("t", np.asarray(res.t), _attrs("flow time")),
              "step": ("t", np.asarray(res.steps), _attrs("solver step")),
              "block": ("block", np.arange(1, L + 1), _attrs("block (layer) of the network")),
              "point": ("point", np.arange(N), _attrs("index in the test sample")),
              "block_widths": (("width", "block"), np.asarray(res.block_widths),
                               _attrs("members' widths per block"))}
    names = {"W": "width", "S": "seed", "T": "t", "L": "block", "N": "point"}
    data = {}
    for k, (name, units) in GAP_ATTRS.items():
        data[k] = (tuple(names[c] for c in GAP_DIMS[k]), getattr(res, k), _attrs(name, units))
    for term, arr in (res.decomposition or {}).items():
        data[f"decomposition_{term}"] = (("width", "seed", "t"), np.asarray(arr, dtype=float),
                                         _attrs(f"[RZG] decomposition term {term}"))
    ref = res.reference
    data["reference_loss_train"] = (("t",), ref.loss_train, _attrs("the reference's training loss"))
    data["reference_loss_test"] = (("t",), ref.loss_test, _attrs("the reference's test loss"))
    data["reference_outputs"] = (("t", "point"), ref.outputs, _attrs("f_M on the test sample"))
    if ref.error is not None:
        data["reference_error"] = (("t",), ref.error, _attrs(
            "estimated error of the limit's f in L2 of the data law (against half the nodes)"))
    data["done"] = (("width",), np.asarray(res.done), _attrs("the width's task has finished"))
    B, se = res.bias_squared()
    data["bias_squared"] = (("width", "t"), B, _attrs(
        "unbiased estimate of ||E f_m - f_M||^2 (seed mean's squared bias without the seeds' "
        "noise; can be negative)", "1"))
    data["bias_squared_se"] = (("width", "t"), se, _attrs(
        "jackknife standard error over seeds of bias_squared", "1"))
    for name, r in res.rates.items():
        key = name.replace("/", "_")
        what = f"rate of the {name} gap against the {r['x']}"
        data[f"beta_{key}"] = (("t",), r["beta"], _attrs(what))
        data[f"beta_lo_{key}"] = (("t",), r["beta_lo"], _attrs(f"{what}: lower end of the "
                                                               f"{100 * r['level']:.0f} % interval"))
        data[f"beta_hi_{key}"] = (("t",), r["beta_hi"], _attrs(f"{what}: upper end of the "
                                                               f"{100 * r['level']:.0f} % interval"))
        data[f"C_{key}"] = (("t",), r["C"], _attrs(f"prefactor C of the {name} gap fit"))
    o = res.options
    attrs = {"status": res.file_status or ("complete" if res.complete else "incomplete"),
             "coupling": o.coupling, "reference": o.reference, "samples": o.samples,
             "reference_width": list(map(int, o.reference_width)),
             "source": str(res.path or ""), "n_boot": int(o.n_boot), "level": float(o.level),
             "interval": o.interval}
    return xr.Dataset(data, coords=coords, attrs=attrs)
