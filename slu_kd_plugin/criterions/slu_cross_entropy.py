"""Intent classification loss with accuracy, per-slot accuracy and macro-F1.

Metrics are logged as raw counts (``_correct``, ``_slot_<name>``, and per intent
``_tp_<i>``, ``_pred_<i>``, ``_true_<i>``) and turned into percentages by
``log_derived``, so they stay exact when logging outputs of several workers, or of
every batch of an epoch, are summed: a macro-F1 averaged over batches would not be.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..data.labels import UNLABELED, f1_of_counts, label_symbols, slot_names, slot_table
from ._metrics import log_loss, summer


@dataclass
class SLUCrossEntropyConfig(FairseqDataclass):
    pass


@register_criterion("slu_cross_entropy", dataclass=SLUCrossEntropyConfig)
class SLUCrossEntropyCriterion(FairseqCriterion):
    def __init__(self, task):
        super().__init__(task)
        separator = task.cfg.slot_separator
        table = slot_table(task.target_dictionary, separator)
        self.slot_names = slot_names(label_symbols(task.target_dictionary), task.cfg.slot_names, separator)
        self.register_buffer("slots", torch.tensor(table) if table else None, persistent=False)

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        logits = model.get_logits(net_output).float()
        target = sample["target"].view(-1)
        loss, logging_output = self.compute_loss(logits, target, sample)
        return loss, target.numel(), logging_output

    def compute_loss(self, logits, target, sample):
        """Summed CE and the counts every SLU criterion logs, over the utterances with an
        intent (FT-KD's unlabeled pairs have none); the sample size counts them all."""
        labeled = target.ne(UNLABELED)
        ce = F.cross_entropy(logits, target, reduction="sum", ignore_index=UNLABELED)
        logits, target = logits[labeled], target[labeled]
        pred = logits.argmax(-1)
        log = {
            "loss": ce.data,
            "ce_loss": ce.data,
            "ntokens": sample["ntokens"],
            "nsentences": target.numel(),
            "sample_size": labeled.numel(),
            "_correct": int((pred == target).sum()),
        }
        # fairseq-validate leaves the criterion (and this buffer) on the CPU: only
        # fairseq-train moves it to the GPU
        slots = self.slots.to(pred.device) if self.slot_names else None
        for j, name in enumerate(self.slot_names):
            log[f"_slot_{name}"] = int((slots[pred, j] == slots[target, j]).sum())
        log.update(_class_counts(pred, target, logits.size(-1)))
        return ce, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = summer(logging_outputs)
        n = total("sample_size")
        log_loss("loss", total("loss"), n)
        log_loss("ce_loss", total("ce_loss"), n)
        metrics.log_scalar("_nsent", total("nsentences"))
        keys = {k for log in logging_outputs for k in log if k.startswith("_")}
        for key in sorted(keys):
            metrics.log_scalar(key, total(key))
            name = _accuracy_name(key)
            if name:
                metrics.log_derived(name, lambda m, k=key: round(100.0 * m[k].sum / max(m["_nsent"].sum, 1), 2))
        if any(k.startswith("_true_") for k in keys):
            metrics.log_derived("macro_f1", _macro_f1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _class_counts(pred, target, n_classes):
    """Per-intent counts of hits, predictions and references (for macro-F1), zeros included:
    fairseq sums logging outputs across workers as one tensor of their values, so every
    batch on every worker must log the same keys (sparse keys desynchronize the
    all-reduce: gloo "Received data size doesn't match expected size")."""
    counts = {}
    for kind, values in (("tp", target[pred == target]), ("pred", pred), ("true", target)):
        for c, n in enumerate(torch.bincount(values, minlength=n_classes).tolist()):
            counts[f"_{kind}_{c}"] = n
    return counts


def _macro_f1(meters):
    """Macro-F1 of the summed class counts (data.labels.f1_of_counts, as slu-kd-evaluate)."""
    def count(kind, c):
        key = f"_{kind}_{c}"
        return meters[key].sum if key in meters else 0

    classes = sorted({int(k.rsplit("_", 1)[1]) for k in meters.keys() if k.startswith(("_pred_", "_true_"))})
    # a meter can be there with a count of 0 (fairseq resets meters between log intervals)
    return round(f1_of_counts((count("tp", c), count("pred", c), count("true", c)) for c in classes), 2)


def _accuracy_name(count_key):
    if count_key == "_correct":
        return "accuracy"
    if count_key.startswith("_slot_"):
        return "acc_" + count_key[len("_slot_"):]
    return None
