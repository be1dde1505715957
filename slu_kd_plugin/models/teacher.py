"""The FT-KD text teacher: a frozen classifier whose logits on each transcript are the
student's KD targets, behind one interface whatever kind it is.

* fairseq's own ``sentence_prediction`` RoBERTa reads DATA/input0 (the transcripts
  binarized with the data-bin's text dictionary);
* a Hugging Face encoder trained by ``hf_text_classification`` (``hf_text_classifier``)
  tokenizes the transcripts as written (DATA/text/{split}.txt) with its own tokenizer.

The kind is read from the checkpoint.  Whatever it is, its classes must be the
student's, in the student's order: :func:`load_teacher` refuses anything else.
"""
import os

import torch
from fairseq.data import Dictionary

from ..checkpoints import CheckpointError, arch_of, describe, load_state, task_name_of
from ..data.binarized import encoder_input, load_dict, load_split, transcript_tokens
from ..data.labels import check_same_labels, label_symbols, load_label_dict
from ..data.text_targets import HEAD_NAME, run_text_model, text_model_output
from .hf_text import HF_ARCH, load_hf_classifier
from .pretrained import freeze, roberta_from_state

TEACHER_TASKS = ("sentence_prediction", "hf_text_classification")


class TextTeacher:
    """A frozen text classifier: :meth:`tokens` of a split, :meth:`logits` of a batch."""

    def __init__(self, model, pad, max_positions):
        self.model, self.pad, self.max_positions = model, pad, max_positions

    def tokens(self, split):
        """(token dataset, where it was read) of the teacher's input for each utterance."""
        raise NotImplementedError

    @torch.no_grad()
    def logits(self, tokens):
        """(B, n_classes) float logits of a right-padded (B, T) token batch."""
        model = self.model.eval()  # frozen: no dropout, no gradient
        tokens = tokens.to(next(model.parameters()).device)
        return text_model_output(model, tokens, "logits", self.pad).float()

    def split_logits(self, dataset, batch_size, desc="teacher logits"):
        """Per-utterance logits of a token dataset: the precomputed FT-KD targets."""
        return run_text_model(self.model, dataset, self.pad, "logits", batch_size, desc=desc)


class RobertaTeacher(TextTeacher):
    """fairseq's sentence_prediction RoBERTa over the binarized DATA/input0."""

    def __init__(self, model, text_dict, data, max_positions):
        super().__init__(model, text_dict.pad(), max_positions)
        self.text_dict, self.data = text_dict, data

    def tokens(self, split):
        text = load_split(self.data, "input0", split, self.text_dict)
        return encoder_input(text, self.text_dict, self.max_positions), os.path.join(self.data, "input0", split)


class HFTeacher(TextTeacher):
    """A Hugging Face encoder over the transcripts as written, with its own tokenizer."""

    def __init__(self, model, tokenizer, max_positions, text_dir, data):
        super().__init__(model, tokenizer.pad_token_id, max_positions)
        self.tokenizer, self.text_dir, self.data = tokenizer, text_dir, data

    def tokens(self, split):
        return transcript_tokens(self.text_dir, self.data, split, self.tokenizer, self.max_positions,
                                 "--teacher-text-dir")


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
