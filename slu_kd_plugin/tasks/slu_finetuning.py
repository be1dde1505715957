"""SLU fine-tuning (baseline and FT-KD): units -> intent, optionally with the text
teacher's logits on each transcript as KD targets and with unit span masking (DA).

The teacher is either fairseq's own sentence_prediction RoBERTa over DATA/input0, or a
Hugging Face encoder trained by hf_text_classification (hf_text_classifier), which
tokenizes the transcripts as written (DATA/text/{split}.txt) itself; the kind is read
from the checkpoint."""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.data import (
    Dictionary,
    IdDataset,
    NumelDataset,
    NumSamplesDataset,
    RightPadDataset,
)
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data.datasets import SpanMaskDataset, TensorListDataset
from ..data.labels import check_same_labels, label_symbols, load_label_dict
from ..data.text_targets import HEAD_NAME, run_text_model, text_model_output
from ..models.hf_text import HF_ARCH, load_hf_classifier, transcript_tokens
from ..models.pretrained import (
    CheckpointError,
    describe,
    freeze,
    load_roberta,
    load_state,
    model_cfg_of,
    model_name_of,
    task_name_of,
)
from .common import (
    CACHE_HELP,
    AverageBatchNormStatsMixin,
    KeepLastBatchMixin,
    build_recording_speech_bert,
    cached_states_input,
    check_aligned,
    encoder_input,
    length_sorted,
    load_dict,
    load_intents,
    load_split,
)

logger = logging.getLogger(__name__)

TEACHER_TASKS = ("sentence_prediction", "hf_text_classification")


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
    max_positions: int = field(default=1024, metadata={"help": "units beyond this are truncated"})
    cache_speech_states: bool = field(default=False, metadata={"help": CACHE_HELP})
    augment_units: bool = field(default=False, metadata={"help": "DA: span-mask units in training"})
    unit_mask_rate: float = field(default=0.2, metadata={"help": "fraction of units span-masked"})
    unit_mask_span: int = field(default=5, metadata={"help": "units per masked span"})
    slot_separator: str = field(default="|", metadata={"help": "separator of slots inside an intent label"})
    slot_names: str = field(default="action,object,location", metadata={"help": "names for per-slot accuracy"})
    text_batch_size: int = field(default=64, metadata={"help": "batch size when running the teacher"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for masking and shuffling (from --seed)"})
    train_subset: str = field(default=II("dataset.train_subset"), metadata={"help": "the training split (from --train-subset); DA and KD apply to it only"})
    cpu: bool = field(default=II("common.cpu"), metadata={"help": "keep the teacher on CPU (from --cpu)"})


@register_task("slu_finetuning", dataclass=SLUFinetuningConfig)
class SLUFinetuningTask(AverageBatchNormStatsMixin, KeepLastBatchMixin, FairseqTask):
    def __init__(self, cfg, unit_dict, label_dict):
        super().__init__(cfg)
        self.unit_dict, self.label_dict = unit_dict, label_dict
        self._teacher = None
        self._teacher_tokenizer = None  # Hugging Face teachers: (tokenizer, max positions)
        self._text_dict = None

    @property
    def text_dict(self):
        """DATA/input0's dictionary (RoBERTa teachers): loaded only for KD, so rebuilding a
        saved student needs no teacher text."""
        if self._text_dict is None:
            self._text_dict = load_dict(self.cfg.data, "input0")
        return self._text_dict

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        label_dict = load_label_dict(os.path.join(cfg.data, "label", "dict.txt"))
        return cls(cfg, load_dict(cfg.data, "units"), label_dict)

    @property
    def num_classes(self):
        return len(label_symbols(self.label_dict))

    def teacher_labels(self, state):
        """(label Dictionary, where it came from) of the teacher checkpoint's classes."""
        path = self.cfg.teacher_path
        if self.cfg.teacher_label_dict:
            return load_label_dict(self.cfg.teacher_label_dict), self.cfg.teacher_label_dict
        beside = os.path.join(os.path.dirname(path), "label_dict.txt")
        if os.path.isfile(beside):
            return load_label_dict(beside), beside
        recorded = (state.get("task_state") or {}).get("label_symbols")
        if recorded:  # hf_text_classification records the classes it was trained on
            labels = Dictionary()
            for symbol in recorded:
                labels.add_symbol(symbol)
            return labels, f"{path} (recorded labels)"
        task_cfg = (state.get("cfg") or {}).get("task") or {}
        if not task_cfg.get("data"):
            raise CheckpointError(f"{path}: cannot find the teacher's label dictionary; pass --teacher-label-dict")
        label_path = os.path.join(task_cfg["data"], "label", "dict.txt")
        return load_label_dict(label_path), label_path

    def _teacher_arch(self, state):
        try:
            return model_name_of(model_cfg_of(state))
        except CheckpointError as e:
            raise CheckpointError(f"{self.cfg.teacher_path}: {e}") from e

    @property
    def hf_teacher(self):
        return self._teacher_tokenizer is not None

    @property
    def teacher(self):
        if self._teacher is None:
            path = self.cfg.teacher_path
            state = load_state(path)
            # before anything is looked up in it: a checkpoint of another stage says so
            if task_name_of(state) not in TEACHER_TASKS:
                raise CheckpointError(f"{describe(state, path)}: --teacher-path expects a text teacher "
                                      f"({' or '.join(TEACHER_TASKS)} checkpoint)")
            teacher_labels, source = self.teacher_labels(state)
            check_same_labels(self.label_dict, teacher_labels, f"{path}; labels from {source}")
            if self._teacher_arch(state) == HF_ARCH:
                model, tokenizer, max_positions = load_hf_classifier(state, path)
                self._teacher_tokenizer = (tokenizer, max_positions)
                del state
            else:
                del state  # load_roberta reads it again (and names a wrong kind of checkpoint)
                model, _ = load_roberta(path, self.text_dict, load_heads=True)
            if HEAD_NAME not in getattr(model, "classification_heads", {}):
                raise CheckpointError(f"{path}: not a sentence_prediction teacher (no '{HEAD_NAME}')")
            n = model.classification_heads[HEAD_NAME].out_proj.out_features
            if n != self.num_classes:
                raise CheckpointError(f"{self.cfg.teacher_path}: teacher has {n} classes, data has {self.num_classes}")
            use_cuda = torch.cuda.is_available() and not self.cfg.cpu
            self._teacher = freeze(model).to("cuda" if use_cuda else "cpu")
        return self._teacher

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        units = encoder_input(load_split(self.cfg.data, "units", split, self.unit_dict),
                              self.unit_dict, self.cfg.max_positions)
        labels = load_intents(self.cfg.data, split, self.label_dict)
        check_aligned(split, units=units, labels=labels)
        training = split == self.cfg.train_subset
        # DA and KD touch training data only: validation (and fairseq-validate on a
        # model directory without its teacher) measures the student alone
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
        if self.cfg.teacher_path and training:
            items.update(self._teacher_items(split, len(units)))
        self.datasets[split] = length_sorted(items, units, self.cfg.seed, epoch)
        logger.info(f"{split}: {len(units)} utterances, {self.num_classes} intents")

    def _augmented(self, units):
        d, c = self.unit_dict, self.cfg
        return SpanMaskDataset(units, d.index("<mask>"), d.pad(), d.eos(), c.unit_mask_rate,
                               c.unit_mask_span, c.unit_mask_span, seed=c.seed)

    def _teacher_items(self, split, n):
        """The sample fields FT-KD needs: the teacher's logits, or its input for train_step."""
        self.teacher  # check the labels and load it now, not at the first batch
        text, pad, source = self._teacher_text(split)
        if len(text) != n:
            raise ValueError(f"split '{split}': {len(text)} transcripts in {source} for {n} utterances "
                             f"in {self.cfg.data}")
        if self.cfg.teacher_logits == "on-the-fly":
            return {"teacher_input": RightPadDataset(text, pad_idx=pad)}
        logits = run_text_model(self.teacher, text, pad, "logits",
                                self.cfg.text_batch_size, desc=f"teacher logits ({split})")
        return {"teacher_logits": TensorListDataset(logits)}

    def _teacher_text(self, split):
        """(token dataset, pad index, source) of the teacher's input for each utterance."""
        if not self.hf_teacher:  # RoBERTa: the binarized input0 stream
            text = encoder_input(load_split(self.cfg.data, "input0", split, self.text_dict),
                                 self.text_dict, self.cfg.max_positions)
            return text, self.text_dict.pad(), os.path.join(self.cfg.data, "input0", split)
        tokenizer, max_positions = self._teacher_tokenizer
        text, path = transcript_tokens(self.cfg.teacher_text_dir, self.cfg.data, split, tokenizer,
                                       max_positions, "--teacher-text-dir")
        return text, tokenizer.pad_token_id, path

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if "teacher_input" in sample:  # --teacher-logits on-the-fly
            sample["teacher_logits"] = self._teacher_forward(sample.pop("teacher_input"))
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    @torch.no_grad()
    def _teacher_forward(self, tokens):
        teacher = self.teacher.eval()  # frozen: no dropout, no gradient
        tokens = tokens.to(next(teacher.parameters()).device)
        pad = self._teacher_tokenizer[0].pad_token_id if self.hf_teacher else self.text_dict.pad()
        return text_model_output(teacher, tokens, "logits", pad).float()

    def build_model(self, cfg, from_checkpoint=False):
        # kept so load_dataset can cache the frozen speech BERT's states
        self.model = build_recording_speech_bert(self, cfg, from_checkpoint)
        return self.model

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return self.unit_dict

    @property
    def target_dictionary(self):
        return self.label_dict
