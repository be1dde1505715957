"""Load RoBERTa-family encoders (speech BERT, text model, text teacher) from checkpoints.

One loader serves every source a user may have:
* fairseq RoBERTa checkpoints (``masked_lm`` / ``sentence_prediction``), including the
  published 2019-2020 ones (``args`` Namespace, legacy ``decoder.*`` keys, fused
  ``in_proj_weight``, fp16) — fairseq's own ``upgrade_state_dict`` handles the keys;
* this plugin's checkpoints that hold a RoBERTa inside (PT-KD, AM-PT, SLU), which store
  the inner model's args under ``speech_bert_args`` and its weights under a prefix.

A checkpoint does not carry its dictionaries, so the caller passes the dictionary the
data was binarized with and we check that it fits the embedding matrix.
"""
import argparse
import logging
import os

import torch
from fairseq import checkpoint_utils
from fairseq.models import build_model
from omegaconf import DictConfig, OmegaConf, open_dict

logger = logging.getLogger(__name__)

# model name in a checkpoint's cfg -> prefix of the RoBERTa weights inside it
NESTED_ROBERTA_PREFIX = {
    "speech_bert_kd": "bert.",
    "ds2_ctc": "speech_bert.",
    "slu_ds2": "speech_bert.",
}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not the kind expected."""


class DictionaryTask:
    """What ``RobertaModel.build_model`` needs of a task: its dictionaries."""

    def __init__(self, source_dictionary, target_dictionary=None):
        self.source_dictionary = source_dictionary
        self.target_dictionary = target_dictionary or source_dictionary
        self.dictionary = source_dictionary


def load_state(path):
    """Read a fairseq checkpoint with safe loading; errors name the file."""
    if not path or not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        return checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # truncated zip, refused pickle, ...
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})") from e


def model_cfg_of(state):
    """The model config of a checkpoint, as a mutable DictConfig or Namespace."""
    cfg = state.get("cfg")
    if cfg is not None and cfg.get("model") is not None:
        model_cfg = cfg["model"]
        return model_cfg if isinstance(model_cfg, (DictConfig, argparse.Namespace)) else OmegaConf.create(model_cfg)
    if state.get("args") is not None:  # pre-hydra checkpoints
        return argparse.Namespace(**vars(state["args"]))
    raise CheckpointError("checkpoint has neither cfg.model nor args")


def model_name_of(model_cfg):
    if isinstance(model_cfg, argparse.Namespace):
        return getattr(model_cfg, "arch", None)
    return model_cfg.get("_name") or model_cfg.get("arch")


def roberta_parts(state, path):
    """(roberta model cfg, roberta weights) from any supported checkpoint."""
    model_cfg = model_cfg_of(state)
    name = model_name_of(model_cfg)
    prefix = NESTED_ROBERTA_PREFIX.get(name)
    if prefix is None:
        return model_cfg, state["model"]
    inner = model_cfg.get("speech_bert_args") if not isinstance(model_cfg, argparse.Namespace) else None
    if inner is None:
        raise CheckpointError(f"{path}: {name} checkpoint does not record its speech BERT config")
    weights = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    return to_model_cfg(inner), weights


def to_model_cfg(args):
    """A stored arg dict -> a config fairseq's build_model accepts."""
    if isinstance(args, argparse.Namespace):
        return argparse.Namespace(**vars(args))
    if isinstance(args, DictConfig):
        args = OmegaConf.to_container(args, resolve=True)
    if "_name" in args:
        return OmegaConf.create(args)
    return argparse.Namespace(**args)


def args_as_dict(model_cfg):
    """Serializable copy of a model config, to store inside another model's config."""
    if isinstance(model_cfg, argparse.Namespace):
        return {k: v for k, v in vars(model_cfg).items() if _plain(v)}
    return OmegaConf.to_container(model_cfg, resolve=True)


def _plain(v):
    return v is None or isinstance(v, (bool, int, float, str, list, tuple, dict))


def build_roberta(model_cfg, dictionary, weights=None, load_heads=False, path="<config>"):
    """Build a RobertaModel for ``dictionary`` and (optionally) load ``weights``."""
    if isinstance(model_cfg, argparse.Namespace):
        model_cfg.load_checkpoint_heads = load_heads
    else:
        with open_dict(model_cfg):
            model_cfg.load_checkpoint_heads = load_heads
    model = build_model(model_cfg, DictionaryTask(dictionary))
    if weights is not None:
        check_vocab(weights, dictionary, path)
        weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
        try:
            model.load_state_dict(weights, strict=True, model_cfg=model_cfg)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: its weights do not fit the RoBERTa its config describes "
                                  f"(not a masked_lm / PT-KD speech BERT checkpoint?): {e}") from e
    return model


def check_vocab(weights, dictionary, path):
    """The checkpoint's embedding rows must equal the dictionary the data uses."""
    rows = next((v.shape[0] for k, v in weights.items() if k.endswith("sentence_encoder.embed_tokens.weight")), None)
    if rows is not None and rows != len(dictionary):
        raise CheckpointError(
            f"{path}: model has {rows} token embeddings but the dictionary has "
            f"{len(dictionary)} entries: the data was binarized with a different "
            "dictionary than the one this model was trained on"
        )


def load_roberta(path, dictionary, load_heads=False):
    """(RobertaModel with weights, its model cfg) from a checkpoint at ``path``."""
    state = load_state(path)
    model_cfg, weights = roberta_parts(state, path)
    model = build_roberta(model_cfg, dictionary, weights, load_heads=load_heads, path=path)
    return model, model_cfg


def freeze(module):
    """Eval mode, no gradients: for teachers and frozen encoders."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
