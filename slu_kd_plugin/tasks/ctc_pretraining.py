"""AM-PT: CTC on characters with the DS2 block over frozen speech-BERT states.

Targets are ``DATA/ltr`` (fairseq letter format, ``|`` between words); the CTC blank
is the dictionary's ``<s>`` (what fairseq's ``ctc`` criterion uses when a task names no
blank), so ``--criterion ctc --post-process letter`` reports CER as ``uer``.
"""
import logging
from dataclasses import dataclass, field

from fairseq.data import IdDataset, NumelDataset, NumSamplesDataset, RightPadDataset, StripTokenDataset
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING

from .common import CACHE_HELP, SpeechBertTask, cached_states_input, check_aligned, length_sorted, load_dict, load_split

logger = logging.getLogger(__name__)


@dataclass
class CTCPretrainingConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "data-bin with units/ and ltr/"})
    max_positions: int = field(default=1024, metadata={"help": "units beyond this are truncated"})
    cache_speech_states: bool = field(default=False, metadata={"help": CACHE_HELP})
    seed: int = field(default=II("common.seed"), metadata={"help": "seed for masking and shuffling (from --seed)"})


@register_task("ctc_pretraining", dataclass=CTCPretrainingConfig)
class CTCPretrainingTask(SpeechBertTask):
    def __init__(self, cfg, unit_dict, char_dict):
        super().__init__(cfg)
        self.unit_dict, self.char_dict = unit_dict, char_dict

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        return cls(cfg, load_dict(cfg.data, "units"), load_dict(cfg.data, "ltr", add_mask=False))

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        units = self.load_units(split)
        chars = StripTokenDataset(load_split(self.cfg.data, "ltr", split, self.char_dict), self.char_dict.eos())
        check_aligned(split, units=units, chars=chars)
        items = {
            "id": IdDataset(),
            # no src_lengths: the ctc criterion would take them as output lengths,
            # but DS2 halves time; it reads the model's padding_mask instead
            "net_input": {
                "src_tokens": RightPadDataset(units, pad_idx=self.unit_dict.pad()),
                **cached_states_input(self, split, units, masked=False),
            },
            "target": RightPadDataset(chars, pad_idx=self.char_dict.pad()),
            "target_lengths": NumelDataset(chars, reduce=False),
            "nsentences": NumSamplesDataset(),
            "ntokens": NumelDataset(chars, reduce=True),
        }
        self.datasets[split] = length_sorted(items, units, self.cfg.seed, epoch)
        logger.info(f"{split}: {len(units)} utterances with character targets")

    @property
    def target_dictionary(self):
        return self.char_dict
