"""AM-PT model: DS2 block over frozen speech-BERT states + BatchNorm + Linear(no bias),
trained with CTC on characters (fairseq's own ``ctc`` criterion).  Only the DS2 block
moves on to the SLU model; the output layer is dropped."""
from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F
from fairseq.models import register_model

from .speech_ds2 import SpeechDS2Config, SpeechDS2Model


@dataclass
class DS2CTCConfig(SpeechDS2Config):
    pass


@register_model("ds2_ctc", dataclass=DS2CTCConfig)
class DS2CTCModel(SpeechDS2Model):
    def __init__(self, cfg, speech_bert, n_chars):
        super().__init__(cfg, speech_bert)
        hidden = self.ds2.hidden
        self.out_norm = nn.BatchNorm1d(hidden)
        self.out_proj = nn.Linear(hidden, n_chars, bias=False)

    @classmethod
    def build_model(cls, cfg, task):
        bert, _ = cls.build_speech_bert(cfg, task)
        return cls(cfg, bert, len(task.target_dictionary))

    def forward(self, src_tokens, speech_states=None, **unused):
        """{"encoder_out": (T',B,V) logits, "padding_mask": (B,T')}, the layout
        fairseq's ctc criterion reads."""
        x, padding_mask = self.encode(src_tokens, speech_states=speech_states)
        x = self.out_norm(x.transpose(1, 2)).transpose(1, 2)
        logits = self.out_proj(x)
        return {"encoder_out": logits.transpose(0, 1), "padding_mask": padding_mask}

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        logits = net_output["encoder_out"].float()
        return F.log_softmax(logits, dim=-1) if log_probs else F.softmax(logits, dim=-1)
