"""2-D transposed convolution (PyTorch's ``conv_transpose2d``): the kernels and their references.

``full[n, o, i*sh + p*dh, j*sw + q*dw] += sum_c x[n, c, i, j] * W[c, o, p, q]``
over the input channels ``c`` of output channel ``o``'s group, then
``y = b + full[:, :, ph : ph + Ho, pw : pw + Wo]`` (``full`` has
``output_padding`` more zero rows/columns at the end). Each input position
scatters a weighted copy of the kernel into the output: the transpose of
the convolution with the same geometry, which gathers.

So the kernels are the convolution's (``kernels.conv``), reused, not
re-written:

- forward: the convolution's *input gradient* (``conv2d_backward``) with the
  transposed layer's input in the role of the output gradient;
- backward: the input gradient is the convolution's *forward* of the output
  gradient, the weight gradient the convolution's weight gradient with the
  roles of input and output gradient exchanged, reusing the im2col columns
  the forward just built.

The references scatter and gather one kernel offset at a time, as a
textbook does.
"""

from ..backend import get_array_module
from .conv import conv2d_backward, conv2d_forward

__all__ = [
    "transpose_geometry",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward_reference",
    "conv_transpose2d_backward_reference",
]


def transpose_geometry(size, kernel, stride, padding, output_padding, dilation):
    """``(out_size, conv_size, conv_pads, extra)`` per spatial axis of a
    transposed convolution of an input of spatial ``size``:

    - ``out = (size - 1)*s - 2*p + d*(k - 1) + output_padding + 1``;
    - the convolution that it transposes reads a ``conv_size`` input padded
      with ``conv_pads = (p, p - output_padding)``, and gives ``size``;
    - when ``output_padding > p`` that bottom/right padding would be negative:
      the convolution stops at ``p - output_padding`` rows short and the
      transposed output gets ``extra`` zero rows (no input reaches them).
    """
    out, conv, pads, extra = [], [], [], []
    for s, k, st, p, op, d in zip(size, kernel, stride, padding, output_padding, dilation, strict=True):
        o = (s - 1) * st - 2 * p + d * (k - 1) + op + 1
        bottom = p - op
        out.append(o)
        conv.append(o + min(bottom, 0))
        pads.append((p, max(bottom, 0)))
        extra.append(max(-bottom, 0))
    return tuple(out), tuple(conv), tuple(pads), tuple(extra)


# ------------------------------------------------------------------ references
def _scatter_slices(kernel, stride, dilation, in_size):
    """``(p, q, rows, cols)``: the slices of ``full`` that kernel offset ``(p, q)`` writes."""
    (kh, kw), (sh, sw), (dh, dw), (h, w) = kernel, stride, dilation, in_size
    for p in range(kh):
        for q in range(kw):
            yield p, q, slice(p * dh, p * dh + sh * (h - 1) + 1, sh), slice(q * dw, q * dw + sw * (w - 1) + 1, sw)


def _full_size(size, kernel, stride, output_padding, dilation):
    return tuple((s - 1) * st + d * (k - 1) + 1 + op
                 for s, k, st, op, d in zip(size, kernel, stride, output_padding, dilation, strict=True))  # fmt: skip


def conv_transpose2d_forward_reference(x, W, b, stride, padding, output_padding, dilation, groups):
    """``y`` (N, O, Ho, Wo) from ``x`` (N, C, H, W), ``W`` (C, O/g, kh, kw), ``b`` (O,) or None:
    ``full[window(p, q)] += x . W[:, :, p, q]`` over the kernel offsets, then cropped."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    og, kernel = W.shape[1], W.shape[2:]
    fh, fw = _full_size((h, w), kernel, stride, output_padding, dilation)
    (ph, pw) = padding
    xg = x.reshape(n, groups, c // groups, h, w)
    Wg = W.reshape(groups, c // groups, og, *kernel)
    full = xp.zeros((n, groups, og, fh, fw), dtype=x.dtype)
    for p, q, rows, cols in _scatter_slices(kernel, stride, dilation, (h, w)):
        full[..., rows, cols] += xp.einsum("ngchw,gco->ngohw", xg, Wg[..., p, q])
    y = full.reshape(n, groups * og, fh, fw)[:, :, ph : fh - ph, pw : fw - pw]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose2d_backward_reference(grad_out, x, W, stride, padding, output_padding, dilation, groups, bias=True):
    """``(grad_x, grad_W, grad_b)`` of ``conv_transpose2d_forward_reference``: the
    output gradient is put back in its place in ``full`` (zeros elsewhere),
    then per kernel offset ``grad_x += gfull[window(p, q)] . W[:, :, p, q]`` and
    ``grad_W[:, :, p, q] = x . gfull[window(p, q)]``."""
    xp = get_array_module(grad_out)
    n, c, h, w = x.shape
    og, kernel = W.shape[1], W.shape[2:]
    fh, fw = _full_size((h, w), kernel, stride, output_padding, dilation)
    (ph, pw) = padding
    gfull = xp.zeros((n, groups * og, fh, fw), dtype=grad_out.dtype)
    gfull[:, :, ph : fh - ph, pw : fw - pw] = grad_out
    gg = gfull.reshape(n, groups, og, fh, fw)
    xg = x.reshape(n, groups, c // groups, h, w)
    Wg = W.reshape(groups, c // groups, og, *kernel)
    grad_xg = xp.zeros_like(xg)
    grad_Wg = xp.zeros_like(Wg)
    for p, q, rows, cols in _scatter_slices(kernel, stride, dilation, (h, w)):
        grad_xg += xp.einsum("ngohw,gco->ngchw", gg[..., rows, cols], Wg[..., p, q])
        grad_Wg[..., p, q] = xp.einsum("ngchw,ngohw->gco", xg, gg[..., rows, cols])
    grad_b = grad_out.sum(axis=(0, 2, 3)) if bias else None
    return grad_xg.reshape(x.shape), grad_Wg.reshape(W.shape), grad_b


# ------------------------------------------------------------------ kernels (the convolution's)
def conv_transpose2d_forward(x, W, b, stride, padding, output_padding, dilation, groups):
    """``conv_transpose2d_forward_reference`` as the input gradient of the
    convolution it transposes (``conv2d_backward``, chunked im2col products
    and col2im on nnumpy's threads). The output is a view of channels-last
    memory unless extra zero rows were appended."""
    xp = get_array_module(x)
    n, (h, w) = x.shape[0], x.shape[2:]
    _, conv_size, pads, extra = transpose_geometry((h, w), W.shape[2:], stride, padding, output_padding, dilation)
    y = conv2d_backward(x, None, W, (n, W.shape[1] * groups, *conv_size), stride, pads, dilation, groups,
                        bias=False, need_params=False)[0]  # fmt: skip
    if any(extra):
        y = xp.pad(y, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)  # y is this call's own memory
    return y


def conv_transpose2d_backward(grad_out, x, W, stride, padding, output_padding, dilation, groups, bias=True,
                              need_input=True, need_params=True):  # fmt: skip
    """``conv_transpose2d_backward_reference``: ``grad_x`` is the convolution's
    forward of ``grad_out`` (``conv2d_forward``); ``grad_W`` the convolution's
    weight gradient with ``x`` as its output gradient (``conv2d_backward``),
    on the columns that forward kept when they are small enough; ``grad_b``
    the sum of ``grad_out``. Each is None when not asked for."""
    xp = get_array_module(grad_out)
    _, conv_size, pads, _ = transpose_geometry(x.shape[2:], W.shape[2:], stride, padding, output_padding, dilation)
    g = grad_out[:, :, : conv_size[0], : conv_size[1]]  # the extra rows only reach the bias
    grad_x = grad_w = grad_b = None
    gpad = cols = None
    if need_input:
        grad_x, gpad, cols = conv2d_forward(g, W, None, stride, pads, dilation, groups, keep_columns=need_params)
    if need_params:
        if gpad is None:
            gpad = xp.pad(g, ((0, 0), (0, 0), *pads)).transpose(0, 2, 3, 1)
        grad_w = conv2d_backward(x, gpad, W, g.shape, stride, pads, dilation, groups, bias=False, need_input=False,
                                 cols=cols)[1]  # fmt: skip
        grad_b = grad_out.sum(axis=(0, 2, 3)) if bias else None
    return grad_x, grad_w, grad_b
