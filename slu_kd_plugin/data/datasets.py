"""Dataset wrappers, composed the fairseq way around indexed token datasets."""
import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, FairseqDataset

from .augment import span_mask_units


class TensorListDataset(FairseqDataset):
    """A list of equally shaped float tensors (e.g. precomputed teacher logits).

    Collates to a (B, *shape) float tensor (subclasses collate other shapes).
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
    """Replace spans of units with ``<mask>``, reproducibly per (seed, epoch, index).

    Each utterance draws its span width uniformly from [span_min, span_max] (PT-KD:
    10-20; fine-tuning DA: 5-5), then ``span_mask_units`` places ceil(n*rate/width)
    non-overlapping spans, never over ``<s>`` or the final ``</s>``.
    With ``return_target=True`` it yields the MLM target instead: the original unit
    where the source was masked, ``pad`` elsewhere; two instances with the same seed
    give matching source/target pairs (the trick of fairseq's MaskTokensDataset).
    ``schedule`` (a ``data.augment.AugmentSchedule``) scales the rate by epoch.
    """

    def __init__(self, dataset, mask_idx, pad_idx, eos_idx, rate, span_min, span_max,
                 seed=1, return_target=False, schedule=None):
        super().__init__(dataset)
        self.mask_idx, self.pad_idx, self.eos_idx = mask_idx, pad_idx, eos_idx
        self.rate, self.span_min, self.span_max = rate, span_min, span_max
        self.seed, self.return_target, self.epoch = seed, return_target, 1
        self.schedule = schedule

    @property
    def epoch_rate(self):
        """The masking rate of the current epoch (fairseq sets it with set_epoch)."""
        return self.rate * (self.schedule.scale(self.epoch) if self.schedule else 1.0)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # masks change every epoch

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index):
        tokens = self.dataset[index]
        rng = np.random.RandomState((self.seed, self.epoch, index))
        width = int(rng.randint(self.span_min, self.span_max + 1))
        masked = span_mask_units(tokens, self.mask_idx, span=width, rate=self.epoch_rate, rng=rng,
                                 pad_idx=self.pad_idx, eos_idx=self.eos_idx)
        if not self.return_target:
            return masked
        target = torch.full_like(tokens, self.pad_idx)
        where = masked.ne(tokens)
        target[where] = tokens[where]
        return target
