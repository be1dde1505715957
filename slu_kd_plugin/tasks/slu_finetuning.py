"""SLU fine-tuning (baseline and FT-KD): units -> intent, optionally with the text
teacher's logits on each transcript as KD targets and with unit span masking (DA).

The teacher (fairseq's sentence_prediction RoBERTa or a Hugging Face encoder) is a
``models.teacher.TextTeacher``: the task asks it for a split's tokens and a batch's
logits and never needs to know which kind it is."""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics
from fairseq.data import ConcatDataset, IdDataset, NumelDataset, NumSamplesDataset, RightPadDataset
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING

from ..data.augment import AugmentSchedule
from ..data.datasets import SpanMaskDataset, TensorListDataset
from ..data.labels import UNLABELED, label_symbols, load_label_dict
from ..models.teacher import load_teacher
from .common import (
    CACHE_HELP,
    SpeechBertTask,
    cached_states_input,
    check_aligned,
    frozen_model_device,
    length_sorted,
    load_dict,
    load_intents,
)

logger = logging.getLogger(__name__)

# the task fields only training reads: a trained model loads (hub, slu-kd-evaluate) and
# ships (slu-kd-package) with them cleared, needing neither its teacher nor its pairs
TRAINING_ONLY = {"teacher_path": None, "teacher_label_dict": None, "kd_unlabeled_data": None}


@dataclass
class SLUFinetuningConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data-bin with units/ and label/ (and input0/ for KD)"})
    teacher_path: Optional[str] = field(
        default=None,
        metadata={"help": "text teacher: a fairseq sentence_prediction checkpoint over DATA/input0, or an "
                  "hf_text_classification (Hugging Face encoder) checkpoint over the transcripts; its "
                  "logits on each transcript are the FT-KD targets"},
    )
    teacher_label_dict: Optional[str] = field(
        default=None,
        metadata={"help": "label dict.txt the teacher was trained with (default: label_dict.txt beside "
                  "the teacher checkpoint, else the labels the checkpoint records (Hugging Face "
                  "teachers), else label/dict.txt under the teacher's data dir)"},
    )
    teacher_text_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Hugging Face teachers: dir with the transcripts {split}.txt as written "
                  "(default: DATA/text, written by slu-kd-binarize; a manifest dir works too)"},
    )
    teacher_logits: ChoiceEnum(["precompute", "on-the-fly"]) = field(
        default="precompute",
        metadata={"help": "precompute: run the frozen teacher once per training transcript when the split "
                  "is loaded (the same targets, far cheaper); on-the-fly: run it on every batch"},
    )
    kd_unlabeled_data: Optional[str] = field(
        default=None,
        metadata={"help": "FT-KD on unlabeled speech-text pairs (e.g. PT-KD's corpus): a data-bin with units/ "
                  "over the same unit dictionary and the teacher's input (text/ for Hugging Face teachers, "
                  "input0/ for fairseq ones). Its --kd-unlabeled-subset joins the training split with the "
                  "teacher's logits as its only target (no intent, no cross-entropy): the student hears the "
                  "teacher on words the labeled split never says"},
    )
    kd_unlabeled_subset: str = field(default="train", metadata={"help": "the split of --kd-unlabeled-data"})
    max_positions: int = field(default=1024, metadata={"help": "units beyond this are truncated"})
    cache_speech_states: bool = field(default=False, metadata={"help": CACHE_HELP})
    augment_units: bool = field(default=False, metadata={"help": "DA: span-mask units in training"})
    unit_mask_rate: float = field(default=0.2, metadata={"help": "fraction of units span-masked"})
    unit_mask_span: int = field(default=5, metadata={"help": "units per masked span"})
    augment_start_epoch: int = field(
        default=1, metadata={"help": "DA schedule: first epoch with unit and hidden masking (--augment-units, "
                             "--augment-hidden); 1: from the start. Before it the model learns the task "
                             "unmasked (the paper's rates kept small models at chance)"})
    augment_ramp_epochs: int = field(
        default=0, metadata={"help": "DA schedule: from --augment-start-epoch on, grow the unit and hidden "
                             "masking rates linearly to their full values over this many epochs (the first "
                             "gets 1/N of them); 0: full rates at once"})
    slot_separator: str = field(default="|", metadata={"help": "separator of slots inside an intent label"})
    slot_names: str = field(default="action,object,location", metadata={"help": "names for per-slot accuracy"})
    text_batch_size: int = field(default=64, metadata={"help": "batch size when running the teacher"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for masking and shuffling (from --seed)"})
    train_subset: str = field(default=II("dataset.train_subset"), metadata={"help": "the training split (from --train-subset); DA and KD apply to it only"})
    cpu: bool = field(default=II("common.cpu"), metadata={"help": "keep the teacher on CPU (from --cpu)"})


@register_task("slu_finetuning", dataclass=SLUFinetuningConfig)
class SLUFinetuningTask(SpeechBertTask):
    def __init__(self, cfg, unit_dict, label_dict):
        super().__init__(cfg)
        self.unit_dict, self.label_dict = unit_dict, label_dict
        self._teacher = None

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        if cfg.kd_unlabeled_data and not cfg.teacher_path:
            raise ValueError(f"--kd-unlabeled-data {cfg.kd_unlabeled_data}: the pairs' only target is the "
                             "teacher's logits: pass --teacher-path")
        label_dict = load_label_dict(os.path.join(cfg.data, "label", "dict.txt"))
        return cls(cfg, load_dict(cfg.data, "units"), label_dict)

    @property
    def num_classes(self):
        return len(label_symbols(self.label_dict))

    @property
    def teacher(self):
        """The frozen FT-KD teacher (models.teacher.TextTeacher), loaded at first use."""
        if self._teacher is None:
            c = self.cfg
            self._teacher = load_teacher(c.teacher_path, self.label_dict, c.data, c.max_positions,
                                         c.teacher_text_dir, c.teacher_label_dict, frozen_model_device(c))
        return self._teacher

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        units = self.load_units(split)
        labels = load_intents(self.cfg.data, split, self.label_dict)
        check_aligned(split, units=units, labels=labels)
        # DA and KD touch training data only: validation (and fairseq-validate on a
        # model directory without its teacher) measures the student alone
        training = split == self.cfg.train_subset
        kd = bool(self.cfg.teacher_path) and training
        text = self._teacher_text(self.cfg.data, split, len(units)) if kd else None
        if kd and self.cfg.kd_unlabeled_data:
            units, labels, text = self._join_unlabeled(units, labels, text)
        src = self._augmented(units) if self.cfg.augment_units and training else units
        items = {
            "id": IdDataset(),
            "net_input": {
                "src_tokens": RightPadDataset(src, pad_idx=self.unit_dict.pad()),
                **cached_states_input(self, split, units, masked=src is not units),
            },
            "target": labels,
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(units, reduce=True),
        }
        if kd:
            items.update(self._teacher_items(split, text))
        self.datasets[split] = length_sorted(items, units, self.cfg.seed, epoch)
        logger.info(f"{split}: {len(units)} utterances, {self.num_classes} intents")

    @property
    def augment_schedule(self):
        return AugmentSchedule(self.cfg.augment_start_epoch, self.cfg.augment_ramp_epochs)

    def begin_epoch(self, epoch, model):
        """Hidden masking gets the epoch's share of its rates, as the unit masking dataset
        does from its set_epoch: one schedule for both, from the epoch fairseq trains
        (restored from the checkpoint when a run resumes)."""
        scale = self.augment_schedule.scale(epoch)
        if hasattr(model, "set_augment_scale"):
            model.set_augment_scale(scale)
        if self.cfg.augment_units or getattr(model.cfg, "augment_hidden", False):
            logger.info(f"epoch {epoch}: DA masking at {scale:.2f} of its rates")

    def _augmented(self, units):
        d, c = self.unit_dict, self.cfg
        return SpanMaskDataset(units, d.index("<mask>"), d.pad(), d.eos(), c.unit_mask_rate,
                               c.unit_mask_span, c.unit_mask_span, seed=c.seed, schedule=self.augment_schedule)

    def _teacher_text(self, data, split, n):
        """The teacher's input for each of the ``n`` utterances of ``data``'s ``split``."""
        text, source = self.teacher.tokens(split, data)
        if len(text) != n:
            raise ValueError(f"split '{split}': {len(text)} transcripts in {source} for {n} utterances in {data}")
        return text

    def _join_unlabeled(self, units, labels, text):
        """The training split's streams with --kd-unlabeled-data's pairs after them."""
        c = self.cfg
        extra = self.load_units(c.kd_unlabeled_subset, c.kd_unlabeled_data)
        extra_text = self._teacher_text(c.kd_unlabeled_data, c.kd_unlabeled_subset, len(extra))
        no_intent = TensorListDataset([torch.tensor([UNLABELED])] * len(extra))
        logger.info(f"FT-KD: {len(extra)} unlabeled pairs of {c.kd_unlabeled_data} ({c.kd_unlabeled_subset}) "
                    f"join {len(units)} labeled utterances")
        return (ConcatDataset([units, extra]), ConcatDataset([labels, no_intent]),
                ConcatDataset([text, extra_text]))

    def _teacher_items(self, split, text):
        """The sample fields FT-KD needs: the teacher's logits, or its input for train_step."""
        if self.cfg.teacher_logits == "on-the-fly":
            return {"teacher_input": RightPadDataset(text, pad_idx=self.teacher.pad)}
        logits = self.teacher.split_logits(text, self.cfg.text_batch_size, desc=f"teacher logits ({split})")
        return {"teacher_logits": TensorListDataset(logits)}

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if "teacher_input" in sample:  # --teacher-logits on-the-fly
            sample["teacher_logits"] = self.teacher.logits(sample.pop("teacher_input"))
        loss, sample_size, log = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        if self.cfg.augment_units:  # the share of units the batch saw masked (logged as unit_mask, %)
            tokens = sample["net_input"]["src_tokens"]
            log["_da_masked_units"] = int(tokens.eq(self.unit_dict.index("<mask>")).sum())
            log["_da_units"] = int(tokens.ne(self.unit_dict.pad()).sum())
        return loss, sample_size, log

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if any("_da_units" in log for log in logging_outputs):
            # the SLU criteria log every "_" count as a summed scalar: only the share is derived here
            metrics.log_derived("unit_mask", lambda m: round(
                100.0 * m["_da_masked_units"].sum / max(m["_da_units"].sum, 1), 2))

    @property
    def target_dictionary(self):
        return self.label_dict
