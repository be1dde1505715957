"""Helpers the plugin's tasks share: dictionaries and the unit stream of a split."""
import logging

import numpy as np
from fairseq.data import NestedDictionaryDataset, SortDataset, data_utils
from fairseq.tasks import FairseqTask
from omegaconf import open_dict

# the data-bin readers, here too because every task reads its splits with them
from ..data.binarized import encoder_input, load_dict, load_intents, load_same_dict, load_split  # noqa: F401
from ..data.speech_states import PaddedStatesDataset, run_speech_bert

logger = logging.getLogger(__name__)


def length_sorted(items, units, seed, epoch):
    """The split's samples (a NestedDictionaryDataset over ``items``) in fairseq's usual
    order: a seeded shuffle, then sorted by unit length so batches waste little padding."""
    dataset = NestedDictionaryDataset(items, sizes=[units.sizes])
    with data_utils.numpy_seed(seed + epoch):
        shuffle = np.random.permutation(len(units))
    return SortDataset(dataset, sort_order=[shuffle, units.sizes])


def frozen_model_device(cfg):
    """Where a task runs a frozen text model: the GPU unless --cpu (or none is there)."""
    import torch

    return "cuda" if torch.cuda.is_available() and not cfg.cpu else "cpu"


def check_aligned(split, **datasets):
    lengths = {name: len(ds) for name, ds in datasets.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"split '{split}': streams are not line-aligned: {lengths}")


class KeepLastBatchMixin:
    """fairseq's batch_by_size drops a last batch whose size is not a multiple of
    --required-batch-size-multiple (8 by default): validation and test would silently
    score fewer utterances than the split has.  Only training batches keep the rule."""

    def get_batch_iterator(self, dataset, **kwargs):
        if dataset is not self.datasets.get(getattr(self.cfg, "train_subset", "train")):
            kwargs["required_batch_size_multiple"] = 1
        return super().get_batch_iterator(dataset, **kwargs)


class AverageBatchNormStatsMixin:
    """BatchNorm statistics (the DS2 block's) of several workers, as one worker would have them.

    Each worker updates its running mean/var from its own batches only, and fairseq's
    legacy_ddp never syncs buffers: workers would validate with different models and the
    checkpoint (rank 0's) would hold statistics of half the data. After every update the
    workers' exponential moving averages are chained in rank order, which is exactly what
    one worker with ``--update-freq`` = number of workers computes over the same batches
    (fairseq gives worker r batch r of each group); with a per-worker --update-freq > 1
    each worker's batches are chained as one block.
    """

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if distributed_world() == 1:
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        if getattr(self, "_bn_before", None) is None:
            self._bn_before, self._bn_steps = batchnorm_state(model), 0
        if not ignore_grad:
            self._bn_steps += 1
            return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        # fairseq's dummy batch (a worker out of batches) must not move the statistics
        kept = batchnorm_state(model)
        out = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        restore_batchnorm_state(model, kept)
        return out

    def optimizer_step(self, optimizer, model, update_num):
        super().optimizer_step(optimizer, model, update_num)
        if distributed_world() > 1 and getattr(self, "_bn_before", None) is not None:
            chain_batchnorm_stats(model, self._bn_before, self._bn_steps)
            self._bn_before = None


def distributed_world():
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def batchnorms(model):
    import torch

    return [m for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def batchnorm_state(model):
    return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
            for m in batchnorms(model)]


def restore_batchnorm_state(model, state):
    for module, (mean, var, count) in zip(batchnorms(model), state):
        module.running_mean.copy_(mean)
        module.running_var.copy_(var)
        module.num_batches_tracked.copy_(count)


def chain_batchnorm_stats(model, before, steps):
    """Worker r's moving-average steps applied after those of workers 0..r-1: with
    a_r = (1 - momentum)^(steps of worker r) and m0 the statistics before the update,
    m = (prod_r a_r) m0 + sum_r (prod_{s>r} a_s) (m_r - a_r m0)."""
    import torch
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    counts = torch.zeros(world, dtype=torch.float64)
    counts[rank] = steps
    dist.all_reduce(counts)
    for module, (mean0, var0, count0) in zip(batchnorms(model), before):
        # momentum None (cumulative average) has no such closed form: a plain mean
        decay = torch.ones(world, dtype=torch.float64) if module.momentum is None else (1.0 - module.momentum) ** counts
        later = torch.cat([decay.flip(0).cumprod(0).flip(0)[1:], decay.new_ones(1)])  # prod_{s>r} a_s
        for buf, start in ((module.running_mean, mean0), (module.running_var, var0)):
            if module.momentum is None:
                dist.all_reduce(buf)
                buf.div_(world)
                continue
            mine = (buf - float(decay[rank]) * start) * float(later[rank])
            dist.all_reduce(mine)
            buf.copy_(start * float(decay.prod()) + mine)
        grown = module.num_batches_tracked - count0
        dist.all_reduce(grown)
        module.num_batches_tracked.copy_(count0 + grown)


def build_recording_speech_bert(task, cfg, from_checkpoint):
    """Build the model, then copy the speech BERT config it resolved back into ``cfg``.

    fairseq builds dataclass models from a merged copy of ``cfg``, so what the model
    records on first build would be lost; the trainer saves this ``cfg``, and with the
    config in it a checkpoint rebuilds without the original speech BERT file.
    """
    model = FairseqTask.build_model(task, cfg, from_checkpoint)
    with open_dict(cfg):
        cfg.speech_bert_args = model.cfg.speech_bert_args
    return model


class UnitTask(KeepLastBatchMixin, FairseqTask):
    """A task over DATA/units (every task here but the text classifier): the unit
    dictionary is its source, and units are cut at ``--max-positions``."""

    def load_units(self, split, data=None):
        """``split`` of DATA/units, or of another data-bin ``data`` with the same unit dictionary."""
        if data is not None:
            load_same_dict(data, "units", self.unit_dict)
        units = load_split(data or self.cfg.data, "units", split, self.unit_dict)
        return encoder_input(units, self.unit_dict, self.cfg.max_positions)

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.unit_dict


class SpeechBertTask(AverageBatchNormStatsMixin, UnitTask):
    """A task whose model sits on a speech BERT and a DS2 block (AM-PT, SLU)."""

    def build_model(self, cfg, from_checkpoint=False):
        # kept so load_dataset can cache the frozen speech BERT's states
        self.model = build_recording_speech_bert(self, cfg, from_checkpoint)
        return self.model


def cached_states_input(task, split, units, masked):
    """``{"speech_states": ...}`` for net_input when --cache-speech-states applies to this
    split (a frozen speech BERT that sees the units unmasked), else ``{}``."""
    if not task.cfg.cache_speech_states:
        return {}
    model = getattr(task, "model", None)
    if model is None or not model.speech_bert_frozen or masked:
        logger.info(f"{split}: speech BERT states not cached (no model yet, BERT trainable, or units masked)")
        return {}
    states = run_speech_bert(model, units, task.unit_dict.pad(), desc=f"speech BERT states ({split})")
    return {"speech_states": PaddedStatesDataset(states)}


CACHE_HELP = ("run the frozen speech BERT once per utterance when a split is loaded and reuse its "
              "states every epoch (skipped where units are masked or the BERT is trained); memory: "
              "utterances x units x dim x 4 bytes (2 with --fp16)")
