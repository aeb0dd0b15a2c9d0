"""The ``meanfield`` command line: run, gap, info, plot, close, presets.

Exit codes: 0 success; 1 the run diverged or failed (a write to the run file failed:
full disk, I/O error; the file keeps its last checkpoint); 2 bad input (configuration,
arguments, files), with a one-line message and nothing written or overwritten;
130 interrupted (Ctrl-C or SIGTERM: the file keeps its rows and checkpoint, resume with
--resume).
"""
from __future__ import annotations

import argparse
import os
import sys

from . import _stop
from . import presets as P

DEFAULT_PRESET = "relu-norm-3layer"
DEFAULT_OUT = "meanfield-run.h5"
DEFAULT_GAP_OUT = "meanfield-gap.h5"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


# ----------------------------------------------------------------------------------
# run (a thin layer over meanfield.runs)
# ----------------------------------------------------------------------------------
def _preset_text(name):
    try:
        return P.text(name)
    except P.PresetError as e:
        raise UsageError(str(e)) from None


def _load_config(args):
    from pathlib import Path

    from . import config as C

    if args.config and args.preset:
        raise UsageError("give a CONFIG file or --preset, not both")
    source = Path(args.config) if args.config else _preset_text(args.preset or DEFAULT_PRESET)
    try:
        return C.load_config(source, args.set)
    except C.ConfigError as e:
        raise UsageError(str(e)) from None


def _exists(out) -> UsageError:
    return UsageError(f"{out} exists; use --force to overwrite it or -o to choose another file")


def cmd_run(args) -> int:
    from . import config as C
    from . import runs

    if args.resume:
        if args.config or args.preset or args.set or args.output:
            raise UsageError("--resume takes the run file only (its configuration is stored in it)")
        return _resume(args)
    cfg = _load_config(args)
    out = args.output or DEFAULT_OUT
    if os.path.isdir(out):
        raise UsageError(f"{out} is a directory")
    if os.path.exists(out) and not args.force:
        raise _exists(out)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"{out}: folder {parent} does not exist")
    try:
        exp = runs.from_config(cfg)
    except C.ConfigError as e:
        raise UsageError(str(e)) from None
    from .store import LockedError, RunWriteError

    try:
        res = runs.run(exp, out, overwrite=args.force, progress=not args.quiet)
    except RunWriteError as e:
        return _write_failed(args, e)
    except LockedError as e:
        raise UsageError(str(e)) from None
    except FileExistsError:   # created by another process since the check above
        raise _exists(out) from None
    except OSError as e:
        raise UsageError(f"{out}: cannot create ({e})") from None
    return _summary(out, res)


def _resume(args) -> int:
    from . import runs
    from .store import LockedError, RunFileError, RunWriteError

    path = args.resume
    try:
        res = runs.resume(path, progress=not args.quiet)
    except RunWriteError as e:
        return _write_failed(args, e)
    except (RunFileError, LockedError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{path}: cannot open for writing ({str(e).splitlines()[0]})") from None
    return _summary(path, res)


def _write_failed(args, err) -> int:
    """A failed write to the run file: one line, exit code 1.  From the command line the
    process then ends at once: HDF5 keeps the data it could not write and would try again
    when the interpreter exits (measured: a segmentation fault)."""
    print(f"meanfield: error: {err.strerror}", file=sys.stderr)
    if getattr(args, "real_cli", False):
        _exit_now(1)
    return 1


def _exit_now(code: int):
    """End the process at once (no interpreter shutdown), output flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _summary(out, res) -> int:
    from .store import Run

    final = res.state
    with Run(out) as r:
        print(f"{out}: {res.status}" + (f" ({res.message})" if res.message else ""))
        if final is not None:
            what = "last finite state: " if res.status == "diverged" else ""
            print(f"  {what}step {final.step}, t = {final.t:.6g}, loss {final.loss:.6e}, "
                  f"test loss {res.test_loss:.6e}")
        print(f"  {r.n_series} series rows, {r.n_snapshots} snapshots")
    return {"complete": 0, "interrupted": 130}.get(res.status, 1)


# ----------------------------------------------------------------------------------
# gap: width sweeps (a thin layer over meanfield.discretization)
# ----------------------------------------------------------------------------------
def cmd_gap(args) -> int:
    from .discretization import (GapFileError, GapWriteError, SweepError, parse_widths,
                                 resume_sweep, sweep)

    common = dict(scheduler=args.scheduler, workers=args.workers, progress=not args.quiet)
    try:
        if args.resume:
            if (args.config or args.preset or args.set or args.output or args.widths
                    or args.n_train
                    or args.reference_width is not None or args.coupling or args.every is not None
                    or args.reference or args.samples or args.limit_nodes is not None
                    or args.interval
                    or args.limit_norm_nodes is not None or args.limit_rule):
                raise UsageError("--resume takes the gap file only (its configuration and options "
                                 "are stored in it)")
            path = args.resume
            res = resume_sweep(path, **common)
        else:
            if not args.widths:
                raise UsageError("--widths is required (e.g. --widths 16,32,...,4096)")
            cfg = _load_config(args)
            path = args.output or DEFAULT_GAP_OUT
            options = dict(widths=parse_widths(args.widths), seeds=args.seeds,
                           reference_width=args.reference_width, coupling=args.coupling,
                           every=args.every, distance_size=args.distance_size,
                           n_projections=args.projections, bandwidth=args.bandwidth,
                           n_boot=args.bootstrap, reference=args.reference or "network",
                           limit_nodes=16 if args.limit_nodes is None else args.limit_nodes,
                           limit_norm_nodes=(64 if args.limit_norm_nodes is None
                                             else args.limit_norm_nodes),
                           samples=args.samples or "fixed", interval=args.interval or "jackknife",
                           limit_rule=args.limit_rule or "tensor")
            if args.n_train:
                return _sample_sweep(cfg, args, path, options, common)
            res = sweep(cfg, **options, path=path, overwrite=args.force, **common)
    except (SweepError, GapFileError) as e:
        raise UsageError(str(e)) from None
    except GapWriteError as e:
        return _write_failed(args, e)
    print(f"{path}: {res.file_status}" + (f" ({res.file_message})" if res.file_message else ""))
    print(res.summary())
    return 0 if res.file_status == "complete" else 1


def _sample_sweep(cfg, args, path, options, common) -> int:
    """``meanfield gap --n-train``: one sweep per N, each into its own file, and the
    table of the seed mean's bias against m and N."""
    from .discretization import (GapWriteError, SweepError, parse_widths, sample_paths,
                                 sample_sweep, sample_table)

    try:
        ns = parse_widths(args.n_train, flag="--n-train")
        if not all(isinstance(n, int) for n in ns):
            raise SweepError(f"--n-train: expected sizes like 512,2048,8192, got {args.n_train!r}")
        results = sample_sweep(cfg, n_train=ns, path=path, overwrite=args.force,
                               **options, **common)
    except SweepError as e:
        raise UsageError(str(e)) from None
    except GapWriteError as e:
        return _write_failed(args, e)
    for p, r in zip(sample_paths(path, sorted(ns)), results):
        print(f"{p}: {r.file_status}" + (f" ({r.file_message})" if r.file_message else ""))
    if all(r.file_status == "complete" for r in results) and options["seeds"] >= 3:
        print(sample_table(results))
    return 0 if all(r.file_status == "complete" for r in results) else 1


# ----------------------------------------------------------------------------------
# info, plot, presets
# ----------------------------------------------------------------------------------
def _open(path):
    from .runs import open_run
    from .store import RunFileError

    try:
        return open_run(path)
    except RunFileError as e:
        raise UsageError(str(e)) from None


def _gap_file(path) -> bool:
    """Whether ``path`` is a gap file (its format attribute).  A file whose format
    attribute names neither kind is refused here, in one line; an unreadable one is
    left to the run file's reader, which says what is wrong with it."""
    try:
        import h5py

        from .store import fileformat

        with h5py.File(path, "r") as f:
            v = fileformat.text(f.attrs.get("format", ""))
    except Exception:
        return False
    if v not in ("meanfield-run", "meanfield-gap"):
        raise UsageError(f"{path}: not a meanfield run or gap file (its format attribute is {v!r})")
    return v == "meanfield-gap"


def _open_gap(path):
    from .discretization import GapFileError, open_gap

    try:
        return open_gap(path)
    except GapFileError as e:
        raise UsageError(str(e)) from None


def cmd_info(args) -> int:
    import numpy as np

    if _gap_file(args.run):
        res = _open_gap(args.run)
        print(f"{args.run}: meanfield gap file, format version {res.attrs['format_version']}, "
              f"written by meanfield {res.attrs['package_version']} on {res.created}")
        print(f"status: {res.file_status}" + (f" ({res.file_message})" if res.file_message else ""))
        c = res.config
        print(f"model: d={c['model']['d']}, widths swept {list(map(int, res.widths))}, "
              f"activations={c['model']['activations']}; data: {c['data']['distribution']}, "
              f"n_train={c['data']['n_train']}, n_test={c['data']['n_test']}")
        print(res.summary())
        if args.config:
            print("\n" + res.attrs["config"])
        return 0
    with _open(args.run) as r:
        print(f"{r.path}: meanfield run, format version {r.version}, "
              f"written by meanfield {r.attrs['package_version']} on {r.attrs['created']}")
        print(f"status: {r.status}" + (f" ({r.message})" if r.message else ""))
        if r.unclosed:
            from .store.runfile import CLOSE_HINT

            print("note: " + CLOSE_HINT.format(path=r.path))
        net = r.template()
        print(f"model: d={net.d}, widths={list(net.widths)}, dims={list(net.dims)}, "
              f"activations={[b.activation for b in net.blocks]}, output={net.output}, "
              f"scaling={net.scaling}")
        c = r.config
        if c is not None:
            print(f"data: {c['data']['distribution']}, n_train={c['data']['n_train']}, "
                  f"n_test={c['data']['n_test']}; target: {c['target']['kind']}")
            print(f"solver: {c['solver']['method']}, dt={c['solver']['dt']}, "
                  f"{len(c['stages'])} stage(s)")
        else:
            print(f"data: n_train={r.data['x'].shape[0]}, n_test={r.data['x_test'].shape[0]} "
                  "(a run made from Python: no stored configuration)")
        print("seeds: " + ", ".join(f"{k} {'unknown' if v is None else v}"
                                    for k, v in r.seeds.items()))
        print(f"rows: {r.n_series} series, {r.n_snapshots} snapshots")
        if r.n_series:
            i = r.n_series - 1
            print(f"last row: step {int(r.series['step'][i])}, t = {float(r.series['t'][i]):.6g}, "
                  f"loss {float(r.series['loss'][i]):.6e}, test loss {float(r.series['test_loss'][i]):.6e}, "
                  f"wall time {float(r.series['wall_time'][i]):.1f} s")
            first = float(r.series["loss"][0])
            print(f"loss: {first:.6e} at step 0 -> {float(r.series['loss'][i]):.6e}; "
                  f"min {float(np.min(np.asarray(r.series['loss']))):.6e}")
        if args.config:
            print("\n" + (r.config_text or "(no stored configuration)"))
    return 0


def _figure_folder(args) -> str:
    outdir = args.output or os.path.splitext(args.run)[0] + "-plots"
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UsageError(f"-o {outdir}: exists and is not a folder")
    return outdir


def _write_figures(outdir, draw) -> list:
    """Make the folder and draw into it; an unwritable destination is one line."""
    try:
        os.makedirs(outdir, exist_ok=True)
        return draw()
    except OSError as e:
        raise UsageError(f"{outdir}: cannot write the figures ({e.strerror or e})") from None


def cmd_plot(args) -> int:
    from . import plots

    if len(args.files) > 1:
        return _plot_samples(args)
    args.run = args.files[0]
    if _gap_file(args.run):
        res = _open_gap(args.run)
        outdir = _figure_folder(args)
        if res.reference is None or not res.done.any():
            raise UsageError(f"{args.run}: no finished width yet; nothing to plot")
        files = _write_figures(outdir, lambda: plots.plot_gap(res, outdir, args.format))
    else:
        with _open(args.run) as r:
            outdir = _figure_folder(args)
            if r.n_series == 0 and r.n_snapshots == 0:
                raise UsageError(f"{args.run}: the run has recorded no rows yet; nothing to plot")
            snaps = None
            if args.snapshots:
                try:
                    snaps = [int(s) for s in args.snapshots.split(",")]
                except ValueError:
                    raise UsageError(f"--snapshots: expected comma-separated integers, got "
                                     f"{args.snapshots!r}") from None
                for s in snaps:
                    if not -r.n_snapshots <= s < r.n_snapshots:
                        raise UsageError(f"--snapshots: {s} out of range (the run has {r.n_snapshots})")
            files = _write_figures(outdir, lambda: plots.plot_run(r, outdir, snaps, args.format))
    for fpath in files:
        print(fpath)
    return 0


def _plot_samples(args) -> int:
    """``meanfield plot A.h5 B.h5 …``: the gap files of a sample sweep (one per N) in one
    figure, samples.FORMAT."""
    from . import plots
    from .discretization import SweepError, sample_table

    for p in args.files:
        if not _gap_file(p):
            raise UsageError(f"{p}: several files are plotted together only as the gap files of "
                             "a sample sweep (meanfield gap --n-train)")
    results = [_open_gap(p) for p in args.files]
    for p, r in zip(args.files, results):
        if r.reference is None or not r.done.all() or r.options.seeds < 3:
            raise UsageError(f"{p}: the sweep is not complete or has fewer than 3 seeds")
    try:
        table = sample_table(results)
    except SweepError as e:
        raise UsageError(str(e)) from None
    args.run = args.files[0]
    outdir = _figure_folder(args)

    def draw():
        from .plots import save_figure

        ax = plots.samples_axes(results)
        return [save_figure(ax.figure, outdir, f"samples.{args.format}", tight=False)]

    for fpath in _write_figures(outdir, draw):
        print(fpath)
    print(table)
    return 0


def cmd_close(args) -> int:
    from .store import H5Recorder, LockedError, RunFileError

    if _gap_file(args.run):
        print(f"{args.run}: a gap file is written whole; it is always closed")
        return 0
    try:
        done = H5Recorder.seal(args.run)
    except (RunFileError, LockedError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{args.run}: cannot rewrite ({e.strerror or e})") from None
    if done == "closed":
        with _open(args.run) as r:
            done += f" (every recorded row kept; status: {r.status})"
    print(f"{args.run}: {done}")
    return 0


def cmd_presets(args) -> int:
    if args.name is not None and args.show is not None and args.name != args.show:
        raise UsageError(f"presets: two names ({args.name!r} and --show {args.show!r}); give one")
    show = args.show if args.show is not None else args.name
    if show is not None:
        try:
            sys.stdout.write(P.text(show))
        except P.PresetError as e:
            raise UsageError(str(e)) from None
        return 0
    from .config import load, parameter_count

    for name in P.names():
        text = P.text(name)
        cfg = load(text)
        m, d = cfg["model"], cfg["data"]
        params = parameter_count(cfg)
        steps = cfg["solver"].get("steps")
        size = (f"{params} parameters (widths {m['widths']}), N = {d['n_train']}, "
                + (f"{steps} steps" if steps else f"to t = {cfg['solver']['t_end']:g}"))
        print(f"{name:20s} {P.description(text)}")
        print(f"{'':20s} {size}; runtime {P.runtime(text).split(' (')[0] or 'not measured'}")
    print("\nruntimes: measured with the kernels cached on the 2-core development machine "
          "(`meanfield presets --show NAME` says how)")
    print("`meanfield presets NAME` (or --show NAME) prints a preset's TOML (save it, edit it, "
          "run it)")
    return 0


# ----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block before them), exit code 2."""

    def error(self, message):
        self.exit(2, f"meanfield: error: {message} (see '{self.prog} --help')\n")


def parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = _Parser(prog="meanfield", description="Mean-field networks: run, inspect "
                                 "and plot Wasserstein gradient-flow experiments.")
    ap.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    r = sub.add_parser("run", help="run an experiment into an HDF5 file",
                       description="Run an experiment (a TOML file or a preset; default: the "
                       f"{DEFAULT_PRESET} preset) and write an HDF5 run file.")
    r.add_argument("config", nargs="?", metavar="CONFIG.toml")
    r.add_argument("--preset", metavar="NAME", help="a shipped preset (see `meanfield presets`)")
    r.add_argument("-o", "--output", metavar="OUT.h5", help=f"run file (default {DEFAULT_OUT})")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key, e.g. --set solver.dt=0.1 (repeatable)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file")
    r.add_argument("--resume", metavar="RUN.h5", help="continue an interrupted run from its checkpoint")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)
    g = sub.add_parser("gap", help="a width sweep: the gap between finite networks and a wide "
                       "reference or the exact limit, with rates",
                       description="Train members of several widths and seeds and a reference "
                       "(a wide network, or the exact limit) through the same schedule, measure "
                       "the gaps between them at every gap time, fit their rates in the width, "
                       "and write a gap file.")
    g.add_argument("config", nargs="?", metavar="CONFIG.toml")
    g.add_argument("--preset", metavar="NAME", help="a shipped preset (see `meanfield presets`)")
    g.add_argument("--widths", metavar="W1,W2,...", help="member widths: 16,32,64 or 16,32,...,4096 "
                   "(geometric); per block with ':' (16:8,32:16)")
    g.add_argument("--seeds", type=int, default=5, metavar="S", help="members per width (default 5)")
    g.add_argument("--n-train", metavar="N1,N2,...", help="a sample sweep: one width sweep per "
                   "training-set size (data.n_train; 512,2048,8192 or 512,1024,...,8192), each "
                   "into its own file OUT-N<N>.h5, and a table of the seed mean's bias against "
                   "m and N")
    g.add_argument("--reference-width", type=int, metavar="M", help="the reference's width "
                   "(default: the configured widths)")
    g.add_argument("--reference", choices=["network", "limit"],
                   help="what the members are compared with: a wide network (default) or the "
                   "exact m, N -> infinity limit (networks of one or two blocks on "
                   "rotation-invariant problems, docs/math.md section 8)")
    g.add_argument("--limit-nodes", type=int, metavar="N", help="the limit's nodes per coordinate "
                   "of its initial law (default 16)")
    g.add_argument("--limit-norm-nodes", type=int, metavar="N", help="the limit's nodes per piece "
                   "of its norm law (default 64)")
    g.add_argument("--limit-rule", choices=["tensor", "homogeneous"],
                   help="the rule of the limit's first-block initial law: a tensor product "
                   "(default) or, for a ReLU first block with Gaussian laws (and bottleneck 1), "
                   "the homogeneous rule (the radial coordinate integrated out; 4*N^2 nodes "
                   "for --limit-nodes N)")
    g.add_argument("--samples", choices=["fixed", "fresh", "independent"],
                   help="train on the configured sample (default), on data.n_train fresh points "
                   "every step shared by all members (fresh), or on each member's own fresh "
                   "points (independent: against the limit, the seed mean then converges to "
                   "the population flow)")
    g.add_argument("--coupling", choices=["subsample", "independent"],
                   help="members as subsamples of the reference's initial particles (default) or "
                   "independent draws (the only coupling with the limit)")
    g.add_argument("--every", type=int, metavar="K", help="steps between gap times (default: "
                   "record.snapshot_every)")
    g.add_argument("--distance-size", type=int, metavar="N",
                   help="cloud size for W2, sliced W2 and MMD2 (default min(256, M/2); 256 "
                   "against the limit)")
    g.add_argument("--projections", type=int, default=64, metavar="P",
                   help="directions of the sliced W2 (default 64)")
    g.add_argument("--bandwidth", type=float, metavar="H", help="MMD kernel bandwidth (default: "
                   "median heuristic)")
    g.add_argument("--interval", choices=["jackknife", "percentile"],
                   help="the rate intervals: jackknife t over seeds (default) or percentile "
                   "bootstrap (measured coverage: `python -m benchmarks coverage`)")
    g.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="bootstrap resamples of percentile intervals (default 1000)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (repeatable)")
    g.add_argument("-o", "--output", metavar="GAP.h5", help=f"gap file (default {DEFAULT_GAP_OUT})")
    g.add_argument("--force", action="store_true", help="overwrite an existing output file")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the tasks on this Dask cluster")
    g.add_argument("--workers", type=int, metavar="N", help="run the tasks on a Dask LocalCluster "
                   "of N worker processes")
    g.add_argument("--resume", metavar="GAP.h5", help="finish an interrupted sweep")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_gap)
    i = sub.add_parser("info", help="configuration, status, sizes and results of a run or gap file")
    i.add_argument("run", metavar="FILE.h5")
    i.add_argument("--config", action="store_true", help="also print the stored configuration")
    i.set_defaults(fn=cmd_info)
    p = sub.add_parser("plot", help="figures of a run or gap file (PNG, PDF or SVG)")
    p.add_argument("files", metavar="FILE.h5", nargs="+",
                   help="a run or gap file; or the gap files of a sample sweep (one per N, "
                   "meanfield gap --n-train), drawn together into samples.FORMAT")
    p.add_argument("-o", "--output", metavar="DIR", help="folder for the figures (default RUN-plots)")
    p.add_argument("--snapshots", metavar="I,J,...", help="snapshot rows for particle clouds "
                   "(default: first and last)")
    p.add_argument("--format", choices=["png", "pdf", "svg"], default="png",
                   help="file format of the figures (default png)")
    p.set_defaults(fn=cmd_plot)
    c = sub.add_parser("close", help="close a run file whose writer died, so that every HDF5 "
                       "tool opens it",
                       description="A writer killed without closing its run file (SIGKILL, a "
                       "power cut) leaves HDF5's 'open for writing' flag set: plain h5py, "
                       "xarray and h5dump then refuse the file ('file is already open for "
                       "write'). This rewrites it with every recorded row, snapshot and its "
                       "checkpoint, as a closed file (status: interrupted, unless the "
                       "writer had recorded its end; it still resumes).")
    c.add_argument("run", metavar="RUN.h5")
    c.set_defaults(fn=cmd_close)
    s = sub.add_parser("presets", help="list the shipped experiment presets, or print one")
    s.add_argument("name", nargs="?", metavar="NAME", help="print this preset's TOML text "
                   "(the same as --show NAME)")
    s.add_argument("--show", metavar="NAME", help="print the preset's TOML text")
    s.set_defaults(fn=cmd_presets)
    return ap


def main(argv=None) -> int:
    import signal

    real = argv is None   # the real command line, not a call from Python code or tests
    if real:   # a signal only sets the flag until the try below can report it
        _stop.install(early=True)
    ap = parser()
    args = ap.parse_args(argv)
    args.real_cli = real
    if args.cmd is None:
        ap.print_help(sys.stderr)
        return 2
    try:
        if real:
            _stop.install()
            if _stop.requested():   # a signal while the command started: nothing began yet
                raise KeyboardInterrupt
        from . import parallel

        try:
            parallel.check_environment()
        except ValueError as e:
            raise UsageError(str(e)) from None
        out = getattr(args, "output", None)
        if out is not None and not out.strip():   # an unset $OUT must not mean the default
            raise UsageError(f"-o/--output is empty ({out!r}); give a path, or leave the option "
                             "out for the default")
        code = args.fn(args)
    except UsageError as e:
        print(f"meanfield: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # Ctrl-C outside the run loop (loading, compiling, writing)
        print("meanfield: interrupted", file=sys.stderr)
        code = 130
    except ImportError:
        if not _stop.requested():
            raise
        # the signal came while an extension module initialised: CPython turns the
        # handler's KeyboardInterrupt into "ImportError: initialization failed" (seen
        # with SIGTERM 0.3 s after the start, in CI)
        print("meanfield: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:   # `meanfield info RUN.h5 | head`: the reader left, stay quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if real:   # the work is done: a late Ctrl-C must not turn a finished run into a crash
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if code == 130 and real:
        # CPython remembers a KeyboardInterrupt that passed through a nested evaluation
        # (an import it interrupted) and, under `python -m`, ends the process by SIGINT
        # whatever the exit code (measured); the run file is closed by now
        _exit_now(130)
    return code
