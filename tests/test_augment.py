"""Fine-tuning data augmentation: rates, span shape, protected positions, determinism."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from slu_kd_plugin.data.augment import mask_hidden_states, span_mask_units

BOS, PAD, EOS, MASK = 0, 1, 2, 99


def _units(n_units, n_pad=0):
    """<s> u1 .. un </s> <pad>*n_pad, units drawn from 4..98 (never a special index)."""
    units = torch.arange(n_units) % 95 + 4
    return torch.cat([torch.tensor([BOS]), units, torch.tensor([EOS] + [PAD] * n_pad)])


def _runs(flags):
    """Lengths of the runs of True in a 1-D bool sequence."""
    runs, count = [], 0
    for flag in list(flags) + [False]:
        if flag:
            count += 1
        elif count:
            runs.append(count)
            count = 0
    return runs


def test_unit_span_count_width_and_rate():
    rng = np.random.RandomState(0)
    shares = []
    for n in range(20, 400, 7):
        masked = span_mask_units(_units(n), MASK, span=5, rate=0.2, rng=rng).eq(MASK)
        n_spans = math.ceil(n * 0.2 / 5 - 1e-9)
        assert int(masked.sum()) == 5 * n_spans  # spans never overlap
        assert all(r % 5 == 0 for r in _runs(masked.tolist()))  # whole spans only
        shares.append(float(masked.sum()) / n)
    assert abs(np.mean(shares) - 0.2) < 0.03
    assert all(0.2 <= s < 0.2 + 5 / 20 for s in shares)


def test_unit_protected_positions_and_padding():
    tokens = _units(40, n_pad=7)
    for seed in range(200):  # a high rate stresses the edges
        out = span_mask_units(tokens, MASK, span=3, rate=0.9, rng=np.random.RandomState(seed),
                              pad_idx=PAD)
        assert out[0] == BOS and out[41] == EOS
        assert torch.equal(out[42:], tokens[42:])
        kept = out.ne(MASK)
        assert torch.equal(out[kept], tokens[kept])


def test_unit_position_zero_maskable_when_unprotected():
    hits = sum(
        int(span_mask_units(_units(20), MASK, span=2, rate=0.9, rng=np.random.RandomState(s),
                            protect_first=False)[0] == MASK)
        for s in range(50))
    assert hits > 0


def test_unit_determinism_generators_and_noop():
    tokens = _units(120)
    a = span_mask_units(tokens, MASK, rng=np.random.RandomState(3))
    b = span_mask_units(tokens, MASK, rng=np.random.RandomState(3))
    c = span_mask_units(tokens, MASK, rng=np.random.RandomState(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    t1 = span_mask_units(tokens, MASK, rng=torch.Generator().manual_seed(5))
    t2 = span_mask_units(tokens, MASK, rng=torch.Generator().manual_seed(5))
    assert torch.equal(t1, t2) and int(t1.eq(MASK).sum()) == 25
    g = span_mask_units(tokens, MASK, rng=np.random.default_rng(0))
    assert int(g.eq(MASK).sum()) == 25
    assert torch.equal(span_mask_units(tokens, MASK, rate=0.0, rng=np.random.RandomState(0)),
                       tokens)
    assert torch.equal(tokens, _units(120))  # input left alone
    short = _units(3)  # fewer maskable tokens than one span
    assert torch.equal(span_mask_units(short, MASK, rng=np.random.RandomState(0)), short)
    with pytest.raises(ValueError, match="seeded generator"):
        span_mask_units(tokens, MASK)


def _hidden_batch(lengths, dim=64):
    max_len = max(lengths)
    x = torch.rand(len(lengths), max_len, dim) + 1.0  # never 0 before masking
    pad = torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]
    return x, pad


def test_hidden_rates_and_widths():
    gen = torch.Generator().manual_seed(0)
    time_shares, chan_shares = [], []
    for _ in range(60):
        x, pad = _hidden_batch([201, 150, 97])
        y = mask_hidden_states(x, pad, generator=gen)
        for b, n in enumerate([201, 150, 97]):
            zero = y[b, 1:n] == 0  # real frames but <s>
            frames = zero.all(1)  # time-masked frames are zero in every channel
            chans = zero[~frames].all(0)  # channel masks span the other frames
            assert all(r % 10 == 0 for r in _runs(frames.tolist()))
            assert all(r % 5 == 0 for r in _runs(chans.tolist()))
            assert torch.equal(zero, frames[:, None] | chans[None, :])
            time_shares.append(float(frames.float().mean()))
            chan_shares.append(float(chans.float().mean()))
    assert abs(np.mean(time_shares) - 0.5) < 0.03
    assert abs(np.mean(chan_shares) - 0.4) < 0.03


def test_hidden_first_frame_and_padding_untouched():
    x, pad = _hidden_batch([30, 12, 1], dim=20)
    for seed in range(50):
        y = mask_hidden_states(x, pad, time_rate=0.9, chan_rate=0.9,
                               generator=torch.Generator().manual_seed(seed))
        assert torch.equal(y[:, 0], x[:, 0])
        assert torch.equal(y[pad], x[pad])
        changed = y != x
        assert torch.all(y[changed] == 0)


def test_hidden_determinism_and_noop():
    x, pad = _hidden_batch([50, 40])
    original = x.clone()
    a = mask_hidden_states(x, pad, generator=torch.Generator().manual_seed(1))
    b = mask_hidden_states(x, pad, generator=torch.Generator().manual_seed(1))
    c = mask_hidden_states(x, pad, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, original)  # not modified in place
    n = mask_hidden_states(x, pad, generator=np.random.RandomState(1))
    assert torch.equal(n, mask_hidden_states(x, pad, generator=np.random.RandomState(1)))
    assert torch.equal(mask_hidden_states(x, pad, time_rate=0, chan_rate=0,
                                          generator=torch.Generator()), x)
    assert mask_hidden_states(x, None, generator=torch.Generator()).shape == x.shape
    with pytest.raises(ValueError, match="seeded generator"):
        mask_hidden_states(x, pad)


def test_augment_defaults_are_the_papers_and_off_for_the_baseline():
    from slu_kd_plugin.models.slu_ds2 import SLUDS2Config
    from slu_kd_plugin.tasks.slu_finetuning import SLUFinetuningConfig

    task, model = SLUFinetuningConfig(), SLUDS2Config()
    assert not task.augment_units and not model.augment_hidden  # the baseline has no DA
    assert (task.unit_mask_rate, task.unit_mask_span) == (0.2, 5)
    assert (model.hidden_time_mask_rate, model.hidden_time_mask_width) == (0.5, 10)
    assert (model.hidden_chan_mask_rate, model.hidden_chan_mask_width) == (0.4, 5)
    for cfg in (SLUFinetuningConfig, SLUDS2Config):
        for f in dataclasses.fields(cfg):
            assert f.name.startswith("_") or f.metadata.get("help"), f.name


def test_span_mask_dataset_pairs_source_and_target_and_changes_per_epoch():
    from fairseq.data import ListDataset

    from slu_kd_plugin.data.datasets import SpanMaskDataset

    seqs = [torch.tensor([0] + list(range(10, 10 + n)) + [2]) for n in (40, 60, 80)]
    make = lambda tgt: SpanMaskDataset(ListDataset(seqs), 99, 1, 2, 0.5, 10, 20, seed=3, return_target=tgt)
    src, tgt = make(False), make(True)
    for i, seq in enumerate(seqs):
        s, t = src[i], tgt[i]
        masked = s.eq(99)
        assert masked.any() and not masked[0] and not masked[-1]  # <s>, </s> kept
        assert torch.equal(t[masked], seq[masked]) and t[~masked].eq(1).all()
        assert 0.3 < masked.float().mean() < 0.7
    first = src[0].clone()
    assert torch.equal(first, make(False)[0])  # reproducible
    src.set_epoch(2)
    assert not torch.equal(first, src[0])  # fresh masks each epoch
