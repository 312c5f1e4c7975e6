"""What the ONNX tests share: export, check, run in onnxruntime, compare with
nnumpy's evaluate-mode forward under the suite's tolerance."""

import numpy as np
from helpers import assert_close


def leaves(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


def run_onnx(proto, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    arrays = [a for a in leaves(inputs) if a is not None]
    feeds = {i.name: a for i, a in zip(session.get_inputs(), arrays, strict=True)}
    return session.run(None, feeds)


def check_onnx(model, make_input, batches=(1, 3), opsets=(18,), **export_args):
    """Export ``model`` traced on ``make_input(1)`` at each opset, run the ONNX
    checker and onnxruntime on ``make_input(b)`` for each batch size, compare every
    output with ``model.forward``. Returns the last ModelProto."""
    import onnx

    import nnumpy as nn

    model.evaluate()
    expected = {b: [np.array(y, copy=True) for y in leaves(model.forward(make_input(b)))] for b in batches}
    proto = None
    for opset in opsets:
        proto = nn.onnx.export(model, make_input(1), opset=opset, **export_args)
        onnx.checker.check_model(proto, full_check=True)
        for b in batches:
            got = run_onnx(proto, make_input(b))
            assert len(got) == len(expected[b]), f"{len(got)} outputs, expected {len(expected[b])}"
            for i, (ours, ref) in enumerate(zip(got, expected[b], strict=True)):
                assert_close(ours, ref, np.float32, what=f"{model!r} opset {opset} batch {b} output {i}")
    return proto
