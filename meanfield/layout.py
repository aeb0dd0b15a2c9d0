"""The names of a network's parameter groups: the one place that spells them.

Block l (1-based) has the groups ``"<l>.u"`` (its inner weights, (m, k_in)), ``"<l>.c"``
(its biases, (m,)) and ``"<l>.v"`` (its outer weights, (m, k_out)); the output bias is
``"out.b"``.  Stages, freezing, time scales, projections, snapshots and the solvers'
groups all use these names (docs/config.md).  This module imports nothing, so that
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
