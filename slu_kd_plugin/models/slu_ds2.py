"""The SLU model: speech BERT -> DS2 block -> max-pool over time -> Linear(n_intents)."""
import logging
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
from fairseq.models import register_model

from ..data.augment import mask_hidden_states
from ..checkpoints import CheckpointError, arch_of, load_state
from .speech_ds2 import SpeechDS2Config, SpeechDS2Model

logger = logging.getLogger(__name__)


@dataclass
class SLUDS2Config(SpeechDS2Config):
    am_path: Optional[str] = field(
        default=None,
        metadata={"help": "AM-PT (ds2_ctc) checkpoint whose DS2 block initializes this one, "
                  "matched by parameter name; its CTC output layer is not used"},
    )
    augment_hidden: bool = field(
        default=False, metadata={"help": "DA: mask speech-BERT states (time and channel) in training"}
    )
    hidden_time_mask_width: int = field(default=10, metadata={"help": "frames per time mask"})
    hidden_time_mask_rate: float = field(default=0.5, metadata={"help": "fraction of frames time-masked"})
    hidden_chan_mask_width: int = field(default=5, metadata={"help": "dims per channel mask"})
    hidden_chan_mask_rate: float = field(default=0.4, metadata={"help": "fraction of dims channel-masked"})
    classifier_dropout: float = field(default=0.0, metadata={"help": "dropout before the intent layer"})


@register_model("slu_ds2", dataclass=SLUDS2Config)
class SLUDS2Model(SpeechDS2Model):
    def __init__(self, cfg, speech_bert, n_classes):
        super().__init__(cfg, speech_bert)
        self.dropout = nn.Dropout(cfg.classifier_dropout)
        self.classifier = nn.Linear(self.ds2.hidden, n_classes)
        # share of the hidden masking rates this epoch: the task's DA schedule sets it
        # (begin_epoch); 1 for a model trained outside fairseq-train. Not saved: a
        # resumed run gets it from the epoch it resumes at.
        self.augment_scale = 1.0

    def set_augment_scale(self, scale):
        self.augment_scale = float(scale)

    @classmethod
    def build_model(cls, cfg, task):
        bert, fresh = cls.build_speech_bert(cfg, task)
        model = cls(cfg, bert, task.num_classes)
        if fresh and cfg.am_path:  # restoring our own checkpoint brings its DS2 weights
            model.load_am(cfg.am_path)
        return model

    def load_am(self, path):
        """Copy the DS2 block of an AM-PT checkpoint, by name, refusing anything else."""
        state = load_state(path)
        name = arch_of(state, path)
        if name != "ds2_ctc":
            raise CheckpointError(f"{path}: --am-path expects an AM-PT (ds2_ctc) checkpoint, got '{name}'")
        weights = {k[len("ds2."):]: v.float() for k, v in state["model"].items() if k.startswith("ds2.")}
        try:
            self.ds2.load_state_dict(weights, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: its DS2 block does not fit this model's sizes: {e}") from e
        logger.info(f"DS2 block initialized from {path} ({len(weights)} tensors)")

    def forward(self, src_tokens, speech_states=None, **unused):
        """{"logits": (B, n_classes)}."""
        masking = self.training and self.cfg.augment_hidden and self.augment_scale > 0
        mask_fn = self._mask_hidden if masking else None
        x, padding_mask = self.encode(src_tokens, hidden_mask_fn=mask_fn, speech_states=speech_states)
        # max-pool over real frames only
        x = x.masked_fill(padding_mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        return {"logits": self.classifier(self.dropout(x))}

    def _mask_hidden(self, x, padding_mask):
        c, scale = self.cfg, self.augment_scale
        # drawn from torch's global RNG, which fairseq seeds (--seed): reproducible runs
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))
        return mask_hidden_states(
            x, padding_mask, time_width=c.hidden_time_mask_width, time_rate=c.hidden_time_mask_rate * scale,
            chan_width=c.hidden_chan_mask_width, chan_rate=c.hidden_chan_mask_rate * scale, generator=generator,
        )

    @staticmethod
    def get_logits(net_output):
        return net_output["logits"]

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        logits = net_output["logits"].float()
        return torch.log_softmax(logits, -1) if log_probs else torch.softmax(logits, -1)
