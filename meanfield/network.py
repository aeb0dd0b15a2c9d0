"""Multilayer mean-field networks as stacks of particle measures (docs/math.md §1).

A network is a tuple of blocks.  Block l (l = 1..L) is a measure over particles
θ = (u, c, v) ∈ R^{k_{l−1}} × R × R^{k_l}, represented by m_l particles:

    h⁽ˡ⁾(x) = scale_l · Σ_{i=1..m_l} v_i σ_l(u_i·h⁽ˡ⁻¹⁾(x) + c_i),   h⁽⁰⁾ = x,
    f(x)    = ψ(h⁽ᴸ⁾(x) + b)         (b: optional output bias, k_L = 1)

with scale_l = 1/m_l (mean-field, the default) or 1/√m_l (NTK scaling).  All
parameters live in one flat vector ``Network.theta``; each block's ``u (m, k_in)``,
``c (m,)`` and ``v (m, k_out)`` are views into it, so a solver moves the network by
moving one array.  Two-layer, [RZG] 3-layer and [SL] networks are the same structure
with different settings.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from numpy.typing import ArrayLike, DTypeLike

import numpy as np

from . import _kernels as K
from .parallel import Schedule, parallel_threshold, policy, usable_threads
from .activations import ACTIVATION_NAMES, act_numpy, activation_code
from .init import Gaussian, Sphere, Zero
from .streams import init_key
from .layout import OUT_BIAS, PARAMS, group_name

OUTPUTS = {"identity": K.PSI_IDENTITY, "clip01": K.PSI_CLIP01}
SCALINGS = ("mf", "ntk")


class Block:
    """One mean-field block: m particles (u_i, c_i, v_i).

    Parameters
    ----------
    u : (m, k_in) array;  c : (m,) array or None;  v : (m, k_out) array
    activation : name of σ (see :mod:`meanfield.activations`)
    bias : if False, c is fixed at zero and never trained
    train : which of "u", "c", "v" move under the flow (the others are frozen)

    Inside a :class:`Network` the arrays are views into ``Network.theta``.
    """

    def __init__(self, u: ArrayLike, c: ArrayLike | None = None, v: ArrayLike | None = None,
                 activation: str = "relu", bias: bool = True,
                 train: Sequence[str] = PARAMS):
        u = np.asarray(u)
        if u.ndim != 2:
            raise ValueError(f"u must have shape (m, k_in), got shape {u.shape}")
        m = u.shape[0]
        if m < 1:
            raise ValueError("a block needs at least one particle")
        if v is None:
            raise ValueError("v is required: shape (m, k_out)")
        v = np.asarray(v)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] != m:
            raise ValueError(f"v must have shape ({m}, k_out), got shape {v.shape}")
        c = np.zeros(m) if c is None else np.asarray(c)
        if c.shape != (m,):
            raise ValueError(f"c must have shape ({m},), got shape {c.shape}")
        bad = set(train) - set(PARAMS)
        if bad:
            raise ValueError(f"train: unknown parameters {sorted(bad)}; expected a subset of u, c, v")
        self.activation = ACTIVATION_NAMES[activation_code(activation)]
        self.bias = bool(bias)
        if not self.bias:
            c = np.zeros(m)
        self.train = frozenset(p for p in train if self.bias or p != "c")
        self.u, self.c, self.v = u, c, v

    @property
    def m(self) -> int:
        return self.u.shape[0]

    @property
    def k_in(self) -> int:
        return self.u.shape[1]

    @property
    def k_out(self) -> int:
        return self.v.shape[1]

    def __repr__(self) -> str:
        frozen = sorted(set(PARAMS) - self.train)
        return (f"Block(m={self.m}, k_in={self.k_in}, k_out={self.k_out}, "
                f"activation={self.activation!r}, bias={self.bias}, frozen={frozen})")


class Network:
    """A multilayer mean-field network: a stack of :class:`Block` s and an output ψ.

    Parameters
    ----------
    blocks : sequence of Block, block l mapping R^{k_{l−1}} → R^{k_l}; the last k_L = 1
    output : "identity" or "clip01" (ψ = clip to [0, 1], derivative 1 on (0, 1))
    scaling : "mf" (1/m_l, default) or "ntk" (1/√m_l)
    out_bias : initial output bias b, or None for no bias
    train_out_bias : whether b moves
    dtype : float64 (default) or float32
    seed : the initialisation seed whose keyed streams drew the particles (the
        constructors below and configurations set it), or None when the parameters came
        from elsewhere; a run records it as its init seed (unknown when None)

    Attributes
    ----------
    theta : (P,) all parameters; ``blocks[l].u``, ``.c``, ``.v`` are views into it
    d, L, widths (m_1..m_L), dims (k_0 = d, ..., k_L = 1)
    """

    def __init__(self, blocks: Sequence[Block], output: str = "identity", scaling: str = "mf",
                 out_bias: float | None = None, train_out_bias: bool = True,
                 dtype: DTypeLike = np.float64,
                 seed: int | None = None):
        blocks = list(blocks)
        if not blocks:
            raise ValueError("a network needs at least one block")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; expected one of {', '.join(OUTPUTS)}")
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; expected 'mf' or 'ntk'")
        dtype = np.dtype(dtype)
        if dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        for l in range(1, len(blocks)):
            if blocks[l].k_in != blocks[l - 1].k_out:
                raise ValueError(
                    f"block {l + 1} takes k_in={blocks[l].k_in} inputs but block {l} "
                    f"has k_out={blocks[l - 1].k_out}")
        if blocks[-1].k_out != 1:
            raise ValueError(f"the last block must have k_out = 1, got {blocks[-1].k_out}")
        self.output = output
        self.scaling = scaling
        self.dtype = dtype
        self.seed = None if seed is None else int(seed)
        self.has_out_bias = out_bias is not None
        self.train_out_bias = bool(train_out_bias) and self.has_out_bias

        nb = len(blocks)
        layout = np.zeros((nb, K.LAYOUT_COLUMNS), dtype=np.int64)
        off = 0
        row = 0
        for l, b in enumerate(blocks):
            layout[l, K.M], layout[l, K.KIN], layout[l, K.KOUT] = b.m, b.k_in, b.k_out
            layout[l, K.OFF_U] = off
            off += b.m * b.k_in
            layout[l, K.OFF_C] = off
            off += b.m
            layout[l, K.OFF_V] = off
            off += b.m * b.k_out
            layout[l, K.ACT] = activation_code(b.activation)
            layout[l, K.ROW] = row
            row += b.k_out
        self.off_b = off if self.has_out_bias else -1
        theta = np.empty(off + (1 if self.has_out_bias else 0), dtype=dtype)
        for l, b in enumerate(blocks):
            src = (b.u, b.c, b.v)
            for p, col in enumerate((K.OFF_U, K.OFF_C, K.OFF_V)):
                o = layout[l, col]
                theta[o:o + src[p].size] = src[p].ravel()
        if self.has_out_bias:
            theta[self.off_b] = out_bias
        self.layout = layout
        self.feature_rows = row
        self.blocks = tuple(blocks)
        self._bind(theta)

    # -- structure ------------------------------------------------------------------
    def _bind(self, theta: np.ndarray) -> None:
        """Make ``theta`` the parameter vector and the blocks' arrays views into it."""
        self.theta = theta
        for l, b in enumerate(self.blocks):
            b.u, b.c, b.v = self.block_arrays(theta, l)

    def block_arrays(self, theta: np.ndarray, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views (u, c, v) of block ``l`` (0-based) in a parameter vector ``theta`` (P,),
        or in a stack of them (..., P): shapes (..., m, k_in), (..., m), (..., m, k_out)."""
        lay = self.layout[l]
        m, kin, kout = int(lay[K.M]), int(lay[K.KIN]), int(lay[K.KOUT])
        ou, oc, ov = int(lay[K.OFF_U]), int(lay[K.OFF_C]), int(lay[K.OFF_V])
        lead = theta.shape[:-1]
        return (theta[..., ou:ou + m * kin].reshape(lead + (m, kin)), theta[..., oc:oc + m],
                theta[..., ov:ov + m * kout].reshape(lead + (m, kout)))

    @property
    def L(self) -> int:
        return len(self.blocks)

    @property
    def d(self) -> int:
        return self.blocks[0].k_in

    @property
    def widths(self) -> tuple:
        return tuple(b.m for b in self.blocks)

    @property
    def dims(self) -> tuple:
        return (self.d,) + tuple(b.k_out for b in self.blocks)

    @property
    def work_per_sample(self) -> int:
        """Σ_l m_l (k_{l−1} + k_l + 2): the kernels' work per sample, which decides
        between their serial and parallel schedules."""
        return sum(m * (a + b + 2) for m, a, b in zip(self.widths, self.dims[:-1], self.dims[1:]))

    @property
    def n_params(self) -> int:
        return self.theta.size

    @property
    def out_bias(self) -> float | None:
        return float(self.theta[self.off_b]) if self.has_out_bias else None

    @property
    def scales(self) -> np.ndarray:
        """(L,) the factor in front of each block's particle sum (1/m or 1/√m)."""
        m = np.array(self.widths, dtype=float)
        return 1.0 / m if self.scaling == "mf" else 1.0 / np.sqrt(m)

    @property
    def rates(self) -> np.ndarray:
        """(L,) velocity = −η · rate · ∂L/∂θ: rate m_l (mean-field), 1 (NTK).

        With mean-field scaling this makes a particle's velocity −η ∇_θ δL/δμ_l(θ),
        so that an Euler step of size dt is gradient descent with learning rate
        η m_l dt on block l's parameters.  The output bias b, a single O(1) parameter,
        moves with velocity −η ∂L/∂b (rate 1) in both scalings.
        """
        return np.array(self.widths, dtype=float) if self.scaling == "mf" else np.ones(self.L)

    def groups(self) -> list[tuple[str, int, tuple, bool]]:
        """Parameter groups ``(name, start, shape, trainable)`` in ``theta`` order.

        Names are ``"<l>.u"``, ``"<l>.c"``, ``"<l>.v"`` for blocks l = 1..L and
        ``"out.b"`` for the output bias.
        """
        out = []
        for l, b in enumerate(self.blocks):
            shapes = {"u": (b.m, b.k_in), "c": (b.m, 1), "v": (b.m, b.k_out)}
            for p, col in zip(PARAMS, (K.OFF_U, K.OFF_C, K.OFF_V)):
                out.append((group_name(l + 1, p), int(self.layout[l, col]), shapes[p], p in b.train))
        if self.has_out_bias:
            out.append((OUT_BIAS, self.off_b, (1, 1), self.train_out_bias))
        return out

    def copy(self) -> "Network":
        """An independent copy (parameters copied)."""
        return self.with_theta(self.theta.copy())

    def with_theta(self, theta: np.ndarray) -> "Network":
        """The same architecture with parameters ``theta`` (used as is, not copied)."""
        theta = np.asarray(theta)
        if theta.shape != self.theta.shape or theta.dtype != self.dtype:
            raise ValueError(
                f"theta must be a {self.dtype} array of shape {self.theta.shape}, "
                f"got {theta.dtype} {theta.shape}")
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.blocks = tuple(Block.__new__(Block) for _ in self.blocks)
        for nb_, b in zip(new.blocks, self.blocks):
            nb_.__dict__.update(b.__dict__)
        new._bind(np.ascontiguousarray(theta))
        return new

    def astype(self, dtype: DTypeLike) -> Network:
        """A copy with parameters in ``dtype`` (float64 or float32)."""
        blocks = [Block(b.u.copy(), b.c.copy(), b.v.copy(), b.activation, b.bias, b.train)
                  for b in self.blocks]
        return Network(blocks, self.output, self.scaling, self.out_bias, self.train_out_bias,
                       dtype, seed=self.seed)

    def __repr__(self) -> str:
        return (f"Network(d={self.d}, widths={self.widths}, dims={self.dims}, "
                f"activations={[b.activation for b in self.blocks]}, output={self.output!r}, "
                f"scaling={self.scaling!r}, out_bias={self.has_out_bias}, dtype={self.dtype})")

    # -- evaluation -----------------------------------------------------------------
    def _check_x(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"X must have shape (N, {self.d}), got {X.shape}")
        return X

    def features(self, X: ArrayLike) -> list[np.ndarray]:
        """[h⁽¹⁾(X), ..., h⁽ᴸ⁾(X)], each (N, k_l), by the fast kernels."""
        X = self._check_x(X)
        n = X.shape[0]
        XT = np.ascontiguousarray(X.T, dtype=self.dtype)[None]
        HT = np.empty((1, self.feature_rows, n), dtype=self.dtype)
        schedule = _forward_schedule(float(n * self.work_per_sample))
        coef = np.zeros((1, self.L, 3))
        t = schedule.begin()
        try:
            K.evaluate(self.theta, self.layout[None], self.scales.astype(self.dtype)[None],
                       np.full(1, -1, dtype=np.int64), XT, np.zeros((1, n), dtype=self.dtype),
                       np.zeros(1, dtype=np.int64), 0, 0, coef, np.zeros(1), K.FORWARD, t > 0,
                       HT, HT, np.zeros((1, n), dtype=self.dtype), np.zeros((1, 1)),
                       self.theta, np.zeros(1))
        finally:
            schedule.end(t)
        return [HT[0, self.layout[l, K.ROW]:self.layout[l, K.ROW] + b.k_out].T.copy()
                for l, b in enumerate(self.blocks)]

    def __call__(self, X) -> np.ndarray:
        """f(X) = ψ(h⁽ᴸ⁾(X) + b), shape (N,), by the fast kernels."""
        h = self.features(X)[-1][:, 0]
        return self.apply_output(h)

    def apply_output(self, h: np.ndarray) -> np.ndarray:
        """ψ(h + b) for last-block features h (N,)."""
        pre = h + (self.theta[self.off_b] if self.has_out_bias else 0.0)
        return np.clip(pre, 0.0, 1.0) if self.output == "clip01" else pre

    def forward_numpy(self, X: ArrayLike, return_features: bool = False) -> np.ndarray | tuple:
        """Plain-NumPy reference forward pass (forms N × m arrays: small sizes only).

        Returns f (N,), or (f, [h⁽¹⁾, ..., h⁽ᴸ⁾]) with ``return_features``.
        """
        h = np.asarray(self._check_x(X), dtype=float)
        feats = []
        for b, s in zip(self.blocks, self.scales):
            z = h @ np.asarray(b.u, float).T + np.asarray(b.c, float)
            h = s * (act_numpy(b.activation, z) @ np.asarray(b.v, float))
            feats.append(h)
        pre = h[:, 0] + (float(self.theta[self.off_b]) if self.has_out_bias else 0.0)
        f = np.clip(pre, 0.0, 1.0) if self.output == "clip01" else pre
        return (f, feats) if return_features else f


_FORWARD_SCHEDULES: dict = {}


def _forward_schedule(work: float) -> Schedule:
    """The schedule of forward passes (:meth:`Network.features`) of about ``work``: one
    per power of two of the work, shared by every network, rebuilt when the policy, the
    threshold or the usable threads change."""
    key = (int(math.log2(max(work, 1.0))), work >= parallel_threshold(), policy(),
           usable_threads())
    sch = _FORWARD_SCHEDULES.get(key)
    if sch is None:
        sch = _FORWARD_SCHEDULES[key] = Schedule(work, key[2], key[3])
    return sch


# ----------------------------------------------------------------------------------
# constructors
# ----------------------------------------------------------------------------------
def _block(seed, l, m, k_in, k_out, activation, bias, u_init, c_init, v_init, train=PARAMS):
    """Block ``l`` (1-based) with parameters drawn from the keyed streams of ``seed``
    (see :mod:`meanfield.init`: the first m particles do not depend on the width)."""
    if m < 1 or k_in < 1 or k_out < 1:
        raise ValueError(f"widths and dimensions must be >= 1, got m={m}, k_in={k_in}, k_out={k_out}")
    u = u_init.sample(init_key(seed, l, "u"), (m, k_in))
    c = c_init.sample(init_key(seed, l, "c"), (m,)) if bias else np.zeros(m)
    v = v_init.sample(init_key(seed, l, "v"), (m, k_out))
    return Block(u, c, v, activation, bias, train)


def two_layer(d: int, m: int, activation: str = "relu", *, bias: bool = True,
              u_init: Any = None, c_init: Any = None, v_init: Any = None, output: str = "identity",
              scaling: str = "mf", seed: int | None = 0, dtype: DTypeLike = np.float64) -> Network:
    """The classical two-layer mean-field network (L = 1): f(x) = (1/m) Σ v_i σ(u_i·x + c_i).

    Defaults: u ~ N(0, I/d), c ~ N(0, 1), v ~ N(0, 1).
    """
    blk = _block(seed, 1, m, d, 1, activation, bias, u_init or Gaussian(1 / math.sqrt(d)),
                 c_init or Gaussian(1.0), v_init or Gaussian(1.0))
    return Network([blk], output=output, scaling=scaling, dtype=dtype, seed=seed)


def rzg_three_layer(d: int, m1: int, m2: int, k: int = 1,
                    activations: Sequence[str] = ("relu", "relu"), *, bias: bool = True,
                    inits: dict | None = None, output: str = "identity", scaling: str = "mf",
                    seed: int | None = 0, dtype: DTypeLike = np.float64) -> Network:
    """The [RZG] 3-layer network: L = 2 blocks joined through a bottleneck of width k.

    x ∈ R^d → h⁽¹⁾ = (1/m₁) Σ v_i σ₁(u_i·x + c_i) ∈ R^k → f = (1/m₂) Σ a_j σ₂(w_j·h⁽¹⁾ + b_j).

    ``inits`` maps "1.u", "1.c", "1.v", "2.u", "2.c", "2.v" to initial laws; defaults
    1.u ~ Unif(S^{d−1}), 1.c = 0, 1.v ~ N(0, 1), 2.u ~ N(0, 1), 2.c ~ N(0, 1), 2.v ~ N(0, 1).
    """
    defaults = {"1.u": Sphere(1.0), "1.c": Zero(), "1.v": Gaussian(1.0),
                "2.u": Gaussian(1.0), "2.c": Gaussian(1.0), "2.v": Gaussian(1.0)}
    inits = dict(inits or {})
    unknown = set(inits) - set(defaults)
    if unknown:
        raise ValueError(f"inits: unknown keys {sorted(unknown)}; expected {sorted(defaults)}")
    defaults.update(inits)
    if len(activations) != 2:
        raise ValueError(f"activations: expected 2 names, got {len(activations)}")
    b1 = _block(seed, 1, m1, d, k, activations[0], bias, defaults["1.u"], defaults["1.c"], defaults["1.v"])
    b2 = _block(seed, 2, m2, k, 1, activations[1], bias, defaults["2.u"], defaults["2.c"], defaults["2.v"])
    return Network([b1, b2], output=output, scaling=scaling, dtype=dtype, seed=seed)


def sl_depth2(d: int, r: int, *, seed: int | None = 0, dtype: DTypeLike = np.float64) -> Network:
    """The [SL] depth-2 learner N(x) = clip₀¹(Σ_j w_j erf(u_j·x + b_j)) in mean-field form.

    u_j ~ N(0, I_d/4), b_j ~ N(0, 1/4), drawn once and frozen; w₀ ~ N(0, I_r/r²).
    Mean-field form: one erf block with v_j = r·w_j (so v ~ N(0, 1)), scale 1/r, ψ = clip.
    With velocity −η r ∂L/∂v, an Euler step of size dt is gradient descent on w with
    learning rate η·dt/r.
    """
    blk = _block(seed, 1, r, d, 1, "erf", True, Gaussian(0.5), Gaussian(0.5), Gaussian(1.0),
                 train=("v",))
    return Network([blk], output="clip01", scaling="mf", dtype=dtype, seed=seed)


def sl_depth1(d: int, r: int, activation: str = "relu", *, seed: int | None = 0,
              dtype: DTypeLike = np.float64) -> Network:
    """The [SL] depth-1 baseline N(x) = Σ_j w_j σ(u_j·x + b_j) + b₀, every weight trained.

    Mean-field form: one block (v_j = r·w_j, scale 1/r) and a trained output bias b₀ = 0.
    Initialisation as the depth-2 learner: u ~ N(0, I/4), c ~ N(0, 1/4), v ~ N(0, 1).
    """
    blk = _block(seed, 1, r, d, 1, activation, True, Gaussian(0.5), Gaussian(0.5), Gaussian(1.0))
    return Network([blk], output="identity", scaling="mf", out_bias=0.0, dtype=dtype, seed=seed)


def stack(d: int, widths: Sequence[int], bottlenecks: Sequence[int] = (),
          activations: Sequence[str] | None = None, *, bias: bool = True, output: str = "identity",
          scaling: str = "mf", seed: int | None = 0, dtype: DTypeLike = np.float64) -> Network:
    """A general L-block network: widths (m_1..m_L), bottlenecks (k_1..k_{L−1}).

    Initialisation: u ~ N(0, I/k_in), c ~ N(0, 1), v ~ N(0, 1) in every block.
    """
    widths = list(widths)
    L = len(widths)
    bottlenecks = list(bottlenecks)
    if len(bottlenecks) != L - 1:
        raise ValueError(f"bottlenecks: expected {L - 1} values for {L} blocks, got {len(bottlenecks)}")
    activations = list(activations or ["relu"] * L)
    if len(activations) != L:
        raise ValueError(f"activations: expected {L} names for {L} blocks, got {len(activations)}")
    dims = [d] + bottlenecks + [1]
    blocks = [_block(seed, l + 1, widths[l], dims[l], dims[l + 1], activations[l], bias,
                     Gaussian(1 / math.sqrt(dims[l])), Gaussian(1.0), Gaussian(1.0))
              for l in range(L)]
    return Network(blocks, output=output, scaling=scaling, dtype=dtype, seed=seed)
