"""Dataset wrappers, composed the fairseq way around indexed token datasets."""
import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, FairseqDataset, data_utils


class TensorListDataset(FairseqDataset):
    """A list of equally shaped float tensors (e.g. precomputed teacher logits).

    Collates to a (B, *shape) float tensor.
    """

    def __init__(self, tensors):
        self.tensors = tensors

    def __getitem__(self, index):
        return self.tensors[index]

    def __len__(self):
        return len(self.tensors)

    def collater(self, samples):
        return torch.stack(samples) if samples else torch.empty(0)


class SpanMaskDataset(BaseWrapperDataset):
    """Replace random spans of tokens with ``<mask>``; reproducible per (seed, epoch, index).

    With ``return_target=True`` it yields the MLM target instead: the original token where
    the source was masked, ``pad`` elsewhere.  Two instances with the same seed therefore
    give matching source/target pairs (the same trick as fairseq's MaskTokensDataset).
    Position 0 (``<s>``) and a final ``</s>`` are never masked.
    """

    def __init__(self, dataset, mask_idx, pad_idx, eos_idx, rate, span_min, span_max,
                 seed=1, return_target=False):
        super().__init__(dataset)
        self.mask_idx, self.pad_idx, self.eos_idx = mask_idx, pad_idx, eos_idx
        self.rate, self.span_min, self.span_max = rate, span_min, span_max
        self.seed, self.return_target, self.epoch = seed, return_target, 1

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # masks change every epoch

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index):
        tokens = self.dataset[index]
        with data_utils.numpy_seed(self.seed, self.epoch, index):
            masked = span_mask_positions(
                len(tokens), self.rate, self.span_min, self.span_max,
                last_protected=bool(tokens[-1] == self.eos_idx),
            )
        if self.return_target:
            target = torch.full_like(tokens, self.pad_idx)
            target[masked] = tokens[masked]
            return target
        out = tokens.clone()
        out[masked] = self.mask_idx
        return out


def span_mask_positions(length, rate, span_min, span_max, last_protected=True):
    """Boolean mask of ``length`` with ~``rate`` of the maskable positions in spans.

    ceil(n * rate / mean_span) span starts are drawn (numpy's global RNG, seeded by the
    caller) among positions 1..n-1 (0 is ``<s>``); overlapping spans merge, as in the
    paper's recipe, so the realised rate is at most ``rate``.
    """
    mask = np.zeros(length, dtype=bool)
    first, last = 1, length - (1 if last_protected else 0)
    n = last - first
    if n <= 0 or rate <= 0:
        return torch.from_numpy(mask)
    mean_span = (span_min + span_max) / 2
    n_spans = int(np.ceil(n * rate / mean_span))
    starts = np.random.randint(first, last, size=n_spans)
    widths = np.random.randint(span_min, span_max + 1, size=n_spans)
    for s, w in zip(starts, widths):
        mask[s:min(s + w, last)] = True
    return torch.from_numpy(mask)
