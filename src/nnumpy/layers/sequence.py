"""Sequence helpers: ``pad_sequence`` to batch sequences of different lengths,
``LastStep`` to turn a recurrent layer's output sequence into one vector per sample,
``Mean`` to average a sequence over its steps (a Transformer classifier's pooling).

Where PyTorch packs a batch (``pack_padded_sequence``), nnumpy passes the padded
batch with its lengths: ``rnn.forward((padded, lengths))`` computes exactly what
PyTorch computes on the packed sequence, and there is no ``PackedSequence`` type.
"""

import numpy as np

from .._checks import as_shape, check_float_array, shape_probe
from ..backend import get_array_module
from ..module import Module

__all__ = ["pad_sequence", "LastStep", "Mean"]


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack arrays of shapes ``(L_i, *)`` into one ``(T, N, *)`` array
    (``(N, T, *)`` with ``batch_first``), ``T = max L_i``, filling with
    ``padding_value``; PyTorch's ``torch.nn.utils.rnn.pad_sequence``. Integer
    sequences (token ids) stay integers.

    Example:
        >>> import numpy as np
        >>> seqs = [np.array([1, 2, 3]), np.array([4])]
        >>> pad_sequence(seqs, batch_first=True).tolist()
        [[1, 2, 3], [4, 0, 0]]
        >>> np.array([len(s) for s in seqs])  # the lengths an RNN takes with it
        array([3, 1])
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    if len(sequences) == 0:
        raise ValueError("pad_sequence: expected at least one sequence, got none")
    xp = get_array_module(*sequences)
    arrays = [xp.asarray(s) for s in sequences]
    tail = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim < 1 or a.shape[1:] != tail:
            raise ValueError(
                f"pad_sequence: every sequence must have shape (L, *{tail}) like the first, "
                f"sequence {i} has {tuple(a.shape)}"
            )
    steps = max(a.shape[0] for a in arrays)
    dtype = np.result_type(*[a.dtype for a in arrays])
    out = xp.full((len(arrays), steps, *tail), padding_value, dtype=dtype)
    for i, a in enumerate(arrays):
        if padding_side == "right":
            out[i, : a.shape[0]] = a
        elif a.shape[0]:
            out[i, steps - a.shape[0] :] = a
    return out if batch_first else out.swapaxes(0, 1)


class LastStep(Module):
    """A recurrent layer's output sequence to one vector per sample: its last
    valid step, as PyTorch's ``h_n`` of the last layer.

    Args:
        batch_first: the sequence is ``(N, T, F)`` (default, as the classifiers'
            ``batch_first=True`` RNNs) or ``(T, N, F)`` (``batch_first=False``).
        bidirectional: the features are ``[forward, reverse]`` halves of a
            bidirectional layer; the reverse half's last step is step 0.

    Input (one of):
        ``output``: the sequence; the forward features at step ``T - 1``.
        ``(output, lengths)``: the forward features at step ``lengths[n] - 1``
        (the padded steps are not read).
        ``(output, h_n)`` or ``(output, (h_n, c_n))``: an RNN built with
        ``return_state=True``; the result is the last layer's ``h_n`` with its
        directions concatenated, read from ``h_n`` (so lengths, direction and
        layout need no arguments: ``D = F // h_n.shape[-1]``).

    Shape:
        Output ``(N, F)``.

    Backward:
        The gradient goes to the positions read (zeros elsewhere); ``None``
        for ``lengths``; zeros for ``c_n``.

    Example:
        >>> import numpy as np
        >>> from nnumpy import LSTM, Linear, Sequential
        >>> net = Sequential(LSTM(28, 16, batch_first=True), LastStep(), Linear(16, 10))
        >>> net.forward(np.zeros((4, 28, 28), np.float32)).shape
        (4, 10)
    """

    def __init__(self, batch_first=True, bidirectional=False):
        super().__init__()
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self._read = None

    def _parse(self, input):
        """``(output, lengths, h_n, c_n)`` from the accepted inputs, checked."""
        extra = None
        if isinstance(input, tuple):
            if len(input) != 2:
                raise TypeError(f"{self!r}: expected output, (output, lengths) or (output, h_n), "
                                f"got a tuple of {len(input)}")
            input, extra = input
        check_float_array(self, input)
        if input.ndim != 3:
            layout = "(N, T, F)" if self.batch_first else "(T, N, F)"
            raise ValueError(f"{self!r}: expected a sequence of shape {layout}, got {tuple(input.shape)}")
        lengths = h_n = c_n = None
        if extra is None:
            return input, None, None, None
        if isinstance(extra, (tuple, list)) or (hasattr(extra, "dtype") and extra.dtype.kind == "f"):
            h_n, c_n = extra if isinstance(extra, (tuple, list)) else (extra, None)
            check_float_array(self, h_n, "h_n")
            if h_n.ndim != 3 or input.shape[-1] % h_n.shape[-1] or input.shape[-1] // h_n.shape[-1] not in (1, 2):
                raise ValueError(
                    f"{self!r}: expected h_n of shape (layers * D, N, F / D) for an output with F = "
                    f"{input.shape[-1]} features (D = 1 or 2), got {tuple(h_n.shape)}"
                )
            return input, None, h_n, c_n
        if not hasattr(extra, "dtype") or extra.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: expected integer lengths or h_n with the output, got {type(extra).__name__}")
        steps, batch = (input.shape[1], input.shape[0]) if self.batch_first else input.shape[:2]
        lengths = np.asarray(extra.get() if hasattr(extra, "get") else extra)
        if lengths.shape != (batch,) or (lengths.size and (lengths.min() < 1 or lengths.max() > steps)):
            raise ValueError(
                f"{self!r}: expected lengths of shape ({batch},) in [1, {steps}], got shape {lengths.shape} "
                + (f"in [{lengths.min()}, {lengths.max()}]" if lengths.size else "")
            )
        return input, lengths, None, None

    def output_shape(self, input_shape):
        """``(N, F)`` for an output sequence alone; None for a tuple (its lengths' values matter)."""
        if isinstance(input_shape, (tuple, list)) and any(isinstance(s, (tuple, list)) for s in input_shape):
            return None
        shape = as_shape(self, input_shape)
        self._parse(shape_probe(shape))
        return (shape[0] if self.batch_first else shape[1], shape[2])

    def updateOutput(self, input):
        seq, lengths, h_n, c_n = self._parse(input)
        xp = get_array_module(seq)
        if h_n is not None:
            D = seq.shape[-1] // h_n.shape[-1]
            self._read = ("state", D, h_n, c_n)
            self.output = xp.concatenate(list(h_n[-D:]), axis=-1)
            return self.output
        tm = seq.swapaxes(0, 1) if self.batch_first else seq  # (T, N, F)
        T, N, F = tm.shape
        half = F // 2 if self.bidirectional else F
        last = np.full(N, T - 1) if lengths is None else lengths - 1
        rows = np.arange(N)
        out = tm[xp.asarray(last), xp.asarray(rows), :half]
        if self.bidirectional:
            out = xp.concatenate([out, tm[0, :, half:]], axis=-1)
        self._read = ("sequence", last, half, lengths is not None)
        self.output = out
        return out

    def updateGradInput(self, input, gradOutput):
        xp = get_array_module(gradOutput)
        seq = input[0] if isinstance(input, tuple) else input
        if self._read[0] == "state":
            _, D, h_n, c_n = self._read
            g_h = xp.zeros_like(h_n)
            g_h[-D:] = xp.stack(xp.split(gradOutput, D, axis=-1))
            g_seq = xp.zeros_like(seq)
            self.gradInput = (g_seq, g_h if c_n is None else (g_h, xp.zeros_like(c_n)))
            return self.gradInput
        _, last, half, with_lengths = self._read
        g_seq = xp.zeros_like(seq)
        tm = g_seq.swapaxes(0, 1) if self.batch_first else g_seq
        tm[xp.asarray(last), xp.arange(tm.shape[1]), :half] = gradOutput[:, :half]
        if self.bidirectional:
            tm[0, :, half:] += gradOutput[:, half:]
        self.gradInput = (g_seq, None) if with_lengths else g_seq
        return self.gradInput

    def extra_repr(self):
        parts = [] if self.batch_first else ["batch_first=False"]
        if self.bidirectional:
            parts.append("bidirectional=True")
        return ", ".join(parts)


class Mean(Module):
    """``y = x.mean(dim)``: the average over axis ``dim`` (``torch.mean(x, dim,
    keepdim)`` as a module; Torch7's ``nn.Mean``). PyTorch has no module for
    it: its Transformer classifiers call ``x.mean(dim=1)`` in ``forward``; here
    the module keeps such a model a plain ``Sequential``.

    Args:
        dim: the axis (or tuple of axes) to average over; negative counts from
            the end. For a batch-first sequence ``(N, L, E)``, ``dim=1`` pools
            the steps.
        keepdim: keep the averaged axes with size 1 (default False).

    Shape:
        Input ``(*, S, *)`` with ``S`` at ``dim``; output without that axis
        (size 1 with ``keepdim``). dtype in = dtype out.

    Backward: ``gradInput = broadcast(gradOutput / S)`` over the averaged axes.

    Example:
        >>> import numpy as np
        >>> Mean(1).forward(np.arange(6, dtype=np.float32).reshape(1, 3, 2)).tolist()
        [[2.0, 3.0]]
    """

    def __init__(self, dim, keepdim=False):
        super().__init__()
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims):
            raise TypeError(f"Mean: dim must be an int or a non-empty tuple of ints, got {dim!r}")
        self.dim = tuple(int(d) for d in dim) if isinstance(dim, (tuple, list)) else int(dim)
        self.keepdim = bool(keepdim)

    def _axes(self, x):
        dims = self.dim if isinstance(self.dim, tuple) else (self.dim,)
        if any(not -x.ndim <= d < x.ndim for d in dims):
            raise ValueError(f"{self!r}: expected input with axis {self.dim}, got shape {tuple(x.shape)}")
        axes = tuple(sorted({d % x.ndim for d in dims}))
        if len(axes) != len(dims):
            raise ValueError(f"{self!r}: dim names an axis twice for input of {x.ndim} dims")
        return axes

    def output_shape(self, input_shape):
        """The input's shape without the axes ``dim`` (kept as 1 with ``keepdim``)."""
        shape = as_shape(self, input_shape)
        axes = self._axes(shape_probe(shape))
        return tuple(1 if i in axes else s for i, s in enumerate(shape) if self.keepdim or i not in axes)

    def updateOutput(self, input):
        check_float_array(self, input)
        axes = self._axes(input)
        self.output = input.mean(axis=axes, keepdims=self.keepdim)  # float16 sums in float32, returns float16
        return self.output

    def updateGradInput(self, input, gradOutput):
        xp = get_array_module(gradOutput)
        axes = self._axes(input)
        count = int(np.prod([input.shape[a] for a in axes]))
        g = gradOutput if self.keepdim else xp.expand_dims(gradOutput, axes)
        grad = xp.empty(input.shape, gradOutput.dtype)
        xp.multiply(g, gradOutput.dtype.type(1.0 / count) if count else 0, out=grad)
        self.gradInput = grad
        return grad

    def extra_repr(self):
        return f"dim={self.dim}" + (", keepdim=True" if self.keepdim else "")
