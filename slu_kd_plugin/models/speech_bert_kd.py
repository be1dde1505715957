"""PT-KD model: the speech BERT being pretrained further, plus an optional projection
of its ``<s>`` vector into the text model's space (needed when the widths differ)."""
from dataclasses import dataclass, field
from typing import Any, Optional

import torch.nn as nn
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import open_dict

from .pretrained import args_as_dict, build_roberta, load_roberta, to_model_cfg


@dataclass
class SpeechBertKDConfig(FairseqDataclass):
    speech_bert_path: Optional[str] = field(
        default=None,
        metadata={"help": "speech BERT to start from: a fairseq masked_lm RoBERTa over "
                  "units (e.g. bert_kmeans, or this project's stage 0)"},
    )
    speech_bert_args: Optional[Any] = field(
        default=None,
        metadata={"help": "filled in on first build: the speech BERT's own config, so the "
                  "checkpoint rebuilds without speech_bert_path"},
    )
    text_dim: int = field(
        default=0, metadata={"help": "width of the text model's vector (set by the task)"}
    )


@register_model("speech_bert_kd", dataclass=SpeechBertKDConfig)
class SpeechBertKDModel(BaseFairseqModel):
    def __init__(self, cfg, bert):
        super().__init__()
        self.cfg = cfg
        self.bert = bert
        text_dim = cfg.text_dim
        dim = bert.encoder.sentence_encoder.embed_tokens.embedding_dim
        # a learned map only when the spaces differ in width; identity keeps the
        # paper's direct matching when they agree
        self.kd_proj = nn.Linear(dim, text_dim) if text_dim and text_dim != dim else None

    @classmethod
    def build_model(cls, cfg, task):
        if cfg.speech_bert_args is None:
            if not cfg.speech_bert_path:
                raise ValueError("speech_bert_kd needs --speech-bert-path (a masked_lm checkpoint over units)")
            bert, bert_cfg = load_roberta(cfg.speech_bert_path, task.source_dictionary)
            with open_dict(cfg):
                cfg.speech_bert_args = args_as_dict(bert_cfg)
        else:  # rebuilding a saved PT-KD model: weights come from its checkpoint
            bert = build_roberta(to_model_cfg(cfg.speech_bert_args), task.source_dictionary)
        return cls(cfg, bert)

    def forward(self, src_tokens, masked_tokens=None, **unused):
        """Returns (MLM logits at ``masked_tokens`` (N, V), projected <s> vector (B, text_dim))."""
        features, _ = self.bert.encoder.extract_features(src_tokens)
        lm_logits = self.bert.encoder.output_layer(features, masked_tokens=masked_tokens)
        cls_vec = features[:, 0, :]
        if self.kd_proj is not None:
            cls_vec = self.kd_proj(cls_vec)
        return lm_logits, cls_vec

    def max_positions(self):
        return self.bert.max_positions()
