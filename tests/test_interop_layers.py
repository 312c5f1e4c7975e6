"""PyTorch <-> nnumpy weights for the layers whose arrays carry PyTorch's
names (the by-name rule): a Transformer, an Embedding + LSTM stack, norms and
PReLU in a Sequential, ResNet blocks (Graph and Residual forms), each loaded
from a torch module of the same structure and written back, outputs compared."""

import numpy as np
import pytest
import torch
from helpers import assert_close

import nnumpy as nn
from nnumpy.blocks import basic_block, basic_block_graph
from nnumpy.interop import load_torch_state_dict, register_torch_names, to_torch_state_dict

tnn = torch.nn
# torch warns about its own fast paths (nested tensors, oneDNN): not our concern here
pytestmark = [
    pytest.mark.filterwarnings("ignore:enable_nested_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning"),
]


def randomize(torch_model, seed=0):
    """Random values in every parameter and buffer (not the init's zeros and ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(torch_model.named_parameters()) + list(torch_model.named_buffers()):
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "var" in name else torch.randn(t.shape, generator=g))
    return torch_model.eval()


def both_ways(ours, theirs, inputs, run_theirs, like=False):
    """Load ``theirs`` into ``ours`` and compare; write ``ours`` back into a
    fresh copy of ``theirs`` (strict) and compare again."""
    load_torch_state_dict(ours, theirs.state_dict())
    ours.evaluate()
    with torch.no_grad():
        expected = run_theirs(theirs, *[torch.from_numpy(np.asarray(a)) for a in inputs])
    got = ours.forward(inputs[0] if len(inputs) == 1 else tuple(inputs))
    assert_close(got, expected, np.float32, what=f"{type(ours).__name__} loaded from torch")
    state = to_torch_state_dict(ours, as_tensors=True, like=theirs if like else None)
    assert list(state) == [k for k in theirs.state_dict()], "keys (and their order) are PyTorch's"
    fresh = randomize(theirs, seed=99)  # scrambled in place, then overwritten by ours
    fresh.load_state_dict(state, strict=True)
    with torch.no_grad():
        again = run_theirs(fresh, *[torch.from_numpy(np.asarray(a)) for a in inputs])
    assert_close(got, again, np.float32, what=f"{type(ours).__name__} written back to torch")


def x_of(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_transformer_both_ways():
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16, dropout=0.0)
    theirs = randomize(tnn.Transformer(**kw))
    ours = nn.Transformer(**kw)
    both_ways(ours, theirs, [x_of(5, 3, 8), x_of(4, 3, 8, seed=1)], lambda m, s, t: m(s, t))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_and_mha_both_ways(norm_first):
    kw = dict(d_model=8, nhead=4, dim_feedforward=12, dropout=0.0, batch_first=True, norm_first=norm_first,
              activation="gelu")
    theirs = randomize(tnn.TransformerEncoderLayer(**kw))
    both_ways(nn.TransformerEncoderLayer(**kw), theirs, [x_of(3, 5, 8)], lambda m, x: m(x))
    mha = randomize(tnn.MultiheadAttention(6, 2, kdim=4, vdim=3))
    both_ways(nn.MultiheadAttention(6, 2, kdim=4, vdim=3), mha, [x_of(5, 2, 6), x_of(4, 2, 4), x_of(4, 2, 3)],
              lambda m, q, k, v: m(q, k, v, need_weights=False)[0])


class TorchLSTMClassifier(tnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tnn.Embedding(20, 6)
        self.lstm = tnn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = tnn.Linear(10, 3)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.fc(torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=1))


def test_embedding_lstm_stack_both_ways():
    theirs = randomize(TorchLSTMClassifier())
    ours = nn.Sequential(nn.Embedding(20, 6), nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True),
                         nn.LastStep(bidirectional=True), nn.Linear(10, 3))
    ids = np.random.default_rng(0).integers(0, 20, size=(4, 7))
    both_ways(ours, theirs, [ids], lambda m, x: m(x), like=True)
    assert list(to_torch_state_dict(ours))[:2] == ["0.weight", "1.weight_ih_l0"]  # without like: nnumpy's positions


def test_gru_rnn_and_norms_in_a_sequential():
    theirs = randomize(tnn.Sequential(
        tnn.Conv2d(2, 4, 3), tnn.GroupNorm(2, 4), tnn.PReLU(4),
        tnn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        tnn.Flatten(), tnn.Linear(64, 6), tnn.LayerNorm(6), tnn.PReLU()))
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=0), nn.GroupNorm(2, 4), nn.PReLU(4),
        nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        nn.Flatten(), nn.Linear(64, 6), nn.LayerNorm(6), nn.PReLU())
    both_ways(ours, theirs, [x_of(3, 2, 6, 6)], lambda m, x: m(x))
    gru = randomize(tnn.GRU(3, 4, num_layers=2))
    both_ways(nn.GRU(3, 4, num_layers=2), gru, [x_of(5, 2, 3)], lambda m, x: m(x)[0])
    rnn = randomize(tnn.RNN(3, 4, nonlinearity="relu", bidirectional=True))
    both_ways(nn.RNN(3, 4, nonlinearity="relu", bidirectional=True), rnn, [x_of(5, 2, 3)], lambda m, x: m(x)[0])


class TorchBasicBlock(tnn.Module):
    """torchvision's BasicBlock, written out (torchvision is not a test dependency)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + self.downsample(x))


def test_resnet_blocks_both_ways():
    theirs = randomize(TorchBasicBlock(3, 4, 2))
    both_ways(basic_block_graph(3, 4, stride=2, rng=0), theirs, [x_of(2, 3, 6, 6)], lambda m, x: m(x))
    both_ways(basic_block(3, 4, stride=2, rng=0), theirs, [x_of(2, 3, 6, 6)], lambda m, x: m(x), like=True)


def test_by_name_mismatch_is_refused_before_copying():
    ours = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6))
    before = ours[1].weight.copy()
    theirs = tnn.Sequential(tnn.Linear(4, 6), tnn.LayerNorm(6, bias=False))
    with pytest.raises(ValueError, match=r"torch module '1' has \['weight'\] but nnumpy model\[1\] \(LayerNorm"):
        load_torch_state_dict(ours, theirs.state_dict())
    wrong = tnn.Sequential(tnn.Linear(4, 6), tnn.LayerNorm(5))
    with pytest.raises(ValueError, match=r"torch 1\.weight has shape \(5,\) but nnumpy model\[1\]"):
        load_torch_state_dict(ours, wrong.state_dict())
    np.testing.assert_array_equal(ours[1].weight, before)


def test_proj_size_lstm_maps_by_name():
    theirs = randomize(tnn.LSTM(3, 5, proj_size=2))
    both_ways(nn.LSTM(3, 5, proj_size=2), theirs, [x_of(4, 2, 3)], lambda m, x: m(x)[0])


def test_register_torch_names_for_a_module_of_yours():
    class Scale(nn.Module):
        """y = x * log_scale.exp(), named as a torch module of yours names it."""

        _parameters = (("log_scale", "grad_log_scale"),)

        def __init__(self):
            super().__init__()
            self.log_scale = np.zeros(3, np.float32)
            self.grad_log_scale = np.zeros(3, np.float32)

    with pytest.raises(ValueError, match="no PyTorch counterpart.*register_torch_names"):
        to_torch_state_dict(nn.Sequential(Scale()))
    register_torch_names(Scale)
    assert list(to_torch_state_dict(nn.Sequential(Scale()))) == ["0.log_scale"]
    model = load_torch_state_dict(nn.Sequential(Scale()), {"0.log_scale": np.full(3, 2.0)})
    np.testing.assert_array_equal(model[0].log_scale, np.full(3, 2.0, np.float32))


def test_pytorch_usual_names_need_no_registration():
    """A layer whose arrays are all weight / bias (a ConvTranspose, a layer of
    yours) moves by name without being listed."""

    class Gain(nn.Module):
        _parameters = (("weight", "gradWeight"), ("bias", "gradBias"))

        def __init__(self):
            super().__init__()
            self.weight, self.bias = np.ones(4, np.float32), np.zeros(4, np.float32)
            self.gradWeight, self.gradBias = np.zeros(4, np.float32), np.zeros(4, np.float32)

    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.LayerNorm(4))
    ours = load_torch_state_dict(nn.Sequential(nn.Linear(3, 4), Gain()), randomize(theirs).state_dict())
    np.testing.assert_array_equal(ours[1].bias, theirs[1].bias.detach().numpy())
    assert list(to_torch_state_dict(ours)) == list(theirs.state_dict())


class TorchCharLSTM(tnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tnn.Embedding(20, 8)
        self.lstm = tnn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.out = tnn.Linear(16, 20)

    def forward(self, ids):
        return self.out(self.lstm(self.emb(ids))[0])


def test_character_lstm_with_step_linear():
    from nnumpy.models import char_lstm

    ids = np.random.default_rng(0).integers(0, 20, size=(3, 9))
    both_ways(char_lstm(20, 8, 16, num_layers=2, rng=0), randomize(TorchCharLSTM()), [ids], lambda m, x: m(x),
              like=True)


def test_conv_transpose_decoder_both_ways():
    """ConvTranspose moves by the usual-names rule (weight, bias), unlisted."""
    theirs = randomize(tnn.Sequential(tnn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                                      tnn.BatchNorm2d(3), tnn.ReLU(), tnn.ConvTranspose2d(3, 1, 2, bias=False)))
    ours = nn.Sequential(nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(3),
                         nn.ReLU(), nn.ConvTranspose2d(3, 1, 2, bias=False))
    both_ways(ours, theirs, [x_of(2, 4, 5, 5)], lambda m, x: m(x))
