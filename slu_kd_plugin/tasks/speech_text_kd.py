"""PT-KD: continue pretraining the speech BERT on paired speech-text data.

Masked LM on span-masked units keeps it a speech model; matching its ``<s>`` vector
to a frozen text model's vector of the transcript pulls in textual knowledge.  Only
utterance-level vectors are matched, so no speech-text alignment is needed.
"""
import logging
from dataclasses import dataclass, field

from fairseq.data import IdDataset, NumelDataset, NumSamplesDataset, RightPadDataset
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING, open_dict

from ..data.datasets import SpanMaskDataset, TensorListDataset
from ..data.text_targets import run_text_model
from ..models.pretrained import freeze, load_roberta
from .common import UnitTask, build_recording_speech_bert, check_aligned, encoder_input, length_sorted, load_dict, load_split

logger = logging.getLogger(__name__)


@dataclass
class SpeechTextKDConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data-bin with units/ and input0/ (paired speech-text corpus)"})
    text_model_path: str = field(
        default=MISSING,
        metadata={"help": "frozen text RoBERTa whose final-layer <s> vector of the transcript is the target "
                  "(roberta.base in the paper; any fairseq RoBERTa-family checkpoint over DATA/input0/dict.txt)"},
    )
    text_vector: ChoiceEnum(["cls", "mean"]) = field(
        default="cls",
        metadata={"help": "the text model's utterance vector: final-layer <s> (paper, for roberta.base) or the "
                  "mean of its final-layer states (for a text model whose <s> never learned much, e.g. "
                  "one pretrained here on a small corpus with masked LM only)"},
    )
    max_positions: int = field(default=1024, metadata={"help": "units beyond this are truncated"})
    mask_rate: float = field(default=0.5, metadata={"help": "fraction of units masked for masked LM (paper ~50%)"})
    mask_span_min: int = field(default=10, metadata={"help": "shortest masked span"})
    mask_span_max: int = field(default=20, metadata={"help": "longest masked span"})
    text_batch_size: int = field(default=64, metadata={"help": "batch size when running the text model"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for masking and shuffling (from --seed)"})


@register_task("speech_text_kd", dataclass=SpeechTextKDConfig)
class SpeechTextKDTask(UnitTask):
    def __init__(self, cfg, unit_dict, text_dict):
        super().__init__(cfg)
        self.unit_dict, self.text_dict = unit_dict, text_dict
        self._text_model = None

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        return cls(cfg, load_dict(cfg.data, "units"), load_dict(cfg.data, "input0"))

    @property
    def text_model(self):
        """Loaded on first use: rebuilding a saved model for inference never needs it."""
        if self._text_model is None:
            model, _ = load_roberta(self.cfg.text_model_path, self.text_dict)
            self._text_model = freeze(model)
        return self._text_model

    def build_model(self, cfg, from_checkpoint=False):
        if not cfg.text_dim:
            with open_dict(cfg):
                cfg.text_dim = self.text_model.encoder.sentence_encoder.embed_tokens.embedding_dim
        return build_recording_speech_bert(self, cfg, from_checkpoint)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        units = self.load_units(split)
        text = encoder_input(load_split(self.cfg.data, "input0", split, self.text_dict), self.text_dict, self.cfg.max_positions)
        check_aligned(split, units=units, text=text)
        vectors = run_text_model(self.text_model, text, self.text_dict.pad(), self.cfg.text_vector,
                                 self.cfg.text_batch_size, desc=f"text vectors ({split})")
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
        logger.info(f"{split}: {len(units)} paired utterances")

    def _masked(self, units, return_target):
        d = self.unit_dict
        return SpanMaskDataset(units, d.index("<mask>"), d.pad(), d.eos(), self.cfg.mask_rate,
                               self.cfg.mask_span_min, self.cfg.mask_span_max,
                               seed=self.cfg.seed, return_target=return_target)

    @property
    def target_dictionary(self):
        return self.unit_dict
