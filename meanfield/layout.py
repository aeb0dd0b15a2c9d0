"""The names of a network's parameter groups: the one place that spells them.

Block l (1-based) has the groups ``"<l>.u"`` (its inner weights, (m, k_in)), ``"<l>.c"``
(its biases, (m,)) and ``"<l>.v"`` (its outer weights, (m, k_out)); the output bias is
``"out.b"``.  Stages, freezing, time scales, projections, snapshots and the solvers'
groups all use these names (docs/config.md); the long names and units of the stored
arrays are here too.  This module imports nothing, so that
storage and configuration code can use it without loading the kernels.
"""
PARAMS = ("u", "c", "v")
OUT_BIAS = "out.b"


def group_name(block: int, param: str) -> str:
    """The name of parameter ``param`` ("u", "c" or "v") of block ``block`` (1-based)."""
    return f"{block}.{param}"


def group_names(n_blocks: int, out_bias: bool) -> list:
    """Every group name of a network of ``n_blocks`` blocks, in parameter-vector order."""
    names = [group_name(l + 1, p) for l in range(n_blocks) for p in PARAMS]
    if out_bias:
        names.append(OUT_BIAS)
    return names


def group_block(name: str) -> int | None:
    """The block (1-based) of a group name; None for the output bias."""
    return None if name == OUT_BIAS else int(name.split(".")[0])


# Long names and units of stored arrays: the files' ``long_name``/``units`` attributes
# (written when a file is created) and the labelled exports (:mod:`meanfield.analysis`)
# both come from here.  The flow is dimensionless: flow time, losses, gaps have units "1".
SERIES_ATTRS = {
    "loss": ("training loss", "1"),
    "test_loss": ("test loss", "1"),
    "wall_time": ("wall-clock time since the run started", "s"),
    "velocity_norm": ("L2(mu_l) norm of block l's velocity", "1"),
}
GAP_ATTRS = {
    "function": ("RMS gap ||f_m - f_M|| on the test sample", "1"),
    "loss_train": ("training loss gap L_m - L_M", "1"),
    "loss_test": ("test loss gap L_m - L_M", "1"),
    "feature": ("feature gap of block l on the test sample", "1"),
    "coupling": ("coupling gap of block l (subsample coupling)", "1"),
    "w2": ("Wasserstein-2 distance between the block's particle clouds", "1"),
    "sliced_w2": ("sliced Wasserstein-2 distance between the block's particle clouds", "1"),
    "mmd2": ("MMD^2 (Gaussian kernel) between the block's particle clouds", "1"),
    "outputs": ("f_m on the test sample", "1"),
    "w2_floor": ("W2 between two disjoint samples of the reference's cloud (noise floor)", "1"),
    "sliced_w2_floor": ("sliced W2 between two disjoint samples of the reference's cloud", "1"),
}
# The dimensions of each member array of a sweep, by letter: W widths, S seeds, T gap
# times, L blocks, N test points (the gap file's shape checks and labels, and the xarray
# export, all read them here)
GAP_DIMS = {
    "function": "WST", "loss_train": "WST", "loss_test": "WST",
    "feature": "WSTL", "coupling": "WSTL", "w2": "WSTL", "sliced_w2": "WSTL", "mmd2": "WSTL",
    "outputs": "WSTN", "w2_floor": "WTL", "sliced_w2_floor": "WTL",
}
RUN_ATTRS = {
    "step": ("solver step", "1"),
    "t": ("flow time", "1"),
    "u": ("inner weights u of block l's particles", "1"),
    "c": ("biases c of block l's particles", "1"),
    "v": ("outer weights v of block l's particles", "1"),
    "out_bias": ("output bias", "1"),
    "x": ("training inputs", "1"),
    "y": ("training targets", "1"),
    "x_test": ("test inputs", "1"),
    "y_test": ("test targets", "1"),
}
