"""DS2Block: shapes, length arithmetic, padding invariance, gradients, presets."""
import dataclasses
import math

import pytest
import torch

from slu_kd_plugin.models.ds2_block import DS2_PRESETS, DS2Block, DS2Config

DIM = 16


def _block(dim=DIM, **kw):
    torch.manual_seed(0)
    return DS2Block.build(dim, **{**DS2_PRESETS["tiny"], **kw})


def _right_pad_mask(lengths, max_len):
    return torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("lengths", [[1], [2, 1], [7, 3, 6], [25, 10, 24, 1], [40, 39]])
def test_shapes_and_lengths(lengths):
    block = _block()
    if lengths == [1]:  # one frame in all: training-mode BatchNorm has no variance
        block.eval()
    max_len = max(lengths)
    x = torch.randn(len(lengths), max_len, DIM)
    out, out_pad = block(x, _right_pad_mask(lengths, max_len))
    expected = [math.ceil(n / 2) for n in lengths]
    assert out.shape == (len(lengths), math.ceil(max_len / 2), 16)
    assert (~out_pad).sum(1).tolist() == expected
    assert block.output_lengths(torch.tensor(lengths)).tolist() == expected
    assert torch.all(out[out_pad] == 0)  # padded output steps are zero


def test_no_padding_mask_means_all_real():
    out, out_pad = _block()(torch.randn(2, 9, DIM))
    assert out.shape == (2, 5, 16) and not out_pad.any()


def test_padding_invariance_eval():
    """A sequence's output is the same alone and batched with a longer one."""
    block = _block().eval()
    short = torch.randn(1, 13, DIM)
    alone, _ = block(short)
    batch = torch.randn(2, 30, DIM) * 100  # garbage in the padded frames
    batch[0, :13] = short[0]
    out, out_pad = block(batch, _right_pad_mask([13, 30], 30))
    assert (~out_pad[0]).sum() == alone.size(1) == 7
    torch.testing.assert_close(out[0, :7], alone[0], atol=1e-5, rtol=1e-5)


def test_extra_padding_does_not_change_training_batch_stats():
    """In training mode BatchNorm statistics only see real frames."""
    block = _block()
    x = torch.randn(2, 20, DIM)
    out_a, _ = block(x, _right_pad_mask([11, 20], 20))
    padded = torch.cat([x, torch.randn(2, 16, DIM) * 50], dim=1)
    out_b, _ = block(padded, _right_pad_mask([11, 20], 36))
    torch.testing.assert_close(out_b[:, :10], out_a, atol=1e-5, rtol=1e-5)


def test_gradients_flow_to_every_parameter_and_not_from_padding():
    block = _block()
    x = torch.randn(3, 17, DIM, requires_grad=True)
    pad = _right_pad_mask([17, 9, 4], 17)
    out, out_pad = block(x, pad)
    out.masked_fill(out_pad[..., None], 0).pow(2).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert torch.all(x.grad[pad] == 0) and x.grad[~pad].abs().sum() > 0


def test_kernel_frequency_extent_clamped_for_small_dims():
    block = _block(dim=8)
    assert [c.kernel_size for c in block.convs] == [(7, 11), (3, 11)]
    assert [c.padding for c in block.convs] == [(3, 5), (1, 5)]
    assert block.output_freq == 2 and block.lstms[0].input_size == 4 * 2
    out, _ = _block(dim=1)(torch.randn(2, 5, 1))
    assert out.shape == (2, 3, 16)


def test_paper_preset_is_the_paper_block():
    with torch.device("meta"):  # no memory for ~80M parameters
        block = DS2Block.build(768, **DS2_PRESETS["paper"])
    assert [c.kernel_size for c in block.convs] == [(41, 11), (21, 11)]
    assert [c.stride for c in block.convs] == [(2, 2), (2, 1)]
    assert [c.padding for c in block.convs] == [(20, 5), (10, 5)]
    assert block.lstms[0].input_size == 32 * 192 and len(block.lstms) == 5
    assert all(lstm.hidden_size == 768 for lstm in block.lstms)
    assert isinstance(block.lstm_bns[0], torch.nn.Identity)
    assert all(isinstance(bn, torch.nn.BatchNorm1d) for bn in block.lstm_bns[1:])


@pytest.mark.parametrize("name", ["small", "tiny"])
def test_presets_build_and_run(name):
    block = DS2Block.build(128, **DS2_PRESETS[name])
    out, _ = block(torch.randn(2, 6, 128))
    assert out.shape == (2, 3, DS2_PRESETS[name]["ds2_lstm_hidden"])


def test_build_from_config_and_overrides():
    cfg = DS2Config(ds2_conv_channels=3, ds2_lstm_layers=1, ds2_lstm_hidden=8)
    block = DS2Block.build(DIM, cfg, ds2_lstm_hidden=6)
    assert block.convs[0].out_channels == 3 and block.lstms[0].hidden_size == 6
    block = DS2Block.build(DIM, {"ds2_lstm_layers": 1, "ds2_lstm_hidden": 4})
    assert len(block.lstms) == 1
    with pytest.raises(TypeError, match="unknown DS2 options"):
        DS2Block.build(DIM, ds2_channels=3)


def test_config_fields_have_help():
    names = {f.name for f in dataclasses.fields(DS2Config) if not f.name.startswith("_")}
    for f in dataclasses.fields(DS2Config):
        assert f.name not in names or f.metadata.get("help"), f.name
    assert all(set(preset) == names for preset in DS2_PRESETS.values())


def test_rejects_left_padding_and_empty_sequences():
    block = _block()
    with pytest.raises(ValueError, match="right padding"):
        block(torch.randn(2, 5, DIM), _right_pad_mask([5, 3], 5).flip(1))
    with pytest.raises(ValueError, match="at least one real frame"):
        block(torch.randn(2, 5, DIM), _right_pad_mask([5, 0], 5))


def test_summed_bilstm_matches_packed_bidirectional_lstm():
    """Same weights, same outputs as nn.LSTM(bidirectional) over packed sequences."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from slu_kd_plugin.models.ds2_block import SummedBiLSTM, _reverse_index

    torch.manual_seed(0)
    ours, ref = SummedBiLSTM(6, 5), torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    for name, param in ours.forward_lstm.named_parameters():
        param.data.copy_(getattr(ref, name))
        getattr(ours.backward_lstm, name).data.copy_(getattr(ref, name + "_reverse"))
    lengths = torch.tensor([9, 4, 1, 7])
    x = torch.randn(4, 9, 6) * 10  # padding holds garbage
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(ref(packed)[0], batch_first=True)
    expected = expected[..., :5] + expected[..., 5:]
    got = ours(x, _reverse_index(lengths, 9))
    real = _right_pad_mask(lengths.tolist(), 9).logical_not()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
