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

from fairseq.models import build_model
from omegaconf import DictConfig, OmegaConf, open_dict

from ..checkpoints import CheckpointError, describe, load_state, model_cfg_of, model_name_of

logger = logging.getLogger(__name__)

# model name in a checkpoint's cfg -> prefix of the RoBERTa weights inside it
NESTED_ROBERTA_PREFIX = {
    "speech_bert_kd": "bert.",
    "ds2_ctc": "speech_bert.",
    "slu_ds2": "speech_bert.",
}


class DictionaryTask:
    """What ``RobertaModel.build_model`` needs of a task: its dictionaries."""

    def __init__(self, source_dictionary, target_dictionary=None):
        self.source_dictionary = source_dictionary
        self.target_dictionary = target_dictionary or source_dictionary
        self.dictionary = source_dictionary


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
        if load_heads and not any(k.startswith("classification_heads.") for k in weights):
            # only teachers are loaded with their heads
            raise CheckpointError(f"{path}: has no classification head: not a text teacher "
                                  "(sentence_prediction) checkpoint")
        check_vocab(weights, dictionary, path)
        weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
        try:
            model.load_state_dict(weights, strict=True, model_cfg=model_cfg)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: its weights do not fit the RoBERTa its config describes "
                                  f"(expected a masked_lm or PT-KD checkpoint): {e}") from e
    return model


def embedding_rows(weights):
    """Rows of a RoBERTa's token embedding among ``weights`` (any prefix); None without one."""
    return next((v.shape[0] for k, v in weights.items() if k.endswith("sentence_encoder.embed_tokens.weight")), None)


def check_vocab(weights, dictionary, path):
    """The checkpoint's embedding rows must equal the dictionary the data uses.

    For a speech BERT the symbols are units, so a different count means the data's units
    come from a quantizer with another number of clusters than the one it was trained on.
    """
    rows = embedding_rows(weights)
    if rows is None or rows == len(dictionary):
        return
    extra = dictionary.nspecial + int("<mask>" in dictionary.indices)
    source = getattr(dictionary, "path", None) or "the data's dictionary"  # set by tasks.common.load_dict
    raise CheckpointError(
        f"{path}: {rows} token embeddings ({rows - extra} symbols + {extra} special), but {source} "
        f"has {len(dictionary)} ({len(dictionary) - extra} symbols + {extra} special): the data was "
        "binarized with another dictionary than the one this model was trained on (for a speech "
        "BERT: units from a quantizer with a different number of units; featurize and binarize "
        "with the speech BERT's quantizer and dictionary)"
    )


def load_roberta(path, dictionary, load_heads=False):
    """(RobertaModel with weights, its model cfg) from a checkpoint at ``path``."""
    return roberta_from_state(load_state(path), path, dictionary, load_heads)


def roberta_from_state(state, path, dictionary, load_heads=False):
    """:func:`load_roberta` for a checkpoint already read from ``path``."""
    named = describe(state, path)  # a checkpoint of another stage says so in any error
    model_cfg, weights = roberta_parts(state, named)
    model = build_roberta(model_cfg, dictionary, weights, load_heads=load_heads, path=named)
    return model, model_cfg


def freeze(module):
    """Eval mode, no gradients: for teachers and frozen encoders."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
