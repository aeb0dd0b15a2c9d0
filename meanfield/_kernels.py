"""Fused Numba kernels: forward pass, loss and every particle's velocity (docs/math.md
§1–2), for one network or for many networks of one architecture at once.

All parameters live in one flat vector ``theta``: one network's, or the concatenation of
several networks' (an ensemble).  An int64 ``layouts`` array (B, L, 8) gives, for each
network b and block l, the columns below: where the block's ``u (m, k_in)``, ``c (m,)``
and ``v (m, k_out)`` sit in ``theta`` (absolute offsets), its width, dimensions,
activation and the row of its output in the feature arrays.  Features are stored
transposed, one row per feature coordinate: ``HT[b, row_l : row_l + k_l, :]`` holds
h⁽ˡ⁾ of network b over the N samples and ``GT`` holds the back-propagated
g⁽ˡ⁾ = ∂L/∂h⁽ˡ⁾ in the same rows.

One evaluation is two passes, each a loop over independent work items:

- the *sample pass*, one item per (network, tile of ``TILE`` samples): the forward pass
  through every block, the output, the loss and e = ℓ'ψ'/N, and the back-propagation of
  g through every block above the lowest one that moves (all of it per sample; a narrow
  block back-propagates through the Jacobian its forward pass accumulated);
- the *particle pass*, one item per (network, moving block, chunk of ``PCHUNK``
  particles): the velocities, sums over all samples.

Each pass runs either serially or as a ``prange`` over its items (``parallel``): small
problems do not pay for a parallel launch they cannot use.  Both drivers call the same
item functions, so the choice changes no bit.

Cost O(N · Σ_l m_l k_l) per network; extra memory O(N · Σ_l k_l) (the caller's feature
arrays) plus per-item tiles: no N × m array is ever formed.

Determinism: every sum runs over fixed tiles of samples or over all particles in index
order inside one work item; items write disjoint outputs and partial sums are combined
in a fixed order.  Results are therefore bit-identical for any number of threads, for
the serial and the parallel drivers, and for a network evaluated alone or inside a
batch (the same item functions run on the same numbers).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .activations import RELU, act_tile

TILE = 128    # samples per work item of the sample pass
PCHUNK = 128   # particles per work item of the particle pass
JAC_MAX = 4    # blocks with k_in · k_out ≤ JAC_MAX back-propagate through their Jacobian

# layout columns
M, KIN, KOUT, OFF_U, OFF_C, OFF_V, ACT, ROW = range(8)
LAYOUT_COLUMNS = 8

SQUARED, LOGISTIC = 0, 1          # losses
PSI_IDENTITY, PSI_CLIP01 = 0, 1   # output functions ψ
FORWARD, LOSS, VELOCITY = 0, 1, 2  # what an evaluation computes (modes)

# Implementation notes.
# - No fast-math: without re-association or FMA contraction every sum is evaluated in
#   the order the source gives, so results do not depend on how the compiler vectorises
#   (which varies between compilations: with re-association allowed, a kernel compiled
#   in one process and loaded from Numba's cache in another gave different last bits).
#   Inner loops are therefore written so that the vectorised dimension is never summed
#   over: samples in the sample pass, particles in the particle pass.
# - The hot loops run over a whole tile of TILE samples (or PCHUNK particles), a
#   compile-time constant, on local copies padded with zeros; that is what lets LLVM
#   vectorise them (measured: 3–4× faster than loops over a run-time length).  Padded
#   entries contribute exact zeros.
# - A ReLU block with k_in = k_out = 1 (the [RZG] bottleneck block) takes a fused path
#   in each kernel: one loop per particle instead of five short passes (measured: the
#   block's three kernels 4× faster).  It evaluates the same expressions as the
#   general path.
# - A ReLU block with k_out = 1 (an [RZG] first block, a two-layer network) takes a fused
#   particle pass (_velocity_relu_k1): the same expressions as the general path, so the
#   same bits, in about a third of the passes over the chunk (measured, one run each:
#   d = 4, widths [512, 512], N = 8192, 2 threads, one evaluation 0.46 → 0.33 ns per
#   pair).  Its loops repeat two of the general path's: as shared helpers they cost 15 %
#   at that size.
# - A narrow block (k_in · k_out ≤ JAC_MAX) above the lowest moving one accumulates its
#   Jacobian Σ_j v_j σ'(z_j) u_jᵀ on the tile during the forward pass, and back-
#   propagation multiplies g by it instead of a second pass over the block's particles
#   (for erf a third evaluation of the activation per pair; for the [RZG] k = 1
#   bottleneck one multiply-add per pair against a whole pass).


@njit(cache=True, error_model="numpy")
def _load_tile(src, b0, nb, dst):
    """dst[:, :nb] = src[:, b0:b0+nb], dst[:, nb:] = 0 (dst: (rows, TILE))."""
    for a in range(src.shape[0]):
        for b in range(nb):
            dst[a, b] = src[a, b0 + b]
        for b in range(nb, TILE):
            dst[a, b] = 0.0


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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



@njit(cache=True, error_model="numpy")
def _forward_tile(U, c, V, act, Xt, acc, z, s, ds, jac, want_jac):
    """acc (k_out, TILE) = Σ_j v_j σ(u_j·h + c_j) over one padded tile Xt (k_in, TILE).

    With ``want_jac`` also the block's Jacobian ∂h/∂h_in (unscaled) on the tile:
    ``jac[o·k_in + a, b] = Σ_j v_jo σ'(z_jb) u_ja``, so that back-propagation through a
    narrow block needs no second pass over its particles (see :func:`_backward_jac`).
    """
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    for o in range(kout):
        for b in range(TILE):
            acc[o, b] = 0.0
    if want_jac:
        for r in range(kout * kin):
            for b in range(TILE):
                jac[r, b] = 0.0
    if kin == 1 and kout == 1 and act == RELU:  # the k = 1 bottleneck block, fused
        x0 = Xt[0]
        a0 = acc[0]
        j0 = jac[0]
        zero = np.zeros(1, dtype=U.dtype)[0]  # typed: keeps float32 arithmetic in float32
        one = np.ones(1, dtype=U.dtype)[0]
        if want_jac:
            for j in range(m):
                uj, cj, vj = U[j, 0], c[j], V[j, 0]
                vu = vj * uj
                for b in range(TILE):
                    zz = uj * x0[b] + cj
                    a0[b] += vj * (zz if zz > zero else zero)
                    j0[b] += vu * (one if zz > zero else zero)
        else:
            for j in range(m):
                uj, cj, vj = U[j, 0], c[j], V[j, 0]
                for b in range(TILE):
                    zz = uj * x0[b] + cj
                    a0[b] += vj * (zz if zz > zero else zero)
    else:
        for j in range(m):
            _preact(U, c, j, Xt, z)
            act_tile(act, z, s, ds, TILE, True, want_jac)
            for o in range(kout):
                vjo = V[j, o]
                ao = acc[o]
                for b in range(TILE):
                    ao[b] += vjo * s[b]
            if want_jac:
                for o in range(kout):
                    for a in range(kin):
                        vu = V[j, o] * U[j, a]
                        jr = jac[o * kin + a]
                        for b in range(TILE):
                            jr[b] += vu * ds[b]


@njit(cache=True, error_model="numpy")
def _backward_jac(jac, Gt, acc, kin, kout):
    """acc (k_in, TILE) = Σ_o g_o · jac[o·k_in + a] (the Jacobian of :func:`_forward_tile`)."""
    for a in range(kin):
        ja = jac[a]
        g0 = Gt[0]
        aa = acc[a]
        for b in range(TILE):
            aa[b] = g0[b] * ja[b]
        for o in range(1, kout):
            jo = jac[o * kin + a]
            go = Gt[o]
            for b in range(TILE):
                aa[b] += go[b] * jo[b]


@njit(cache=True, error_model="numpy")
def _backward_tile(U, c, V, act, Xt, Gt, acc, z, ds, q):
    """acc (k_in, TILE) = Σ_j (g·v_j) σ'(u_j·h + c_j) u_j over one padded tile
    (Xt (k_in, TILE) the block's input, Gt (k_out, TILE) its back-propagated g)."""
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    for a in range(kin):
        for b in range(TILE):
            acc[a, b] = 0.0
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


@njit(cache=True, error_model="numpy")
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(cache=True, error_model="numpy")
def block_views(theta, lay, l):
    """(U, c, V) of block l as views of the flat parameter vector (``lay``: (L, 8))."""
    m = lay[l, M]
    kin = lay[l, KIN]
    kout = lay[l, KOUT]
    ou = lay[l, OFF_U]
    oc = lay[l, OFF_C]
    ov = lay[l, OFF_V]
    U = theta[ou:ou + m * kin].reshape((m, kin))
    c = theta[oc:oc + m]
    V = theta[ov:ov + m * kout].reshape((m, kout))
    return U, c, V


@njit(cache=True, error_model="numpy")
def _sample_item(b, t, theta, layouts, scales, offb, XT, Y, didx, psi, loss, lowest, mode,
                 HT, GT, F, partial):
    """Network b, tile t: forward pass, output and loss, back-propagation (see module)."""
    lay = layouts[b]
    L = lay.shape[0]
    X = XT[didx[b]]
    d = X.shape[0]
    n = X.shape[1]
    R = HT.shape[1]
    b0 = t * TILE
    nb = min(TILE, n - b0)
    dtype = theta.dtype
    kmax = d
    for l in range(L):
        kmax = max(kmax, lay[l, KOUT])
    Hb = np.empty((d + R, TILE), dtype=dtype)   # input rows, then every block's features
    acc = np.empty((kmax, TILE), dtype=dtype)
    z = np.empty(TILE, dtype=dtype)
    s = np.empty(TILE, dtype=dtype)
    ds = np.empty(TILE, dtype=dtype)
    # narrow blocks that back-propagate get their Jacobian in the forward pass
    jrow = np.full(L, -1, dtype=np.int64)
    nj = 0
    if mode == VELOCITY:
        for l in range(lowest[b] + 1, L):
            if lay[l, KIN] * lay[l, KOUT] <= JAC_MAX:
                jrow[l] = nj
                nj += lay[l, KIN] * lay[l, KOUT]
    Jb = np.empty((max(nj, 1), TILE), dtype=dtype)
    _load_tile(X, b0, nb, Hb[0:d])
    for l in range(L):
        U, c, V = block_views(theta, lay, l)
        kin = lay[l, KIN]
        kout = lay[l, KOUT]
        ri = 0 if l == 0 else d + lay[l - 1, ROW]
        ro = d + lay[l, ROW]
        j0 = max(jrow[l], 0)
        _forward_tile(U, c, V, lay[l, ACT], Hb[ri:ri + kin], acc, z, s, ds,
                      Jb[j0:j0 + kin * kout], jrow[l] >= 0)
        sc = scales[b, l]
        for o in range(kout):
            h = Hb[ro + o]
            ht = HT[b, ro - d + o]
            for bb in range(nb):
                h[bb] = sc * acc[o, bb]
                ht[b0 + bb] = h[bb]
            for bb in range(nb, TILE):
                h[bb] = 0.0
    if mode == FORWARD:
        return
    # output f = ψ(h⁽ᴸ⁾ + b), the loss summed over the tile, e = ℓ'(f, y) ψ' / N
    rl = lay[L - 1, ROW]
    b_out = theta[offb[b]] if offb[b] >= 0 else 0.0
    y = Y[didx[b]]
    f = F[b]
    inv_n = 1.0 / n
    Gb = np.zeros((R, TILE), dtype=dtype)
    e = Gb[rl]
    tot = 0.0
    for bb in range(nb):
        i = b0 + bb
        pre = Hb[d + rl, bb] + b_out
        dpsi = 1.0
        fb = pre
        if psi == PSI_CLIP01:
            if pre <= 0.0:
                fb = 0.0 * pre
                dpsi = 0.0
            elif pre >= 1.0:
                fb = 1.0 + 0.0 * pre
                dpsi = 0.0
        f[i] = fb
        if loss == LOGISTIC:
            tot += _softplus(fb) - y[i] * fb
            ex = 1.0 / (1.0 + math.exp(-fb)) if fb >= 0 else math.exp(fb) / (1.0 + math.exp(fb))
            e[bb] = (ex - y[i]) * dpsi * inv_n
        else:
            r = fb - y[i]
            tot += 0.5 * r * r
            e[bb] = r * dpsi * inv_n
        GT[b, rl, i] = e[bb]
    partial[b, t] = tot
    if mode == LOSS:
        return
    q = np.empty(TILE, dtype=dtype)
    for l in range(L - 1, lowest[b], -1):  # g⁽ˡ⁻¹⁾ for every block above the lowest moving one
        kin = lay[l, KIN]
        kout = lay[l, KOUT]
        ro = lay[l, ROW]
        rp = lay[l - 1, ROW]
        if jrow[l] >= 0:
            _backward_jac(Jb[jrow[l]:jrow[l] + kin * kout], Gb[ro:ro + kout], acc, kin, kout)
        else:
            U, c, V = block_views(theta, lay, l)
            _backward_tile(U, c, V, lay[l, ACT], Hb[d + rp:d + rp + kin], Gb[ro:ro + kout],
                           acc, z, ds, q)
        sc = scales[b, l]
        for a in range(kin):
            g = Gb[rp + a]
            gt = GT[b, rp + a]
            for bb in range(nb):
                g[bb] = sc * acc[a, bb]
                gt[b0 + bb] = g[bb]


@njit(cache=True, error_model="numpy")
def _velocity_chunk(U, c, V, act, HinT, GT, cu, cc, cv, VelU, Velc, VelV, j0):
    """Velocities of particles j0 .. j0 + PCHUNK − 1 of one block.

    With z = u_j·h + c_j and the per-sample back-propagated g = g⁽ˡ⁾ (which already
    carries the 1/N of the empirical mean):

        VelV[j] = cv · Σ_x σ(z) g(x),      Velc[j] = cc · Σ_x (g·v_j) σ'(z),
        VelU[j] = cu · Σ_x (g·v_j) σ'(z) h(x).

    A zero coefficient skips that parameter.  Particles are the vectorised dimension
    here and samples are visited in order, four at a time, so every per-particle sum
    runs in the order the source gives, whatever the compiler does.
    """
    m = U.shape[0]
    kin = U.shape[1]
    kout = V.shape[1]
    n = HinT.shape[1]
    nj = min(PCHUNK, m - j0)
    nc = min(PCHUNK, (nj + 7) // 8 * 8)   # loop length: the chunk's particles, rounded up to 8
    want_s = cv != 0.0
    want_d = (cu != 0.0) or (cc != 0.0)
    # the chunk's particles, transposed so that particles are contiguous; padded
    # particles are zero and their results are not written
    UT = np.zeros((kin, nc), dtype=U.dtype)
    VT = np.zeros((kout, nc), dtype=U.dtype)
    cT = np.zeros(nc, dtype=U.dtype)
    for j in range(nj):
        cT[j] = c[j0 + j]
        for a in range(kin):
            UT[a, j] = U[j0 + j, a]
        for o in range(kout):
            VT[o, j] = V[j0 + j, o]
    Z = np.empty((4, nc), dtype=U.dtype)
    S = np.zeros((4, nc), dtype=U.dtype)
    D = np.zeros((4, nc), dtype=U.dtype)
    Q = np.zeros((4, nc), dtype=U.dtype)
    xs = np.zeros((4, kin), dtype=U.dtype)
    gs = np.zeros((4, kout), dtype=U.dtype)
    accu = np.zeros((kin, nc), dtype=U.dtype)
    accc = np.zeros(nc, dtype=U.dtype)
    accv = np.zeros((kout, nc), dtype=U.dtype)
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
            for j in range(nc):
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
    elif kout == 1 and act == RELU and want_s and want_d:  # a ReLU block into one feature
        _velocity_relu_k1(UT, cT, VT[0], HinT, GT[0], Z, Q, xs, accu, accc, accv[0], nc, n,
                          cc != 0.0, cu != 0.0)
    else:
        for b0 in range(0, n, 4):
            nb = min(4, n - b0)
            for i in range(4):
                if i >= nb:  # past the last sample: contributes exact zeros
                    for a in range(kin):
                        xs[i, a] = 0.0
                    for o in range(kout):
                        gs[i, o] = 0.0
                    for j in range(nc):
                        S[i, j] = 0.0
                        Q[i, j] = 0.0
                    continue
                for a in range(kin):
                    xs[i, a] = HinT[a, b0 + i]
                for o in range(kout):
                    gs[i, o] = GT[o, b0 + i]
                zi = Z[i]
                for j in range(nc):
                    zi[j] = cT[j]
                a = 0
                while a + 8 <= kin:
                    u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
                    u4, u5, u6, u7 = UT[a + 4], UT[a + 5], UT[a + 6], UT[a + 7]
                    x0, x1, x2, x3 = xs[i, a], xs[i, a + 1], xs[i, a + 2], xs[i, a + 3]
                    x4, x5, x6, x7 = xs[i, a + 4], xs[i, a + 5], xs[i, a + 6], xs[i, a + 7]
                    for j in range(nc):
                        zi[j] += ((u0[j] * x0 + u1[j] * x1) + (u2[j] * x2 + u3[j] * x3)) + \
                                 ((u4[j] * x4 + u5[j] * x5) + (u6[j] * x6 + u7[j] * x7))
                    a += 8
                while a + 4 <= kin:
                    u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
                    x0, x1, x2, x3 = xs[i, a], xs[i, a + 1], xs[i, a + 2], xs[i, a + 3]
                    for j in range(nc):
                        zi[j] += (u0[j] * x0 + u1[j] * x1) + (u2[j] * x2 + u3[j] * x3)
                    a += 4
                while a < kin:
                    ua = UT[a]
                    xa = xs[i, a]
                    for j in range(nc):
                        zi[j] += ua[j] * xa
                    a += 1
                act_tile(act, zi, S[i], D[i], nc, want_s, want_d)
                if want_d:
                    qi = Q[i]
                    for j in range(nc):
                        qi[j] = 0.0
                    for o in range(kout):
                        vo = VT[o]
                        go = gs[i, o]
                        for j in range(nc):
                            qi[j] += vo[j] * go
                    di = D[i]
                    for j in range(nc):
                        qi[j] *= di[j]
            s0, s1, s2, s3 = S[0], S[1], S[2], S[3]
            q0, q1, q2, q3 = Q[0], Q[1], Q[2], Q[3]
            if want_s:
                for o in range(kout):
                    g0, g1, g2, g3 = gs[0, o], gs[1, o], gs[2, o], gs[3, o]
                    ao = accv[o]
                    for j in range(nc):
                        ao[j] += (s0[j] * g0 + s1[j] * g1) + (s2[j] * g2 + s3[j] * g3)
            if cc != 0.0:
                for j in range(nc):
                    accc[j] += (q0[j] + q1[j]) + (q2[j] + q3[j])
            if cu != 0.0:
                a = 0
                while a + 2 <= kin:  # two coordinates per pass share the loads of q
                    x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
                    y0, y1, y2, y3 = xs[0, a + 1], xs[1, a + 1], xs[2, a + 1], xs[3, a + 1]
                    aa = accu[a]
                    ab = accu[a + 1]
                    for j in range(nc):
                        aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)
                        ab[j] += (q0[j] * y0 + q1[j] * y1) + (q2[j] * y2 + q3[j] * y3)
                    a += 2
                if a < kin:
                    x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
                    aa = accu[a]
                    for j in range(nc):
                        aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)
    for j in range(nj):
        for a in range(kin):
            VelU[j0 + j, a] = cu * accu[a, j]
        Velc[j0 + j] = cc * accc[j]
        for o in range(kout):
            VelV[j0 + j, o] = cv * accv[o, j]




@njit(cache=True, error_model="numpy")
def _velocity_relu_k1(UT, cT, v0, HinT, g, Z, Q, xs, accu, accc, av, nc, n, want_c, want_u):
    """The particle sums of :func:`_velocity_chunk` for a ReLU block with k_out = 1 (the
    first block of an [RZG] network, a two-layer network), four samples per pass over
    the particles: the four pre-activations in one pass (the general path's additions,
    in its order), then σ, σ', q and the v and c sums in one fused pass, then the u sums.
    The same expressions as the general path, so the same bits, in about a third of the
    passes over the chunk."""
    kin = UT.shape[0]
    zero = np.zeros(1, dtype=UT.dtype)[0]  # typed: keeps float32 arithmetic in float32
    one = np.ones(1, dtype=UT.dtype)[0]
    z0, z1, z2, z3 = Z[0], Z[1], Z[2], Z[3]
    q0, q1, q2, q3 = Q[0], Q[1], Q[2], Q[3]
    for b0 in range(0, n, 4):
        nb = min(4, n - b0)
        for i in range(4):
            for a in range(kin):
                xs[i, a] = HinT[a, b0 + i] if i < nb else zero
        g0 = g[b0] if nb > 0 else zero
        g1 = g[b0 + 1] if nb > 1 else zero
        g2 = g[b0 + 2] if nb > 2 else zero
        g3 = g[b0 + 3] if nb > 3 else zero
        for j in range(nc):
            cj = cT[j]
            z0[j] = cj
            z1[j] = cj
            z2[j] = cj
            z3[j] = cj
        a = 0
        while a + 8 <= kin:
            u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
            u4, u5, u6, u7 = UT[a + 4], UT[a + 5], UT[a + 6], UT[a + 7]
            for i in range(4):
                zi = Z[i]
                x0, x1, x2, x3 = xs[i, a], xs[i, a + 1], xs[i, a + 2], xs[i, a + 3]
                x4, x5, x6, x7 = xs[i, a + 4], xs[i, a + 5], xs[i, a + 6], xs[i, a + 7]
                for j in range(nc):
                    zi[j] += ((u0[j] * x0 + u1[j] * x1) + (u2[j] * x2 + u3[j] * x3)) + \
                             ((u4[j] * x4 + u5[j] * x5) + (u6[j] * x6 + u7[j] * x7))
            a += 8
        while a + 4 <= kin:
            u0, u1, u2, u3 = UT[a], UT[a + 1], UT[a + 2], UT[a + 3]
            x00, x01, x02, x03 = xs[0, a], xs[0, a + 1], xs[0, a + 2], xs[0, a + 3]
            x10, x11, x12, x13 = xs[1, a], xs[1, a + 1], xs[1, a + 2], xs[1, a + 3]
            x20, x21, x22, x23 = xs[2, a], xs[2, a + 1], xs[2, a + 2], xs[2, a + 3]
            x30, x31, x32, x33 = xs[3, a], xs[3, a + 1], xs[3, a + 2], xs[3, a + 3]
            for j in range(nc):
                w0, w1, w2, w3 = u0[j], u1[j], u2[j], u3[j]
                z0[j] += (w0 * x00 + w1 * x01) + (w2 * x02 + w3 * x03)
                z1[j] += (w0 * x10 + w1 * x11) + (w2 * x12 + w3 * x13)
                z2[j] += (w0 * x20 + w1 * x21) + (w2 * x22 + w3 * x23)
                z3[j] += (w0 * x30 + w1 * x31) + (w2 * x32 + w3 * x33)
            a += 4
        while a < kin:
            ua = UT[a]
            x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
            for j in range(nc):
                w = ua[j]
                z0[j] += w * x0
                z1[j] += w * x1
                z2[j] += w * x2
                z3[j] += w * x3
            a += 1
        for j in range(nc):
            vj = v0[j]
            y0, y1, y2, y3 = z0[j], z1[j], z2[j], z3[j]
            r0 = max(y0, zero)
            r1 = max(y1, zero)
            r2 = max(y2, zero)
            r3 = max(y3, zero)
            p0 = (zero + vj * g0) * (one if y0 > zero else zero)
            p1 = (zero + vj * g1) * (one if y1 > zero else zero)
            p2 = (zero + vj * g2) * (one if y2 > zero else zero)
            p3 = (zero + vj * g3) * (one if y3 > zero else zero)
            av[j] += (r0 * g0 + r1 * g1) + (r2 * g2 + r3 * g3)
            if want_c:
                accc[j] += (p0 + p1) + (p2 + p3)
            q0[j] = p0
            q1[j] = p1
            q2[j] = p2
            q3[j] = p3
        a = 0
        while want_u and a + 2 <= kin:  # two coordinates per pass share the loads of q
            x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
            y0, y1, y2, y3 = xs[0, a + 1], xs[1, a + 1], xs[2, a + 1], xs[3, a + 1]
            aa = accu[a]
            ab = accu[a + 1]
            for j in range(nc):
                aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)
                ab[j] += (q0[j] * y0 + q1[j] * y1) + (q2[j] * y2 + q3[j] * y3)
            a += 2
        if want_u and a < kin:
            x0, x1, x2, x3 = xs[0, a], xs[1, a], xs[2, a], xs[3, a]
            aa = accu[a]
            for j in range(nc):
                aa[j] += (q0[j] * x0 + q1[j] * x1) + (q2[j] * x2 + q3[j] * x3)


@njit(cache=True, error_model="numpy")
def _particle_item(w, items, theta, layouts, coef, scales, XT, didx, HT, GT, vel):
    b, l, j0 = items[w, 0], items[w, 1], items[w, 2]
    lay = layouts[b]
    U, c, V = block_views(theta, lay, l)
    VU, Vc, VV = block_views(vel, lay, l)
    if l == 0:
        Hin = XT[didx[b]]
    else:
        rp = lay[l - 1, ROW]
        Hin = HT[b, rp:rp + lay[l - 1, KOUT]]
    r = lay[l, ROW]
    s = scales[b, l]
    _velocity_chunk(U, c, V, lay[l, ACT], Hin, GT[b, r:r + lay[l, KOUT]], coef[b, l, 0] * s,
                    coef[b, l, 1] * s, coef[b, l, 2] * s, VU, Vc, VV, j0)


@njit(parallel=True, cache=True, error_model="numpy")
def _sample_pass_parallel(theta, layouts, scales, offb, XT, Y, didx, psi, loss, lowest, mode,
                          HT, GT, F, partial):
    ntiles = (XT.shape[2] + TILE - 1) // TILE
    for w in prange(layouts.shape[0] * ntiles):
        _sample_item(w // ntiles, w % ntiles, theta, layouts, scales, offb, XT, Y, didx, psi,
                     loss, lowest, mode, HT, GT, F, partial)


@njit(cache=True, error_model="numpy")
def _sample_pass_serial(theta, layouts, scales, offb, XT, Y, didx, psi, loss, lowest, mode,
                        HT, GT, F, partial):
    ntiles = (XT.shape[2] + TILE - 1) // TILE
    for w in range(layouts.shape[0] * ntiles):
        _sample_item(w // ntiles, w % ntiles, theta, layouts, scales, offb, XT, Y, didx, psi,
                     loss, lowest, mode, HT, GT, F, partial)


@njit(parallel=True, cache=True, error_model="numpy")
def _particle_pass_parallel(items, theta, layouts, coef, scales, XT, didx, HT, GT, vel):
    for w in prange(items.shape[0]):
        _particle_item(w, items, theta, layouts, coef, scales, XT, didx, HT, GT, vel)


@njit(cache=True, error_model="numpy")
def _particle_pass_serial(items, theta, layouts, coef, scales, XT, didx, HT, GT, vel):
    for w in range(items.shape[0]):
        _particle_item(w, items, theta, layouts, coef, scales, XT, didx, HT, GT, vel)


@njit(cache=True, error_model="numpy")
def _moves(coef, b, l):
    """Whether block l of network b has a parameter that moves (a nonzero coefficient)."""
    return coef[b, l, 0] != 0.0 or coef[b, l, 1] != 0.0 or coef[b, l, 2] != 0.0


@njit(cache=True, error_model="numpy")
def evaluate(theta, layouts, scales, offb, XT, Y, didx, psi, loss, coef, coef_b, mode,
             parallel, HT, GT, F, partial, vel, values):
    """Features, outputs, losses and velocities of B networks of one architecture.

    Parameters
    ----------
    theta : (P,) the networks' parameters, concatenated
    layouts : (B, L, 8) int64, offsets absolute in ``theta`` (columns in this module)
    scales : (B, L) output scale of each block (1/m_l mean-field, 1/√m_l NTK)
    offb : (B,) index of each network's output bias in ``theta`` (-1: none)
    XT : (D, d, N) inputs, transposed, of D data sets;  Y : (D, N) targets
    didx : (B,) the data set of each network
    psi, loss : output-function and loss codes (shared)
    coef : (B, L, 3) velocity coefficients of (u, c, v): velocity = coef · ∂L_b/∂θ with
        L_b network b's finite-width empirical loss; zero skips the parameter and writes
        a zero velocity
    coef_b : (B,) velocity coefficient of each output bias
    mode : FORWARD (features and nothing else), LOSS (and outputs, losses), VELOCITY
    parallel : run each pass as a prange over its work items
    HT, GT : (B, Σ_l k_l, N) features h⁽ˡ⁾ and back-propagated g⁽ˡ⁾ (written)
    F : (B, N) outputs;  partial : (B, ceil(N / TILE)) per-tile loss sums (work array)
    vel : (P,) velocities (written in VELOCITY mode)
    values : (B,) each network's empirical loss (1/N) Σ ℓ(f(x), y(x)) (written)
    """
    B = layouts.shape[0]
    L = layouts.shape[1]
    n = XT.shape[2]
    # lowest[b]: the lowest block of network b that moves (L if none): back-propagation
    # stops there
    lowest = np.full(B, L, dtype=np.int64)
    if mode == VELOCITY:
        for b in range(B):
            for l in range(L - 1, -1, -1):
                if _moves(coef, b, l):
                    lowest[b] = l
    if parallel:
        _sample_pass_parallel(theta, layouts, scales, offb, XT, Y, didx, psi, loss, lowest,
                              mode, HT, GT, F, partial)
    else:
        _sample_pass_serial(theta, layouts, scales, offb, XT, Y, didx, psi, loss, lowest,
                            mode, HT, GT, F, partial)
    if mode == FORWARD:
        return
    for b in range(B):
        tot = 0.0
        for t in range(partial.shape[1]):
            tot += partial[b, t]
        values[b] = tot / n
    if mode == LOSS:
        return
    # the particle pass: work items (network, moving block, chunk), chunk-major: a
    # parallel loop splits its range into equal contiguous parts, one per thread, and
    # items of different blocks differ in cost (d inputs against a k = 1 bottleneck), so
    # chunk j of every network and block comes before chunk j + 1 of any
    count = 0
    maxm = 0
    for b in range(B):
        for l in range(L):
            lay = layouts[b]
            if _moves(coef, b, l):
                count += (lay[l, M] + PCHUNK - 1) // PCHUNK
                maxm = max(maxm, lay[l, M])
            else:  # a block that does not move: zero velocity
                VU, Vc, VV = block_views(vel, lay, l)
                VU[:] = 0.0
                Vc[:] = 0.0
                VV[:] = 0.0
    items = np.empty((count, 3), dtype=np.int64)
    w = 0
    for j0 in range(0, maxm, PCHUNK):
        for b in range(B):
            for l in range(L):
                if _moves(coef, b, l) and j0 < layouts[b, l, M]:
                    items[w, 0] = b
                    items[w, 1] = l
                    items[w, 2] = j0
                    w += 1
    if parallel:
        _particle_pass_parallel(items, theta, layouts, coef, scales, XT, didx, HT, GT, vel)
    else:
        _particle_pass_serial(items, theta, layouts, coef, scales, XT, didx, HT, GT, vel)
    for b in range(B):  # the output bias: Σ_x e(x), in sample order
        if offb[b] >= 0:
            gb = 0.0
            if coef_b[b] != 0.0:
                e = GT[b, layouts[b, L - 1, ROW]]
                for i in range(n):
                    gb += e[i]
            vel[offb[b]] = coef_b[b] * gb
