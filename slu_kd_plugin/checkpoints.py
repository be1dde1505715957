"""Reading checkpoints: the one place that opens a torch file and says what it holds.

Every file (fairseq checkpoints of every stage, model directories' ``model.pt``,
quantizers) is opened with torch's safe loading (``weights_only=True``).  fairseq 0.12
checkpoints hold an ``argparse.Namespace`` (``args``), and the published 2019-2020 ones
(vq-wav2vec, bert_kmeans, roberta.base) also pickle fairseq meter objects in
``extra_state`` under their old module path ``fairseq.meters``: we allow-list exactly
those classes, so resume and ``fairseq-validate`` work while a file carrying any other
pickled object (e.g. a ``__reduce__`` payload) is still refused.

Errors are one line that names the file and says what it is not.  torch's own message
for a refused file ends by advising ``weights_only=False``: the one thing a user must
not do with a file they did not make, so it is never passed on.
"""
import argparse
import os
import pickle
import re

import torch
from omegaconf import DictConfig, OmegaConf

_METER_NAMES = ("AverageMeter", "TimeMeter", "StopwatchMeter", "SumMeter", "Meter")

# task name in a checkpoint's cfg -> the stage of the recipe that writes such checkpoints,
# so an error about a checkpoint given in the wrong place says what it is
STAGE_OF_TASK = {
    "masked_lm": "speech BERT / text model",
    "sentence_prediction": "text teacher",
    "hf_text_classification": "text teacher",
    "speech_text_kd": "PT-KD",
    "ctc_pretraining": "AM-PT",
    "slu_finetuning": "SLU",
}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not the kind expected."""


class UnsafeCheckpointError(CheckpointError):
    """torch's safe loading refused the file: it pickles objects we do not allow."""


def fairseq_checkpoint_globals():
    """(class, qualified name) pairs that fairseq checkpoints legitimately pickle."""
    from fairseq.logging import meters

    allowed = [(argparse.Namespace, "argparse.Namespace")]
    for name in _METER_NAMES:
        cls = getattr(meters, name, None)
        if cls is None:
            continue
        # current module path, and the one used before fairseq 0.10
        allowed.append((cls, f"fairseq.logging.meters.{name}"))
        allowed.append((cls, f"fairseq.meters.{name}"))
    return allowed


def allow_fairseq_checkpoints():
    """Register the allow-list with torch (idempotent)."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads with weights_only=False anyway
        return
    add(fairseq_checkpoint_globals())


def torch_load(path, what="checkpoint"):
    """The object in a torch file, read safely on the CPU; ``what`` names the kind of
    file in errors (``checkpoint``, ``quantizer``)."""
    allow_fairseq_checkpoints()  # idempotent; in case the package init was bypassed
    path = os.fspath(path) if path else path
    if not path or not os.path.isfile(path):
        raise CheckpointError(f"{path}: {what} file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch words it two ways
        if refused:
            raise UnsafeCheckpointError(
                f"{path}: cannot load {what}: refused by torch's safe loading: it pickles "
                f"{refused.group(1)}, which is neither a tensor nor a fairseq checkpoint type slu-kd "
                "allows; load only files from a source you trust") from None
        raise _unreadable(path, what, "not a pickle torch reads") from None
    except EOFError:
        raise _unreadable(path, what, "it ends early: empty or truncated") from None
    except Exception as e:  # torch's readers raise anything on other bytes
        zipped = "zip archive" in str(e)
        raise _unreadable(path, what, "a damaged zip archive: truncated or changed after saving"
                          if zipped else f"not written by torch.save: {type(e).__name__} on reading it") from None


def _unreadable(path, what, why):
    return CheckpointError(f"{path}: cannot load {what}: not a readable torch file ({why})")


def load_state(path):
    """A fairseq checkpoint as fairseq's ``load_checkpoint_to_cpu`` returns it (cfg as
    a DictConfig, old formats upgraded), read by :func:`torch_load`."""
    from fairseq import checkpoint_utils

    state = torch_load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    if state.get("cfg") is not None:
        state["cfg"] = OmegaConf.create(state["cfg"], flags={"allow_objects": True})
    try:
        # private but stable in 0.12: what load_checkpoint_to_cpu applies after torch.load
        return checkpoint_utils._upgrade_state_dict(state)
    except (KeyError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{path}: not a fairseq checkpoint ({type(e).__name__}: {e})") from None


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


def task_name_of(state):
    """The task a checkpoint was trained with (``masked_lm``, ``slu_finetuning``, ...), or None."""
    task_cfg = (state.get("cfg") or {}).get("task")  # a DictConfig, or a Namespace for legacy tasks
    name = task_cfg.get("_name") if hasattr(task_cfg, "get") else getattr(task_cfg, "_name", None)
    return name or getattr(state.get("args"), "task", None)


def describe(state, path):
    """``path`` with the stage that wrote it, e.g. ``t.pt (text teacher checkpoint, task
    sentence_prediction)``: what an error about a checkpoint given in the wrong place says."""
    task = task_name_of(state)
    if task is None:
        return str(path)
    stage = STAGE_OF_TASK.get(task)
    return f"{path} ({stage} checkpoint, task {task})" if stage else f"{path} (task {task})"


def arch_of(state, path):
    """The model name a checkpoint records; errors name the file."""
    try:
        return model_name_of(model_cfg_of(state))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def check_slu(state, path):
    """``state`` (read raw or by :func:`load_state`) when it is an SLU (``slu_ds2``)
    checkpoint; refused as what it is otherwise."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (a {type(state).__name__}, not a dict)")
    name = arch_of(state, path)
    if name != "slu_ds2" or state.get("cfg") is None:
        raise CheckpointError(f"{describe(state, path)}: expected an SLU (slu_ds2) checkpoint with a cfg, "
                              f"got model {name!r}")
    if not state["cfg"]["model"].get("speech_bert_args"):
        raise CheckpointError(f"{path}: its cfg does not record the speech BERT config (speech_bert_args)")
    return state
