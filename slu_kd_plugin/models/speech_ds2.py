"""What the AM-PT and SLU models share: a (frozen) speech BERT and a DS2 block over its
final-layer states.  Not a registered model; ``ds2_ctc`` and ``slu_ds2`` build on it."""
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from fairseq.models import BaseFairseqModel
from omegaconf import open_dict

from .ds2_block import DS2Block, DS2Config
from .pretrained import args_as_dict, build_roberta, freeze, load_roberta, to_model_cfg


@dataclass
class SpeechDS2Config(DS2Config):
    speech_bert_path: Optional[str] = field(
        default=None,
        metadata={"help": "speech BERT checkpoint: fairseq masked_lm RoBERTa over units "
                  "(bert_kmeans, stage 0) or a PT-KD (speech_bert_kd) checkpoint"},
    )
    speech_bert_args: Optional[Any] = field(
        default=None,
        metadata={"help": "filled in on first build: the speech BERT's config, so a saved "
                  "model rebuilds without speech_bert_path"},
    )
    speech_bert_trainable_layers: int = field(
        default=0,
        metadata={"help": "0: speech BERT frozen (paper); N>0: fine-tune its top N layers; -1: all"},
    )


class SpeechDS2Model(BaseFairseqModel):
    """speech BERT (B,T) units -> (B,T,D) states -> DS2 -> (B,T',H)."""

    def __init__(self, cfg, speech_bert):
        super().__init__()
        self.cfg = cfg
        self.speech_bert = speech_bert
        self._set_trainable(cfg.speech_bert_trainable_layers)
        dim = speech_bert.encoder.sentence_encoder.embed_tokens.embedding_dim
        self.ds2 = DS2Block.build(dim, cfg)

    @staticmethod
    def build_speech_bert(cfg, task):
        """Load the speech BERT on first build; rebuild it empty when the model is
        restored from its own checkpoint (whose weights then fill it)."""
        fresh = cfg.speech_bert_args is None
        if fresh:
            if not cfg.speech_bert_path:
                raise ValueError("--speech-bert-path is required (a masked_lm / PT-KD checkpoint)")
            bert, bert_cfg = load_roberta(cfg.speech_bert_path, task.source_dictionary)
            with open_dict(cfg):
                cfg.speech_bert_args = args_as_dict(bert_cfg)
        else:
            bert = build_roberta(to_model_cfg(cfg.speech_bert_args), task.source_dictionary)
        bert.encoder.lm_head = None  # only features are used downstream
        return bert, fresh

    def _set_trainable(self, n_layers):
        if n_layers == -1:
            return
        freeze(self.speech_bert)
        layers = self.speech_bert.encoder.sentence_encoder.layers
        for layer in list(layers)[len(layers) - n_layers:] if n_layers > 0 else []:
            for p in layer.parameters():
                p.requires_grad_(True)

    @property
    def speech_bert_frozen(self):
        return self.cfg.speech_bert_trainable_layers == 0

    def train(self, mode=True):
        super().train(mode)
        if self.speech_bert_frozen:  # fairseq calls model.train() every epoch
            self.speech_bert.eval()
        return self

    def speech_states(self, src_tokens):
        """Final-layer speech BERT states (B,T,D); no graph when frozen."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.speech_bert_frozen):
            features, _ = self.speech_bert.encoder.extract_features(src_tokens)
        return features

    def encode(self, src_tokens, hidden_mask_fn=None, speech_states=None):
        """(DS2 output (B,T',H), its padding mask (B,T')).  ``speech_states`` (B,T,D) are
        the frozen speech BERT's states when the task cached them."""
        padding_mask = src_tokens.eq(self.speech_bert.encoder.sentence_encoder.padding_idx)
        if speech_states is None:
            x = self.speech_states(src_tokens)
        else:
            x = speech_states.to(self._ds2_dtype())
        if hidden_mask_fn is not None:
            x = hidden_mask_fn(x, padding_mask)
        return self.ds2(x, padding_mask)

    def _ds2_dtype(self):
        return next(self.ds2.parameters()).dtype

    def max_positions(self):
        return self.speech_bert.max_positions()
