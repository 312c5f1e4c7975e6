"""Recurrent layers (RNN, LSTM, GRU), one layer at a time: the fast kernels and their references.

Per step ``t``, from the input ``x_t`` and the state ``h`` (``c`` for LSTM),
with PyTorch's gate order::

    RNN:  h' = act(x_t W_ih^T + b_ih + h W_hh^T + b_hh)                   act = tanh or relu
    LSTM: [i, f, g, o] = x_t W_ih^T + b_ih + h W_hh^T + b_hh              (sigmoid, sigmoid, tanh, sigmoid)
          c' = f * c + i * g        m = o * tanh(c')        h' = m  (or m W_hr^T with a projection)
    GRU:  [r, z] = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})
          n = tanh(x_t W_in^T + b_in + r * (h W_hn^T + b_hn))        h' = (1 - z) * n + z * h

A padded step (``mask`` False) keeps the state it got. The references
(``recurrent_forward_reference``, ``recurrent_backward_reference``) compute
that as a textbook does: one direction at a time, one step at a time, and
backpropagation through time with ``sigmoid' = s(1 - s)``, ``tanh' = 1 - t^2``.

Both take and return the same structures. Arrays are in *step order*:
``(D, T, N, ...)`` where direction ``d = 1`` (reverse) is stored with time
flipped, so step ``s`` of both directions is one batched product
``(D, N, P) @ (D, P, G*H)``. The fast kernels compute the same with these
speed tricks:

- the input projection of every step is one product before the loop, the
  parameter gradients one product after it (``_column_sums``: the bias
  gradients as products with a vector of ones); only the recurrence loops
  over time;
- the rows of the sigmoid gates' weights and biases are scaled by 0.5, so one
  ``tanh`` over all gates gives ``tanh(a / 2)``, and ``sigmoid(a) =
  (1 + tanh(a / 2)) / 2`` takes two cheap in-place passes (and never overflows);
- the activations overwrite the input projections in place, and each step
  writes into preallocated buffers;
- the samples of a batch are independent, so the recurrence runs on nnumpy's
  threads (``parallel_for``) in pieces of the batch axis: each piece runs
  every step on its own rows, its small products on one BLAS thread, with no
  synchronisation between steps (BLAS threads inside each step's
  ``(N, H) @ (H, 4H)`` product would meet twice per step). The large products
  before and after the loop keep BLAS's threads. ``nnumpy.kernels.tuning``'s
  ``min_macs_per_thread`` and ``threads`` decide the pieces.
"""

from ..backend import get_array_module
from .parallel import parallel_for

__all__ = [
    "GATES",
    "recurrent_forward",
    "recurrent_backward",
    "recurrent_forward_reference",
    "recurrent_backward_reference",
]

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
"""The gates per hidden unit of each mode: the weights have ``GATES[mode] * H`` rows."""


# ------------------------------------------------------------------ references
def _sigmoid(a):
    return 1 / (1 + get_array_module(a).exp(-a))


def recurrent_forward_reference(mode, x, w_ih, bias, h0, c0, w_hh, b_hh, w_hr, mask):
    """``(hs, cs, cache)`` as ``recurrent_forward``, by the formulas above: each
    direction ``d`` and step ``s`` on its own. ``bias`` is ``b_ih + b_hh`` (RNN,
    LSTM) or ``b_ih`` (GRU, whose ``b_hh`` is kept apart: ``b_hn`` is inside ``r * (...)``)."""
    xp = get_array_module(x)
    D, T, N, _ = x.shape
    P = w_hh.shape[2]
    H = w_hh.shape[1] // GATES[mode]
    hs = xp.zeros((D, T + 1, N, P), x.dtype)
    cs = xp.zeros((D, T + 1, N, H), x.dtype) if mode == "LSTM" else None
    steps = [[None] * T for _ in range(D)]  # what each step's backward needs
    for d in range(D):
        hs[d, 0] = h0[d]
        if cs is not None:
            cs[d, 0] = c0[d]
        for s in range(T):
            x_t, h = x[d, s], hs[d, s]
            gi = x_t @ w_ih[d].T + (0 if bias is None else bias[d])
            gh = h @ w_hh[d].T
            if mode in ("RNN_TANH", "RNN_RELU"):
                a = gi + gh
                h_new = xp.tanh(a) if mode == "RNN_TANH" else xp.maximum(a, 0)
                step = {"h_new": h_new}
            elif mode == "LSTM":
                a = gi + gh
                i, f = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H])
                g, o = xp.tanh(a[:, 2 * H : 3 * H]), _sigmoid(a[:, 3 * H :])
                c = cs[d, s]
                c_new = f * c + i * g
                m = o * xp.tanh(c_new)
                h_new = m if w_hr is None else m @ w_hr[d].T
                step = {"i": i, "f": f, "g": g, "o": o, "c": c, "c_new": c_new, "m": m}
            else:  # GRU
                if b_hh is not None:
                    gh = gh + b_hh[d]
                r = _sigmoid(gi[:, :H] + gh[:, :H])
                z = _sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
                hn = gh[:, 2 * H :]
                n = xp.tanh(gi[:, 2 * H :] + r * hn)
                h_new = (1 - z) * n + z * h
                step = {"r": r, "z": z, "n": n, "hn": hn}
            if mask is not None:
                keep = mask[d, s]
                h_new = xp.where(keep, h_new, h)
                if cs is not None:
                    step["c_new"] = xp.where(keep, step["c_new"], cs[d, s])
            hs[d, s + 1] = h_new
            if cs is not None:
                cs[d, s + 1] = step["c_new"]
            steps[d][s] = step
    cache = {"mode": mode, "x": x, "w_ih": w_ih, "w_hh": w_hh, "w_hr": w_hr, "mask": mask, "hs": hs, "steps": steps}
    return hs, cs, cache


def recurrent_backward_reference(cache, grad_out, grad_hn, grad_cn, need_input_grad=True, need_param_grads=True):
    """``(grad_x, grad_h0, grad_c0, grads)`` as ``recurrent_backward``, from
    ``recurrent_forward_reference``'s cache: backpropagation through time, one
    direction and one step at a time, from the last step to the first.

    Per step, ``dh`` (the step output's gradient plus the next step's) and, for
    LSTM, ``dc`` (the next step's) give the pre-activations' gradients ``da``:
        RNN: ``da = dh * (1 - h'^2)`` (tanh) or ``dh * (h' > 0)`` (relu).
        LSTM: ``dm = dh`` (or ``dh @ W_hr``, ``dW_hr += dh^T m``),
        ``dc += dm * o * (1 - tanh^2(c'))``; ``da = [dc * g * i(1 - i), dc * c * f(1 - f),
        dc * i * (1 - g^2), dm * tanh(c') * o(1 - o)]``; the previous ``dc = dc * f``.
        GRU: ``dn = dh * (1 - z) * (1 - n^2)``, ``dz = dh * (h - n) * z(1 - z)``,
        ``dr = dn * hn * r(1 - r)`` (``hn = h W_hn^T + b_hn``); the input side's
        ``da = [dr, dz, dn]``, the hidden side's ``[dr, dz, dn * r]``.
    Then ``dx = da_ih @ W_ih``, ``dh_prev = da_hh @ W_hh`` (``+ dh * z`` for GRU),
    ``dW_ih += da_ih^T x``, ``dW_hh += da_hh^T h``, ``db_ih += sum(da_ih)``,
    ``db_hh += sum(da_hh)``. A padded step passes ``dh`` and ``dc`` through unchanged.
    """
    mode, x, hs, mask, steps = cache["mode"], cache["x"], cache["hs"], cache["mask"], cache["steps"]
    w_ih, w_hh, w_hr = cache["w_ih"], cache["w_hh"], cache["w_hr"]
    xp = get_array_module(hs)
    D, T1, N, P = hs.shape
    T = T1 - 1
    H = w_hh.shape[1] // GATES[mode]
    grad_x = xp.zeros(x.shape, x.dtype)
    grad_h0 = xp.zeros((D, N, P), hs.dtype)
    grad_c0 = xp.zeros((D, N, H), hs.dtype) if mode == "LSTM" else None
    grads = {
        "w_ih": xp.zeros(w_ih.shape, hs.dtype),
        "w_hh": xp.zeros(w_hh.shape, hs.dtype),
        "b_ih": xp.zeros(w_hh.shape[:2], hs.dtype),
        "b_hh": xp.zeros(w_hh.shape[:2], hs.dtype),
    }
    if mode == "LSTM" and w_hr is not None:
        grads["w_hr"] = xp.zeros(w_hr.shape, hs.dtype)
    for d in range(D):
        dh_next = xp.zeros((N, P), hs.dtype) if grad_hn is None else grad_hn[d].astype(hs.dtype)
        dc_next = None
        if mode == "LSTM":
            dc_next = xp.zeros((N, H), hs.dtype) if grad_cn is None else grad_cn[d].astype(hs.dtype)
        for s in range(T - 1, -1, -1):
            step, h, x_t = steps[d][s], hs[d, s], x[d, s]
            dh = dh_next if grad_out is None else dh_next + grad_out[d, s]
            keep = 1 if mask is None else mask[d, s].astype(hs.dtype)
            dh_step = dh * keep  # a padded step's output did not depend on this step's math
            dh_extra = 0
            if mode in ("RNN_TANH", "RNN_RELU"):
                h_new = hs[d, s + 1]
                da = dh_step * (1 - h_new**2) if mode == "RNN_TANH" else dh_step * (h_new > 0)
                da_hh = da
            elif mode == "LSTM":
                i, f, g, o, c, m = (step[k] for k in ("i", "f", "g", "o", "c", "m"))
                tc = xp.tanh(step["c_new"])
                dm = dh_step
                if w_hr is not None:
                    grads["w_hr"][d] += dh_step.T @ m
                    dm = dh_step @ w_hr[d]
                dc = dc_next * keep + dm * o * (1 - tc**2)
                da = xp.concatenate(
                    [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2), dm * tc * o * (1 - o)], axis=1
                )
                da_hh = da
                dc_next = dc * f * keep + dc_next * (1 - keep)
            else:  # GRU
                r, z, n, hn = (step[k] for k in ("r", "z", "n", "hn"))
                dn = dh_step * (1 - z) * (1 - n**2)
                dz = dh_step * (h - n) * z * (1 - z)
                dr = dn * hn * r * (1 - r)
                da = xp.concatenate([dr, dz, dn], axis=1)
                da_hh = xp.concatenate([dr, dz, dn * r], axis=1)
                dh_extra = dh_step * z
            grad_x[d, s] = da @ w_ih[d]
            grads["w_ih"][d] += da.T @ x_t
            grads["w_hh"][d] += da_hh.T @ h
            grads["b_ih"][d] += da.sum(axis=0)
            grads["b_hh"][d] += da_hh.sum(axis=0)
            dh_next = da_hh @ w_hh[d] + dh_extra + dh * (1 - keep)
        grad_h0[d] = dh_next
        if grad_c0 is not None:
            grad_c0[d] = dc_next
    return grad_x if need_input_grad else None, grad_h0, grad_c0, grads if need_param_grads else None


# ------------------------------------------------------------------ fast kernels
def _mm(a, b, out=None):
    """``a[d] @ b[d]`` for each direction ``d``, as 2-D BLAS products."""
    xp = get_array_module(a)
    if out is None:
        out = xp.empty(a.shape[:-1] + b.shape[-1:], a.dtype)
    for d in range(a.shape[0]):
        xp.matmul(a[d], b[d], out=out[d])
    return out


def _column_sums(a):
    """``a.sum(axis=1)`` of ``(D, M, G)`` as products with a vector of ones
    (BLAS reads the rows once; NumPy's column reduction is about 2x slower)."""
    xp = get_array_module(a)
    ones = xp.ones(a.shape[1], a.dtype)
    out = xp.empty((a.shape[0], a.shape[2]), a.dtype)
    for d in range(a.shape[0]):
        xp.matmul(ones, a[d], out=out[d])
    return out


def _sigmoid_rows(mode, H, like):
    """``(G*H, 1)`` factors: 0.5 on the rows of sigmoid gates, 1 on tanh gates.
    The forward scales those rows of the weights and biases by 0.5, so one
    ``tanh`` over all gates gives ``tanh(a / 2)``, and ``sigmoid(a) =
    (1 + tanh(a / 2)) / 2`` needs two cheap passes (and never overflows)."""
    xp = get_array_module(like)
    if mode == "LSTM":
        rows = [0.5] * (2 * H) + [1.0] * H + [0.5] * H
    elif mode == "GRU":
        rows = [0.5] * (2 * H) + [1.0] * H
    else:
        return None
    return xp.asarray(rows, dtype=like.dtype)[:, None]


def _half_to_sigmoid_(t):
    """``t = tanh(a / 2)`` in place to ``sigmoid(a)``."""
    t *= 0.5
    t += 0.5


def recurrent_forward(mode, x, w_ih, bias, h0, c0, w_hh, b_hh, w_hr, mask):
    """One layer of ``mode`` ('RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'), all directions, all steps:
    ``recurrent_forward_reference``, with the speed tricks of the module docstring.

    Args:
        x: ``(D, T, N, I)`` the layer input in step order (direction 1 time-flipped).
        w_ih: ``(D, G*H, I)``; bias: ``(D, G*H)`` added to the input projection
            (``b_ih + b_hh`` for RNN/LSTM, ``b_ih`` for GRU) or None.
        h0: ``(D, N, P)`` (``P = proj_size or H``); c0: ``(D, N, H)`` for LSTM, else None.
        w_hh: ``(D, G*H, P)``; b_hh: ``(D, G*H)`` for GRU (inside ``r * (...)``) or None.
        w_hr: ``(D, P, H)`` (LSTM with projections) or None.
        mask: ``(D, T, N, 1)`` bool in step order (False: a padded step) or None.

    Returns:
        ``(hs, cs, cache)``: ``hs (D, T+1, N, P)`` the states (``hs[:, 0] = h0``),
        ``cs`` likewise for LSTM (else None), ``cache`` what the backward needs.
    """
    xp = get_array_module(x)
    D, T, N, I = x.shape
    GH, P = w_hh.shape[1], w_hh.shape[2]
    H = GH // GATES[mode]
    scale = _sigmoid_rows(mode, H, x)
    w_ih_s, w_hh_s = (w_ih, w_hh) if scale is None else (w_ih * scale, w_hh * scale)
    acts = _mm(x.reshape(D, T * N, I), w_ih_s.transpose(0, 2, 1)).reshape(D, T, N, GH)
    if bias is not None:
        acts += (bias if scale is None else bias * scale[:, 0])[:, None, None]
    # acts holds the input projections; each step turns its slice into the activated gates
    w_hh_t = w_hh_s.transpose(0, 2, 1)
    hs = xp.empty((D, T + 1, N, P), x.dtype)
    hs[:, 0] = h0
    pad = None if mask is None else ~mask
    cache = {"mode": mode, "x": x, "w_ih": w_ih, "w_hh": w_hh, "w_hr": w_hr, "mask": mask, "hs": hs, "acts": acts}
    cs = tanh_c = m_all = w_hr_t = hn_all = b_hh_s = None
    if mode == "LSTM":
        cs = xp.empty((D, T + 1, N, H), x.dtype)
        cs[:, 0] = c0
        cache["cs"] = cs
        cache["tanh_c"] = tanh_c = xp.empty((D, T, N, H), x.dtype)
        if w_hr is not None:
            cache["m"] = m_all = xp.empty((D, T, N, H), x.dtype)
            w_hr_t = w_hr.transpose(0, 2, 1)
    elif mode == "GRU":
        cache["hn"] = hn_all = xp.empty((D, T, N, H), x.dtype)
        b_hh_s = None if b_hh is None else (b_hh * scale[:, 0])[:, None]

    def steps(lo, hi):
        """The recurrence for samples ``lo:hi`` (the samples are independent:
        each piece runs every step on its own rows, with no synchronisation)."""
        b = slice(lo, hi)
        tmp = xp.empty((D, hi - lo, GH), x.dtype)
        ig = xp.empty((D, hi - lo, H), x.dtype) if mode == "LSTM" else None
        for s in range(T):
            h, a, h_new = hs[:, s, b], acts[:, s, b], hs[:, s + 1, b]
            hw = _mm(h, w_hh_t, out=tmp)
            if mode == "GRU":
                if b_hh_s is not None:
                    hw += b_hh_s
                hn_all[:, s, b] = hw[..., 2 * H :]
                rz, n = a[..., : 2 * H], a[..., 2 * H :]
                rz += hw[..., : 2 * H]
                xp.tanh(rz, out=rz)
                _half_to_sigmoid_(rz)
                r, z = a[..., :H], a[..., H : 2 * H]
                hn = hw[..., 2 * H :]
                hn *= r
                n += hn
                xp.tanh(n, out=n)
                xp.subtract(h, n, out=h_new)
                h_new *= z
                h_new += n  # n + z * (h - n)
            else:
                a += hw
                if mode == "RNN_TANH":
                    xp.tanh(a, out=h_new)
                    a[...] = h_new
                elif mode == "RNN_RELU":
                    xp.maximum(a, 0, out=h_new)
                    a[...] = h_new
                else:
                    xp.tanh(a, out=a)
                    _half_to_sigmoid_(a[..., : 2 * H])
                    _half_to_sigmoid_(a[..., 3 * H :])
                    i, f, g, o = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
                    c_prev, c_new = cs[:, s, b], cs[:, s + 1, b]
                    xp.multiply(f, c_prev, out=c_new)
                    xp.multiply(i, g, out=ig)
                    c_new += ig
                    tc = xp.tanh(c_new, out=tanh_c[:, s, b])
                    if w_hr is None:
                        xp.multiply(o, tc, out=h_new)
                    else:
                        xp.multiply(o, tc, out=m_all[:, s, b])
                        _mm(m_all[:, s, b], w_hr_t, out=h_new)
                    if pad is not None:
                        xp.copyto(c_new, c_prev, where=pad[:, s, b])
            if pad is not None:  # a padded step keeps the state it got
                xp.copyto(h_new, h, where=pad[:, s, b])

    parallel_for(steps, N, acts, calls_blas=True)
    return hs, cs, cache


def recurrent_backward(cache, grad_out, grad_hn, grad_cn, need_input_grad=True, need_param_grads=True):
    """Backpropagation through time for ``recurrent_forward``'s layer:
    ``recurrent_backward_reference``, all directions at once, on nnumpy's threads.

    Args:
        cache: what ``recurrent_forward`` returned.
        grad_out: ``(D, T, N, P)`` gradient of the per-step outputs ``hs[:, 1:]`` in
            step order, zero at padded steps (or None: zeros).
        grad_hn, grad_cn: ``(D, N, P)`` / ``(D, N, H)`` gradients of the final states (or None).

    Returns:
        ``(grad_x (D, T, N, I) or None, grad_h0, grad_c0, grads)`` with ``grads`` a dict
        of stacked parameter gradients (``w_ih, w_hh, b_ih, b_hh, w_hr``), or None.

    Per step, from ``dh`` (the state's gradient: the step output's plus the
    next step's), gradients of the pre-activations ``da`` (through ``σ' = σ(1 - σ)``
    and ``tanh' = 1 - tanh^2``):
        RNN: ``da = dh * (1 - h'^2)`` (tanh) or ``dh * (h' > 0)`` (relu).
        LSTM (``m = o * tanh(c')``, ``h' = m`` or ``m @ W_hr.T``, ``dm = dh`` or ``dh @ W_hr``):
        ``dc = dc' + dm * o * (1 - tanh^2(c'))``; ``di = dc * g``, ``df = dc * c``,
        ``dg = dc * i``, ``do = dm * tanh(c')``; ``dc_prev = dc * f``.
        GRU (``h' = n + z * (h - n)``, ``hn = W_hn h + b_hn``): ``dn = dh * (1 - z)``,
        ``dz = dh * (h - n)``, ``dr = dn_a * hn``; the hidden side's ``n`` part is ``dn_a * r``.
        Then ``dh_prev = da_hh @ W_hh`` (``+ dh * z`` for GRU). A padded step passes
        ``dh`` and ``dc`` through unchanged. After the loop, over all steps at once:
        ``dW_ih = da^T x``, ``dW_hh = da_hh^T h_prev``, ``db = sum(da)``,
        ``dW_hr = dh^T m``, ``dx = da @ W_ih``.
    """
    mode, hs, acts, mask = cache["mode"], cache["hs"], cache["acts"], cache["mask"]
    w_hh = cache["w_hh"]
    xp = get_array_module(hs)
    D, T1, N, P = hs.shape
    T = T1 - 1
    GH = w_hh.shape[1]
    H = GH // GATES[mode]
    pad = None if mask is None else ~mask
    d_ih = xp.empty_like(acts)  # gradients of the pre-activations, step order
    d_hh = xp.empty_like(acts) if mode == "GRU" else d_ih
    grad_h0 = xp.zeros((D, N, P), hs.dtype) if grad_hn is None else grad_hn.astype(hs.dtype, copy=True)
    grad_c0 = cs = tanh_c = w_hr = dh_proj = hn_all = None
    if mode == "LSTM":
        cs, tanh_c, w_hr = cache["cs"], cache["tanh_c"], cache["w_hr"]
        grad_c0 = xp.zeros((D, N, H), hs.dtype) if grad_cn is None else grad_cn.astype(hs.dtype, copy=True)
        if w_hr is not None:
            dh_proj = xp.empty((D, T, N, P), hs.dtype)
    elif mode == "GRU":
        hn_all = cache["hn"]

    def steps(lo, hi):
        """Backpropagation through time for samples ``lo:hi`` (independent of the
        other samples; the carried gradients end in ``grad_h0`` / ``grad_c0``)."""
        b = slice(lo, hi)
        n_b = hi - lo
        deriv = xp.empty((D, n_b, GH), hs.dtype)
        dh_carry = grad_h0[:, b]
        dc_carry = None if grad_c0 is None else grad_c0[:, b].copy()
        dc = xp.empty((D, n_b, H), hs.dtype) if mode == "LSTM" else None
        for s in range(T - 1, -1, -1):
            dh = dh_carry if grad_out is None else dh_carry + grad_out[:, s, b]
            dh_in = dh if mask is None else dh * mask[:, s, b]
            a, da = acts[:, s, b], d_ih[:, s, b]
            if mode == "RNN_TANH":
                xp.multiply(a, a, out=da)
                xp.subtract(1, da, out=da)
                da *= dh_in
            elif mode == "RNN_RELU":
                xp.multiply(dh_in, a > 0, out=da)
            elif mode == "LSTM":
                i, f, g, o = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
                tc = tanh_c[:, s, b]
                if w_hr is not None:
                    dh_proj[:, s, b] = dh_in
                    dh_in = _mm(dh_in, w_hr)
                xp.multiply(tc, tc, out=dc)
                xp.subtract(1, dc, out=dc)
                dc *= o
                dc *= dh_in
                if mask is None:
                    dc += dc_carry
                else:
                    dc += dc_carry * mask[:, s, b]
                xp.multiply(dc, g, out=da[..., :H])
                xp.multiply(dc, cs[:, s, b], out=da[..., H : 2 * H])
                xp.multiply(dc, i, out=da[..., 2 * H : 3 * H])
                xp.multiply(dh_in, tc, out=da[..., 3 * H :])
                xp.multiply(a, a, out=deriv)
                xp.subtract(a, deriv, out=deriv)  # σ(1 - σ) on the sigmoid gates
                dg = deriv[..., 2 * H : 3 * H]
                xp.multiply(g, g, out=dg)
                xp.subtract(1, dg, out=dg)  # 1 - g^2 on the tanh gate
                da *= deriv
                if pad is None:
                    xp.multiply(dc, f, out=dc_carry)
                else:
                    dc *= f
                    xp.copyto(dc, dc_carry, where=pad[:, s, b])
                    dc_carry, dc = dc, dc_carry
            else:  # GRU
                r, z, n = a[..., :H], a[..., H : 2 * H], a[..., 2 * H :]
                dn = da[..., 2 * H :]
                xp.multiply(n, n, out=dn)
                xp.subtract(1, dn, out=dn)
                dn *= dh_in
                dn -= dn * z  # dh * (1 - z) * (1 - n^2)
                xp.multiply(dn, hn_all[:, s, b], out=da[..., :H])
                xp.subtract(hs[:, s, b], n, out=da[..., H : 2 * H])
                da[..., H : 2 * H] *= dh_in
                rz, drz = a[..., : 2 * H], deriv[..., : 2 * H]
                xp.multiply(rz, rz, out=drz)
                xp.subtract(rz, drz, out=drz)
                da[..., : 2 * H] *= drz
                dah = d_hh[:, s, b]
                dah[..., : 2 * H] = da[..., : 2 * H]
                xp.multiply(dn, r, out=dah[..., 2 * H :])
            dh_prev = _mm(d_hh[:, s, b], w_hh)
            if mode == "GRU":
                dh_prev += dh_in * z
            if pad is not None:
                xp.copyto(dh_prev, dh, where=pad[:, s, b])
            dh_carry = dh_prev
        grad_h0[:, b] = dh_carry
        if grad_c0 is not None:
            grad_c0[:, b] = dc_carry

    parallel_for(steps, N, acts, calls_blas=True)
    grad_x = None
    x, w_ih = cache["x"], cache["w_ih"]
    flat_ih = d_ih.reshape(D, T * N, GH)
    if need_input_grad:
        grad_x = _mm(flat_ih, w_ih).reshape(D, T, N, w_ih.shape[2])
    grads = None
    if need_param_grads:
        flat_hh = d_hh.reshape(D, T * N, GH)
        grads = {
            "w_ih": _mm(flat_ih.transpose(0, 2, 1), x.reshape(D, T * N, w_ih.shape[2])),
            "w_hh": _mm(flat_hh.transpose(0, 2, 1), hs[:, :T].reshape(D, T * N, P)),
        }
        grads["b_ih"] = _column_sums(flat_ih)
        grads["b_hh"] = grads["b_ih"] if d_hh is d_ih else _column_sums(flat_hh)  # RNN, LSTM: the same sums
        if mode == "LSTM" and w_hr is not None:
            m_all = cache["m"].reshape(D, T * N, H)
            grads["w_hr"] = _mm(dh_proj.reshape(D, T * N, P).transpose(0, 2, 1), m_all)
    return grad_x, grad_h0, grad_c0, grads
