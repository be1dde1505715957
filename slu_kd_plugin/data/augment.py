"""Fine-tuning data augmentation (PAPER.md, "Data augmentation").

(a) ``span_mask_units``: spans of unit tokens replaced by ``<mask>`` (per example,
    in the dataset);
(b) ``mask_hidden_states``: time and channel masks zeroing speech-BERT output states
    before the DS2 block (per batch, in the model; the caller applies it only while
    training).
Their switches and rates are fields of the ``slu_finetuning`` task (units) and the
``slu_ds2`` model (hidden states), where each is applied; ``AugmentSchedule`` (the
task's ``--augment-start-epoch`` / ``--augment-ramp-epochs``) scales both rates by epoch.

Both take an explicit seeded random source — a ``torch.Generator`` or a numpy
``RandomState`` / ``Generator`` — so an epoch's augmentation is reproducible; there
is no fallback to global random state. Masks are placed without overlap, so the
masked share is what the rate asks for rather than less.
"""
import math
from dataclasses import dataclass
from typing import Any, List, Optional

import torch


@dataclass(frozen=True)
class AugmentSchedule:
    """The share of DA's masking rates an epoch gets, for unit and hidden masking alike.

    None before ``start_epoch``; then a linear ramp that reaches the full rates after
    ``ramp_epochs`` epochs (start_epoch gets 1/ramp_epochs of them, start_epoch +
    ramp_epochs - 1 all of them); ``ramp_epochs`` 0: the full rates at once. Why: the
    paper's rates keep a small model that has not learned the task yet at chance; once
    it has, masking regularises it. The default (1, 0) is no schedule.
    """

    start_epoch: int = 1
    ramp_epochs: int = 0

    def __post_init__(self):
        if self.start_epoch < 1 or self.ramp_epochs < 0:
            raise ValueError(f"augment schedule: start epoch {self.start_epoch} must be >= 1 (epochs count "
                             f"from 1) and ramp epochs {self.ramp_epochs} >= 0")

    def scale(self, epoch: int) -> float:
        if epoch < self.start_epoch:
            return 0.0
        if self.ramp_epochs == 0:
            return 1.0
        return min(1.0, (epoch - self.start_epoch + 1) / self.ramp_epochs)


def _sorted_distinct(rng: Any, n: int, k: int) -> List[int]:
    """k distinct ints from range(n), sorted, drawn from a torch or numpy source."""
    if isinstance(rng, torch.Generator):
        picks = torch.randperm(n, generator=rng, device=rng.device)[:k].tolist()
    elif hasattr(rng, "choice"):  # np.random.RandomState or np.random.Generator
        picks = rng.choice(n, size=k, replace=False).tolist()
    else:
        raise TypeError(
            "augmentation needs a seeded torch.Generator or numpy RandomState/Generator, "
            f"got {type(rng).__name__}")
    return sorted(picks)


def _uniform(rng: Any) -> float:
    if isinstance(rng, torch.Generator):
        return float(torch.rand((), generator=rng, device=rng.device))
    if hasattr(rng, "random_sample"):  # RandomState
        return float(rng.random_sample())
    return float(rng.random())  # np.random.Generator


def _span_starts(rng: Any, region: int, n_spans: int, width: int) -> List[int]:
    """Starts of up to n_spans non-overlapping spans of `width` inside range(region).

    Why non-overlapping: overlaps would mask less than the rate asks. Uniform over
    placements: shrink each span to one slot, pick distinct slots, re-expand.
    Spans must fit whole, so a region shorter than one span gets none.
    """
    n_spans = min(n_spans, region // width)
    if n_spans <= 0:
        return []
    slots = _sorted_distinct(rng, region - n_spans * (width - 1), n_spans)
    return [slot + i * (width - 1) for i, slot in enumerate(slots)]


def _check_rng(rng: Any) -> None:
    if rng is None:
        raise ValueError("augmentation needs a seeded generator: it must be reproducible")


def span_mask_units(
    tokens: torch.Tensor,
    mask_idx: int,
    span: int = 5,
    rate: float = 0.2,
    rng: Any = None,
    protect_first: bool = True,
    pad_idx: Optional[int] = None,
    eos_idx: Optional[int] = 2,
) -> torch.Tensor:
    """Copy of 1-D `tokens` with ceil(M·rate/span) spans of `span` tokens -> mask_idx.

    M counts the maskable tokens: not padding (`pad_idx`), not the first real token
    when `protect_first` (the `<s>` whose state the classifier reads), and not a
    final `</s>` — the last real token when it equals `eos_idx` (2 is `</s>` in every
    fairseq Dictionary; pass None to disable). Spans don't overlap, so ≈rate of the
    maskable tokens are masked (ceil rounds up by < one span); an utterance with
    fewer than `span` maskable tokens is left as is.
    """
    _check_rng(rng)
    out = tokens.clone()
    if rate <= 0 or span <= 0:
        return out
    real = torch.ones_like(tokens, dtype=torch.bool) if pad_idx is None else tokens.ne(pad_idx)
    positions = real.nonzero().squeeze(1)
    if protect_first:
        positions = positions[1:]
    if eos_idx is not None and len(positions) and int(tokens[positions[-1]]) == eos_idx:
        positions = positions[:-1]
    # the epsilon keeps float error (e.g. 100 * 0.2 / 5) from adding a whole span
    n_spans = math.ceil(len(positions) * rate / span - 1e-9)
    for start in _span_starts(rng, len(positions), n_spans, span):
        out[positions[start:start + span]] = mask_idx
    return out


def _span_mask_1d(rng: Any, size: int, width: int, rate: float) -> torch.Tensor:
    """(size,) bool with non-overlapping spans of `width` covering ≈rate of it.

    The span count is rounded stochastically (as fairseq's compute_mask_indices
    does) so the expected coverage equals the rate instead of overshooting it.
    """
    mask = torch.zeros(size, dtype=torch.bool)
    if rate <= 0 or width <= 0 or size <= 0:
        return mask
    n_spans = int(size * rate / width + _uniform(rng))
    for start in _span_starts(rng, size, n_spans, width):
        mask[start:start + width] = True
    return mask


def mask_hidden_states(
    x: torch.Tensor,
    padding_mask: Optional[torch.Tensor] = None,
    time_width: int = 10,
    time_rate: float = 0.5,
    chan_width: int = 5,
    chan_rate: float = 0.4,
    generator: Any = None,
) -> torch.Tensor:
    """x (B,T,D) with time and channel masks set to 0; x itself is not modified.

    Per sequence: time masks of `time_width` frames cover ≈time_rate of its real
    frames, and channel masks of `chan_width` dims cover ≈chan_rate of D, zeroed on
    its real frames. Padding is untouched, and so is the first real frame (the
    `<s>` state). The caller decides when to apply it (training only).
    """
    _check_rng(generator)
    batch, steps, dims = x.shape
    real = (torch.ones(batch, steps, dtype=torch.bool) if padding_mask is None
            else ~padding_mask.detach().to("cpu", torch.bool))
    region = torch.zeros(batch, steps, dtype=torch.bool)  # maskable frames
    time_mask = torch.zeros(batch, steps, dtype=torch.bool)
    chan_mask = torch.zeros(batch, dims, dtype=torch.bool)
    for b in range(batch):
        frames = real[b].nonzero().squeeze(1)[1:]  # all real frames but the <s> one
        region[b, frames] = True
        time_mask[b, frames] = _span_mask_1d(generator, len(frames), time_width, time_rate)
        chan_mask[b] = _span_mask_1d(generator, dims, chan_width, chan_rate)
    mask = time_mask[:, :, None] | (region[:, :, None] & chan_mask[:, None, :])
    return x.masked_fill(mask.to(x.device), 0.0)
