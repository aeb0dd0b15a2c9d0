"""Fused Numba kernels: forward pass, loss and every particle's velocity (MATH.md §1–2).

All parameters of a network live in one flat vector ``theta``; an int64 ``layout``
array (one row per block, columns below) says where each block's ``u (m, k_in)``,
``c (m,)`` and ``v (m, k_out)`` sit.  Features are stored transposed, one row per
feature coordinate: ``HT[row_l : row_l + k_l, :]`` holds h⁽ˡ⁾ over the N samples, and
``GT`` holds the back-propagated g⁽ˡ⁾ = ∂L/∂h⁽ˡ⁾ in the same rows.

Cost O(N · Σ_l m_l k_l); extra memory O(N · Σ_l k_l) (the caller's workspace) plus
per-thread tiles of ``TILE`` samples: no N × m array is ever formed.

Determinism: every reduction runs over fixed tiles of ``TILE`` samples or over all
particles in index order, inside one parallel iteration; parallel iterations write
disjoint outputs and partial sums are combined in a fixed order.  Results are therefore
bit-identical for any number of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .activations import RELU, act_tile

TILE = 128    # samples per tile in the sample-parallel passes
PCHUNK = 128   # particles per parallel work item in the particle pass

# layout columns
M, KIN, KOUT, OFF_U, OFF_C, OFF_V, ACT, ROW = range(8)
LAYOUT_COLUMNS = 8

SQUARED, LOGISTIC = 0, 1          # losses
PSI_IDENTITY, PSI_CLIP01 = 0, 1   # output functions ψ

# Implementation notes.
# - No fast-math: without re-association or FMA contraction every sum is evaluated in
#   the order the source gives, so results do not depend on how the compiler vectorises
#   (which varies between compilations: with re-association allowed, a kernel compiled
#   in one process and loaded from Numba's cache in another gave different last bits).
#   Inner loops are therefore written so that the vectorised dimension is never summed
#   over: samples in the sample-parallel passes, particles in the particle pass.
# - The hot loops run over a whole tile of TILE samples (or PCHUNK particles), a
#   compile-time constant, on local copies padded with zeros; that is what lets LLVM
#   vectorise them (measured: 3–4× faster than loops over a run-time length).  Padded
#   entries contribute exact zeros.
# - A ReLU block with k_in = k_out = 1 (the [RZG] bottleneck block) takes a fused path
#   in each kernel: one loop per particle instead of five short passes (measured: the
#   block's three kernels 4× faster).  It evaluates the same expressions as the
#   general path.


@njit(cache=True)
def _load_tile(src, b0, nb, dst):
    """dst[:, :nb] = src[:, b0:b0+nb], dst[:, nb:] = 0 (dst: (rows, TILE))."""
    for a in range(src.shape[0]):
        for b in range(nb):
            dst[a, b] = src[a, b0 + b]
        for b in range(nb, TILE):
            dst[a, b] = 0.0


@njit(cache=True)
def _preact(U, c, j, Xt, z):
    """z[b] = u_j · h_b + c_j over one padded tile (Xt: (k_in, TILE)).

    Several input coordinates per pass over z: one load and one store of z per four
    (or eight) multiply-adds.
    """
    kin = U.shape[1]
    cj = c[j]
    for b in range(TILE):
        z[b] = cj
    a = 0
    while a + 8 <= kin:
        u0, u1, u2, u3 = U[j, a], U[j, a + 1], U[j, a + 2], U[j, a + 3]
        u4, u5, u6, u7 = U[j, a + 4], U[j, a + 5], U[j, a + 6], U[j, a + 7]
        x0, x1, x2, x3 = Xt[a], Xt[a + 1], Xt[a + 2], Xt[a + 3]
        x4, x5, x6, x7 = Xt[a + 4], Xt[a + 5], Xt[a + 6], Xt[a + 7]
        for b in range(TILE):
            z[b] += ((u0 * x0[b] + u1 * x1[b]) + (u2 * x2[b] + u3 * x3[b])) + \
                    ((u4 * x4[b] + u5 * x5[b]) + (u6 * x6[b] + u7 * x7[b]))
        a += 8
    while a + 4 <= kin:
        u0, u1, u2, u3 = U[j, a], U[j, a + 1], U[j, a + 2], U[j, a + 3]
        x0, x1, x2, x3 = Xt[a], Xt[a + 1], Xt[a + 2], Xt[a + 3]
        for b in range(TILE):
            z[b] += u0 * x0[b] + u1 * x1[b] + u2 * x2[b] + u3 * x3[b]
        a += 4
    while a < kin:
        ua = U[j, a]
        xa = Xt[a]
        for b in range(TILE):
            z[b] += ua * xa[b]
        a += 1


@njit(parallel=True, cache=True)
def forward_block(U, c, V, act, scale, HinT, HoutT):
    """h⁽ˡ⁾ = scale · Σ_j v_j σ(u_j·h⁽ˡ⁻¹⁾ + c_j), written to ``HoutT (k_out, N)``.

    Shapes: U (m, k_in), c (m,), V (m, k_out), HinT (k_in, N), HoutT (k_out, N).
    """
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    n = HinT.shape[1]
    ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles):
        b0 = t * TILE
        nb = min(TILE, n - b0)
        Xt = np.empty((kin, TILE), dtype=U.dtype)
        _load_tile(HinT, b0, nb, Xt)
        z = np.empty(TILE, dtype=U.dtype)
        s = np.empty(TILE, dtype=U.dtype)
        acc = np.zeros((kout, TILE), dtype=U.dtype)
        if kin == 1 and kout == 1 and act == RELU:  # the k = 1 bottleneck block, fused
            x0 = Xt[0]
            a0 = acc[0]
            zero = np.zeros(1, dtype=U.dtype)[0]  # typed: keeps float32 arithmetic in float32
            for j in range(m):
                uj, cj, vj = U[j, 0], c[j], V[j, 0]
                for b in range(TILE):
                    zz = uj * x0[b] + cj
                    a0[b] += vj * (zz if zz > zero else zero)
        else:
            for j in range(m):
                _preact(U, c, j, Xt, z)
                act_tile(act, z, s, s, TILE, True, False)
                for o in range(kout):
                    vjo = V[j, o]
                    ao = acc[o]
                    for b in range(TILE):
                        ao[b] += vjo * s[b]
        for o in range(kout):
            for b in range(nb):
                HoutT[o, b0 + b] = scale * acc[o, b]


@njit(cache=True)
def _gq(V, j, Gt, ds, q):
    """q[b] = (g_b · v_j) σ'(z_jb) over one padded tile (Gt: (k_out, TILE))."""
    v0 = V[j, 0]
    g0 = Gt[0]
    for b in range(TILE):
        q[b] = g0[b] * v0
    for o in range(1, V.shape[1]):
        vjo = V[j, o]
        go = Gt[o]
        for b in range(TILE):
            q[b] += go[b] * vjo
    for b in range(TILE):
        q[b] *= ds[b]


@njit(parallel=True, cache=True)
def backprop_block(U, c, V, act, scale, HinT, GT, GprevT):
    """g⁽ˡ⁻¹⁾(x) = scale · Σ_j (g⁽ˡ⁾(x)·v_j) σ'(z_j(x)) u_j, written to ``GprevT (k_in, N)``.

    Shapes: GT (k_out, N) holds g⁽ˡ⁾; the others as in :func:`forward_block`.
    """
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    n = HinT.shape[1]
    ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles):
        b0 = t * TILE
        nb = min(TILE, n - b0)
        Xt = np.empty((kin, TILE), dtype=U.dtype)
        _load_tile(HinT, b0, nb, Xt)
        Gt = np.empty((kout, TILE), dtype=U.dtype)
        _load_tile(GT, b0, nb, Gt)
        z = np.empty(TILE, dtype=U.dtype)
        ds = np.empty(TILE, dtype=U.dtype)
        q = np.empty(TILE, dtype=U.dtype)
        acc = np.zeros((kin, TILE), dtype=U.dtype)
        if kin == 1 and kout == 1 and act == RELU:  # the k = 1 bottleneck block, fused
            x0 = Xt[0]
            g0 = Gt[0]
            a0 = acc[0]
            zero = np.zeros(1, dtype=U.dtype)[0]  # typed: keeps float32 arithmetic in float32
            one = np.ones(1, dtype=U.dtype)[0]
            for j in range(m):
                uj, cj, vj = U[j, 0], c[j], V[j, 0]
                for b in range(TILE):
                    zz = uj * x0[b] + cj
                    a0[b] += uj * ((g0[b] * vj) * (one if zz > zero else zero))
        else:
            for j in range(m):
                _preact(U, c, j, Xt, z)
                act_tile(act, z, ds, ds, TILE, False, True)
                _gq(V, j, Gt, ds, q)
                for a in range(kin):
                    uja = U[j, a]
                    aa = acc[a]
                    for b in range(TILE):
                        aa[b] += uja * q[b]
        for a in range(kin):
            for b in range(nb):
                GprevT[a, b0 + b] = scale * acc[a, b]


@njit(parallel=True, cache=True)
def particle_velocity(U, c, V, act, HinT, GT, cu, cc, cv, VelU, Velc, VelV):
    """Velocities of one block's particles.

    With z = u_j·h + c_j and the per-sample back-propagated g = g⁽ˡ⁾ (which already
    carries the 1/N of the empirical mean):

        VelV[j] = cv · Σ_x σ(z) g(x),      Velc[j] = cc · Σ_x (g·v_j) σ'(z),
        VelU[j] = cu · Σ_x (g·v_j) σ'(z) h(x).

    A zero coefficient skips that parameter and writes zeros (frozen parameters).

    Particles are the vectorised dimension here (chunks of PCHUNK particles, one per
    parallel work item) and samples are visited in order, four at a time, so every
    per-particle sum runs in the order the source gives, whatever the compiler does.
    """
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    n = HinT.shape[1]
    nchunks = (m + PCHUNK - 1) // PCHUNK
    want_s = cv != 0.0
    want_d = (cu != 0.0) or (cc != 0.0)
    for ch in prange(nchunks):
        j0 = ch * PCHUNK
        nj = min(PCHUNK, m - j0)
        # the chunk's particles, transposed so that particles are contiguous; padded
        # particles are zero and their results are not written
        UT = np.zeros((kin, PCHUNK), dtype=U.dtype)
        VT = np.zeros((kout, PCHUNK), dtype=U.dtype)
        cT = np.zeros(PCHUNK, dtype=U.dtype)
        for j in range(nj):
            cT[j] = c[j0 + j]
            for a in range(kin):
                UT[a, j] = U[j0 + j, a]
            for o in range(kout):
                VT[o, j] = V[j0 + j, o]
        Z = np.empty((4, PCHUNK), dtype=U.dtype)
        S = np.zeros((4, PCHUNK), dtype=U.dtype)
        D = np.zeros((4, PCHUNK), dtype=U.dtype)
        Q = np.zeros((4, PCHUNK), dtype=U.dtype)
        xs = np.zeros((4, kin), dtype=U.dtype)
        gs = np.zeros((4, kout), dtype=U.dtype)
        accu = np.zeros((kin, PCHUNK), dtype=U.dtype)
        accc = np.zeros(PCHUNK, dtype=U.dtype)
        accv = np.zeros((kout, PCHUNK), dtype=U.dtype)
        if kin == 1 and kout == 1 and act == RELU:  # the k = 1 bottleneck block, fused
            u0, v0 = UT[0], VT[0]
            au, av = accu[0], accv[0]
            zero = np.zeros(1, dtype=U.dtype)[0]  # typed: keeps float32 arithmetic in float32
            one = np.ones(1, dtype=U.dtype)[0]
            for b0 in range(0, n, 4):
                nb = min(4, n - b0)
                for i in range(4):
                    xs[i, 0] = HinT[0, b0 + i] if i < nb else zero
                    gs[i, 0] = GT[0, b0 + i] if i < nb else zero
                x0, x1, x2, x3 = xs[0, 0], xs[1, 0], xs[2, 0], xs[3, 0]
                g0, g1, g2, g3 = gs[0, 0], gs[1, 0], gs[2, 0], gs[3, 0]
                for j in range(PCHUNK):
                    uj, cj, vj = u0[j], cT[j], v0[j]
                    z0 = uj * x0 + cj
                    z1 = uj * x1 + cj
                    z2 = uj * x2 + cj
                    z3 = uj * x3 + cj
                    r0 = z0 if z0 > zero else zero
                    r1 = z1 if z1 > zero else zero
                    r2 = z2 if z2 > zero else zero
                    r3 = z3 if z3 > zero else zero
                    p0 = (vj * g0) * (one if z0 > zero else zero)
                    p1 = (vj * g1) * (one if z1 > zero else zero)
                    p2 = (vj * g2) * (one if z2 > zero else zero)
                    p3 = (vj * g3) * (one if z3 > zero else zero)
                    av[j] += (r0 * g0 + r1 * g1) + (r2 * g2 + r3 * g3)
                    accc[j] += (p0 + p1) + (p2 + p3)
                    au[j] += (p0 * x0 + p1 * x1) + (p2 * x2 + p3 * x3)
        else:
            for b0 in range(0, n, 4):
                nb = min(4, n - b0)
                for i in range(4):
                    if i >= nb:  # past the last sample: contributes exact zeros
                        for a in range(kin):
                            xs[i, a] = 0.0
                        for o in range(kout):
                            gs[i, o] = 0.0
                        for j in range(PCHUNK):
                            S[i, j] = 0.0
                            Q[i, j] = 0.0
                        continue
                    for a in range(kin):
                        xs[i, a] = HinT[a, b0 + i]
                    for o in range(kout):
                        gs[i, o] = GT[o, b0 + i]
                    zi = Z[i]
                    for j in range(PCHUNK):
                        zi[j] = cT[j]
                    a = 0
                    while a + 8 <= kin:
                        u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
                        u4, u5, u6, u7 = UT[a + 4], UT[a + 5], UT[a + 6], UT[a + 7]
                        x0, x1, x2, x3 = xs[i, a], xs[i, a + 1], xs[i, a + 2], xs[i, a + 3]
                        x4, x5, x6, x7 = xs[i, a + 4], xs[i, a + 5], xs[i, a + 6], xs[i, a + 7]
                        for j in range(PCHUNK):
                            zi[j] += ((u0[j] * x0 + u1[j] * x1) + (u2[j] * x2 + u3[j] * x3)) + \
                                     ((u4[j] * x4 + u5[j] * x5) + (u6[j] * x6 + u7[j] * x7))
                        a += 8
                    while a + 4 <= kin:
                        u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
                        x0, x1, x2, x3 = xs[i, a], xs[i, a + 1], xs[i, a + 2], xs[i, a + 3]
                        for j in range(PCHUNK):
                            zi[j] += (u0[j] * x0 + u1[j] * x1) + (u2[j] * x2 + u3[j] * x3)
                        a += 4
                    while a < kin:
                        ua = UT[a]
                        xa = xs[i, a]
                        for j in range(PCHUNK):
                            zi[j] += ua[j] * xa
                        a += 1
                    act_tile(act, zi, S[i], D[i], PCHUNK, want_s, want_d)
                    if want_d:
                        qi = Q[i]
                        for j in range(PCHUNK):
                            qi[j] = 0.0
                        for o in range(kout):
                            vo = VT[o]
                            go = gs[i, o]
                            for j in range(PCHUNK):
                                qi[j] += vo[j] * go
                        di = D[i]
                        for j in range(PCHUNK):
                            qi[j] *= di[j]
                s0, s1, s2, s3 = S[0], S[1], S[2], S[3]
                q0, q1, q2, q3 = Q[0], Q[1], Q[2], Q[3]
                if want_s:
                    for o in range(kout):
                        g0, g1, g2, g3 = gs[0, o], gs[1, o], gs[2, o], gs[3, o]
                        ao = accv[o]
                        for j in range(PCHUNK):
                            ao[j] += (s0[j] * g0 + s1[j] * g1) + (s2[j] * g2 + s3[j] * g3)
                if cc != 0.0:
                    for j in range(PCHUNK):
                        accc[j] += (q0[j] + q1[j]) + (q2[j] + q3[j])
                if cu != 0.0:
                    a = 0
                    while a + 2 <= kin:  # two coordinates per pass share the loads of q
                        x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
                        y0, y1, y2, y3 = xs[0, a + 1], xs[1, a + 1], xs[2, a + 1], xs[3, a + 1]
                        aa = accu[a]
                        ab = accu[a + 1]
                        for j in range(PCHUNK):
                            aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)
                            ab[j] += (q0[j] * y0 + q1[j] * y1) + (q2[j] * y2 + q3[j] * y3)
                        a += 2
                    if a < kin:
                        x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
                        aa = accu[a]
                        for j in range(PCHUNK):
                            aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)
        for j in range(nj):
            for a in range(kin):
                VelU[j0 + j, a] = cu * accu[a, j]
            Velc[j0 + j] = cc * accc[j]
            for o in range(kout):
                VelV[j0 + j, o] = cv * accv[o, j]


@njit(cache=True)
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(parallel=True, cache=True)
def output_loss(hL, b_out, y, psi, loss, f, e, partial):
    """Output f = ψ(h⁽ᴸ⁾ + b_out), per-tile loss sums and e = ℓ'(f, y) ψ'(·) / N.

    ``hL (N,)`` is h⁽ᴸ⁾; ``f`` and ``e`` (N,) are written; ``partial (ntiles,)``
    receives the loss summed over each tile, so the caller sums tiles in order.
    Squared loss ½(f − y)²; logistic loss softplus(f) − y f (labels y ∈ [0, 1]).
    """
    n = hL.shape[0]
    inv_n = 1.0 / n
    ntiles = (n + TILE - 1) // TILE
    for t in prange(ntiles):
        b0 = t * TILE
        acc = 0.0
        for b in range(b0, min(n, b0 + TILE)):
            pre = hL[b] + b_out
            dpsi = 1.0
            fb = pre
            if psi == PSI_CLIP01:
                if pre <= 0.0:
                    fb = 0.0 * pre
                    dpsi = 0.0
                elif pre >= 1.0:
                    fb = 1.0 + 0.0 * pre
                    dpsi = 0.0
            f[b] = fb
            if loss == LOGISTIC:
                acc += _softplus(fb) - y[b] * fb
                ex = 1.0 / (1.0 + math.exp(-fb)) if fb >= 0 else math.exp(fb) / (1.0 + math.exp(fb))
                e[b] = (ex - y[b]) * dpsi * inv_n
            else:
                r = fb - y[b]
                acc += 0.5 * r * r
                e[b] = r * dpsi * inv_n
        partial[t] = acc


@njit(cache=True)
def block_views(theta, layout, l):
    """(U, c, V) of block l as views of the flat parameter vector."""
    m = layout[l, M]
    kin = layout[l, KIN]
    kout = layout[l, KOUT]
    ou = layout[l, OFF_U]
    oc = layout[l, OFF_C]
    ov = layout[l, OFF_V]
    U = theta[ou:ou + m * kin].reshape((m, kin))
    c = theta[oc:oc + m]
    V = theta[ov:ov + m * kout].reshape((m, kout))
    return U, c, V


@njit(cache=True)
def _block_input(XT, HT, layout, l):
    """h⁽ˡ⁻¹⁾ as (k_{l-1}, N): the inputs for block 0, else the previous block's rows."""
    if l == 0:
        return XT
    rp = layout[l - 1, ROW]
    return HT[rp:rp + layout[l - 1, KOUT]]


@njit(cache=True)
def forward(theta, layout, scales, XT, HT):
    """Features of every block: fills ``HT`` (Σ_l k_l, N) from ``XT`` (d, N)."""
    for l in range(layout.shape[0]):
        U, c, V = block_views(theta, layout, l)
        r = layout[l, ROW]
        forward_block(U, c, V, layout[l, ACT], scales[l], _block_input(XT, HT, layout, l),
                      HT[r:r + layout[l, KOUT]])


@njit(cache=True)
def _zero_block(vel, layout, l):
    VU, Vc, VV = block_views(vel, layout, l)
    VU[:] = 0.0
    Vc[:] = 0.0
    VV[:] = 0.0


@njit(cache=True)
def loss_and_velocity(theta, layout, scales, off_b, XT, y, psi, loss, coef, coef_b,
                      HT, GT, f, partial, vel):
    """Loss, output and every particle's velocity in one call.

    Parameters
    ----------
    theta : (P,) flat parameters;  layout : (L, 8) int64 (columns in this module)
    scales : (L,) output scale of each block (1/m_l mean-field, 1/√m_l NTK)
    off_b : index of the output bias in ``theta`` (-1: none)
    XT : (d, N) inputs, transposed;  y : (N,) targets
    psi, loss : output-function and loss codes
    coef : (L, 3) velocity coefficients of (u, c, v) per block:
        velocity = coef · ∂L/∂θ, with L the finite-width empirical loss; a zero
        coefficient skips the parameter and writes a zero velocity
    coef_b : velocity coefficient of the output bias
    HT, GT : (Σ_l k_l, N) work arrays (features h⁽ˡ⁾, back-propagated g⁽ˡ⁾)
    f : (N,) receives the outputs;  partial : (ceil(N / TILE),) work array
    vel : (P,) receives the velocities

    Returns the empirical loss (1/N) Σ ℓ(f(x), y(x)).
    """
    nblocks = layout.shape[0]
    n = XT.shape[1]
    forward(theta, layout, scales, XT, HT)
    last = nblocks - 1
    rl = layout[last, ROW]
    b_out = theta[off_b] if off_b >= 0 else 0.0
    output_loss(HT[rl], b_out, y, psi, loss, f, GT[rl], partial)
    total = 0.0
    for t in range(partial.shape[0]):
        total += partial[t]
    total /= n
    if off_b >= 0:
        gb = 0.0
        if coef_b != 0.0:
            g = GT[rl]
            for b in range(n):
                gb += g[b]
        vel[off_b] = coef_b * gb
    # trainable[l]: does block l move?  below[l]: does any block under l move?
    below = False
    for l in range(nblocks):
        for p in range(3):
            if coef[l, p] != 0.0:
                below = True
    for l in range(last, -1, -1):
        if not below:  # nothing at or under block l moves: no more back-propagation
            _zero_block(vel, layout, l)
            continue
        U, c, V = block_views(theta, layout, l)
        r = layout[l, ROW]
        kout = layout[l, KOUT]
        HinT = _block_input(XT, HT, layout, l)
        s = scales[l]
        if coef[l, 0] != 0.0 or coef[l, 1] != 0.0 or coef[l, 2] != 0.0:
            VU, Vc, VV = block_views(vel, layout, l)
            particle_velocity(U, c, V, layout[l, ACT], HinT, GT[r:r + kout],
                              coef[l, 0] * s, coef[l, 1] * s, coef[l, 2] * s, VU, Vc, VV)
        else:
            _zero_block(vel, layout, l)
        below = False
        for lb in range(l):
            for p in range(3):
                if coef[lb, p] != 0.0:
                    below = True
        if below:
            rp = layout[l - 1, ROW]
            backprop_block(U, c, V, layout[l, ACT], s, HinT, GT[r:r + kout],
                           GT[rp:rp + layout[l, KIN]])
    return total
