"""The ``meanfield`` command line: run, info, plot, presets.

Exit codes: 0 success; 1 the run diverged or failed; 2 bad input (configuration,
arguments, files), with a one-line message and nothing written or overwritten;
130 interrupted (Ctrl-C: the file keeps its rows and checkpoint, resume with --resume).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from importlib import resources

DEFAULT_PRESET = "relu-norm-3layer"
DEFAULT_OUT = "meanfield-run.h5"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


# ----------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------
def preset_names() -> list:
    return sorted(p.name[:-5] for p in resources.files("meanfield.presets").iterdir()
                  if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise UsageError(f"unknown preset {name!r}; `meanfield presets` lists them "
                         f"({', '.join(preset_names())})")
    return resources.files("meanfield.presets").joinpath(name + ".toml").read_text()


def preset_description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("# description:"):
            return line.split(":", 1)[1].strip()
    return ""


# ----------------------------------------------------------------------------------
# progress
# ----------------------------------------------------------------------------------
class Progress:
    """A progress bar on stderr: step, loss, step rate, ETA.  Redrawn in place on a
    terminal; on a pipe, one line at every 10 % of the run."""

    def __init__(self, total_steps=None, t_end=None, enabled=True, stream=sys.stderr):
        self.total, self.t_end = total_steps, t_end
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.t0 = time.perf_counter()
        self.step0 = None
        self.last_draw = 0.0
        self.next_decile = 1

    def fraction(self, state):
        fr = []
        if self.total:
            fr.append(state.step / self.total)
        if self.t_end:
            fr.append(state.t / self.t_end)
        return max(fr) if fr else None

    def __call__(self, state):
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.step0 is None:
            self.step0, self.t0 = state.step, now
        frac = self.fraction(state)
        rate = (state.step - self.step0) / (now - self.t0) if now > self.t0 else 0.0
        if frac is not None and rate > 0 and frac < 1:
            remaining = (1 - frac) / max(frac - self.fraction_at_start(), 1e-12) * (now - self.t0)
            eta = f"ETA {int(remaining) // 60:02d}:{int(remaining) % 60:02d}"
        else:
            eta = ""
        bar = ""
        if frac is not None:
            n = int(30 * min(max(frac, 0.0), 1.0))
            bar = "[" + "#" * n + "." * (30 - n) + f"] {100 * min(frac, 1.0):5.1f}% "
        line = (f"{bar}step {state.step} t={state.t:.4g} loss {state.loss:.4e} "
                f"{rate:.1f} steps/s {eta}")
        if self.tty:
            if now - self.last_draw > 0.2 or state.done is not None:
                self.stream.write("\r" + line.ljust(100))
                self.stream.flush()
                self.last_draw = now
            if state.done is not None:
                self.stream.write("\n")
        elif frac is not None and (frac * 10 >= self.next_decile or state.done is not None):
            self.stream.write(line.rstrip() + "\n")
            self.stream.flush()
            while self.next_decile <= frac * 10:
                self.next_decile += 1

    def fraction_at_start(self):
        return 0.0 if self.step0 is None or not self.total else self.step0 / self.total


# ----------------------------------------------------------------------------------
# run
# ----------------------------------------------------------------------------------
def _load_config(args):
    from . import config as C

    if args.config and args.preset:
        raise UsageError("give a CONFIG file or --preset, not both")
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise UsageError(f"{args.config}: cannot read ({e.strerror})") from None
    else:
        text = preset_text(args.preset or DEFAULT_PRESET)
    try:
        return C.load(text, args.set)
    except C.ConfigError as e:
        raise UsageError(str(e)) from None


def _execute(exp, cfg, rec, state=None, quiet=False):
    """Run the experiment through the recorder; returns (final state, status, message)."""
    import solvers

    from .objective import Objective

    obj = Objective(exp.network, exp.train, loss=cfg["solver"]["loss"])
    prog = Progress(cfg["solver"].get("steps"), cfg["solver"].get("t_end"), enabled=not quiet)
    final = None
    try:
        for st in solvers.iterate(obj, exp.network.theta if state is None else None,
                                  schedule=exp.schedule, stop=exp.stop, every=rec.every(),
                                  state=state, **exp.solver_kwargs):
            rec(st)
            prog(st)
            final = st
    except solvers.DivergenceError as e:
        rec.finish("diverged", str(e))
        return e.state, "diverged", str(e)
    except KeyboardInterrupt:
        rec.finish("interrupted", "interrupted by the user")
        return final, "interrupted", "interrupted by the user"
    rec.finish("complete")
    return final, "complete", ""


def _test_loss(exp, cfg):
    if exp.test is None:
        return None
    from .objective import Objective

    obj = Objective(exp.network, exp.test, loss=cfg["solver"]["loss"])
    return lambda theta: obj.loss(theta)


def cmd_run(args) -> int:
    from . import config as C
    from .store import H5Recorder

    if args.resume:
        if args.config or args.preset or args.set or args.output:
            raise UsageError("--resume takes the run file only (its configuration is stored in it)")
        return _resume(args)
    cfg = _load_config(args)
    out = args.output or DEFAULT_OUT
    if os.path.exists(out) and not args.force:
        raise UsageError(f"{out} exists; use --force to overwrite it or -o to choose another file")
    if os.path.isdir(out):
        raise UsageError(f"{out} is a directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"{out}: folder {parent} does not exist")
    try:
        exp = C.build(cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"configuration: {e}") from None
    text = C.dumps(cfg)
    if args.force and os.path.exists(out):
        os.remove(out)
    try:
        rec = H5Recorder.create(out, network=exp.network, record=cfg["record"], config_text=text,
                                seed=cfg["seed"], train=exp.train, test=exp.test,
                                test_loss=_test_loss(exp, cfg))
    except OSError as e:
        raise UsageError(f"{out}: cannot create ({e})") from None
    try:
        final, status, msg = _execute(exp, cfg, rec, quiet=args.quiet)
    finally:
        rec.close()
    return _summary(out, final, status, msg)


def _resume(args) -> int:
    import h5py

    from . import config as C
    from .store import H5Recorder, Run, RunFileError

    path = args.resume
    try:
        with Run(path) as r:
            status, text = r.status, r.config_text
    except RunFileError as e:
        raise UsageError(str(e)) from None
    if status == "complete":
        raise UsageError(f"{path}: the run is already complete")
    cfg = C.load(text)
    exp = C.build(cfg)
    import solvers

    f = h5py.File(path, "r+")
    try:
        try:
            rec, attrs, theta = H5Recorder.resume(f, exp.network, cfg["record"], _test_loss(exp, cfg))
        except RunFileError as e:
            raise UsageError(f"{path}: {e}") from None
        state = solvers.State(y=theta.astype(exp.network.dtype), t=float(attrs["t"]),
                              step=int(attrs["step"]), loss=float(attrs["loss"]),
                              stage=int(attrs["stage"]), stage_t0=float(attrs["stage_t0"]),
                              stage_step0=int(attrs["stage_step0"]), dt=float(attrs["dt"]),
                              seed=int(attrs["seed"]), rejected=int(attrs["rejected"]))
        if not args.quiet:
            print(f"resuming {path} at step {state.step} (t = {state.t:.6g})", file=sys.stderr)
        final, status, msg = _execute(exp, cfg, rec, state=state, quiet=args.quiet)
    finally:
        f.close()
    return _summary(path, final, status, msg)


def _summary(out, final, status, msg) -> int:
    from .store import open_run

    with open_run(out) as r:
        n = r.n_series
        test = float(r.series["test_loss"][n - 1]) if n else math.nan
        print(f"{out}: {status}" + (f" ({msg})" if msg else ""))
        if final is not None:
            print(f"  steps {final.step}, t = {final.t:.6g}, loss {final.loss:.6e}, test loss {test:.6e}")
        print(f"  {r.n_series} series rows, {r.n_snapshots} snapshots")
    return {"complete": 0, "interrupted": 130}.get(status, 1)


# ----------------------------------------------------------------------------------
# info, plot, presets
# ----------------------------------------------------------------------------------
def _open(path):
    from .store import RunFileError, open_run

    try:
        return open_run(path)
    except RunFileError as e:
        raise UsageError(str(e)) from None


def cmd_info(args) -> int:
    import numpy as np

    with _open(args.run) as r:
        c = r.config
        m = c["model"]
        print(f"{r.path}: meanfield run, format version {r.attrs['format_version']}, "
              f"written by meanfield {r.attrs['package_version']} on {r.attrs['created']}")
        print(f"status: {r.status}" + (f" ({r.message})" if r.message else ""))
        print(f"model: d={m['d']}, widths={m['widths']}, bottleneck={m['bottleneck']}, "
              f"activations={m['activations']}, output={m['output']}, scaling={m['scaling']}")
        print(f"data: {c['data']['distribution']}, n_train={c['data']['n_train']}, "
              f"n_test={c['data']['n_test']}; target: {c['target']['kind']}")
        print(f"solver: {c['solver']['method']}, dt={c['solver']['dt']}, "
              f"{len(c['stages'])} stage(s), seed {c['seed']}")
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
            print("\n" + r.config_text)
    return 0


def cmd_plot(args) -> int:
    from . import plots

    with _open(args.run) as r:
        outdir = args.output or os.path.splitext(args.run)[0] + "-plots"
        os.makedirs(outdir, exist_ok=True)
        snaps = None
        if args.snapshots:
            try:
                snaps = [int(s) for s in args.snapshots.split(",")]
            except ValueError:
                raise UsageError(f"--snapshots: expected comma-separated integers, got {args.snapshots!r}") from None
            for s in snaps:
                if not -r.n_snapshots <= s < r.n_snapshots:
                    raise UsageError(f"--snapshots: {s} out of range (the run has {r.n_snapshots})")
        files = plots.plot_run(r, outdir, snaps)
    for fpath in files:
        print(fpath)
    return 0


def cmd_presets(args) -> int:
    for name in preset_names():
        print(f"{name:20s} {preset_description(preset_text(name))}")
    return 0


# ----------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = argparse.ArgumentParser(prog="meanfield", description="Mean-field networks: run, inspect "
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
    i = sub.add_parser("info", help="configuration, status, sizes and final losses of a run")
    i.add_argument("run", metavar="RUN.h5")
    i.add_argument("--config", action="store_true", help="also print the stored configuration")
    i.set_defaults(fn=cmd_info)
    p = sub.add_parser("plot", help="PNG figures of a run")
    p.add_argument("run", metavar="RUN.h5")
    p.add_argument("-o", "--output", metavar="DIR", help="folder for the figures (default RUN-plots)")
    p.add_argument("--snapshots", metavar="I,J,...", help="snapshot rows for particle clouds "
                   "(default: first and last)")
    p.set_defaults(fn=cmd_plot)
    s = sub.add_parser("presets", help="list the shipped experiment presets")
    s.set_defaults(fn=cmd_presets)
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.cmd is None:
        ap.print_help(sys.stderr)
        return 2
    try:
        return args.fn(args)
    except UsageError as e:
        print(f"meanfield: error: {e}", file=sys.stderr)
        return 2
