"""Intent classification loss with accuracy and per-slot accuracy.

Metrics are logged as raw counts (``_correct``, ``_slot_<name>``) and turned into
percentages by ``log_derived``, so they stay exact when logging outputs of several
workers are summed.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from fairseq import metrics, utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..data.labels import slot_table


@dataclass
class SLUCrossEntropyConfig(FairseqDataclass):
    pass


@register_criterion("slu_cross_entropy", dataclass=SLUCrossEntropyConfig)
class SLUCrossEntropyCriterion(FairseqCriterion):
    def __init__(self, task):
        super().__init__(task)
        table = slot_table(task.target_dictionary, task.cfg.slot_separator)
        self.slot_names = _slot_names(task.cfg.slot_names, table)
        self.register_buffer("slots", torch.tensor(table) if table else None, persistent=False)

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        logits = model.get_logits(net_output).float()
        target = sample["target"].view(-1)
        loss, logging_output = self.compute_loss(logits, target, sample)
        return loss, target.numel(), logging_output

    def compute_loss(self, logits, target, sample):
        """Summed CE and the counts every SLU criterion logs."""
        ce = F.cross_entropy(logits, target, reduction="sum")
        pred = logits.argmax(-1)
        log = {
            "loss": ce.data,
            "ce_loss": ce.data,
            "ntokens": sample["ntokens"],
            "nsentences": target.numel(),
            "sample_size": target.numel(),
            "_correct": int((pred == target).sum()),
        }
        for j, name in enumerate(self.slot_names):
            log[f"_slot_{name}"] = int((self.slots[pred, j] == self.slots[target, j]).sum())
        return ce, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return utils.item(sum(log.get(key, 0) for log in logging_outputs))

        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1) / math.log(2), n, round=3)
        metrics.log_scalar("ce_loss", total("ce_loss") / max(n, 1) / math.log(2), n, round=3)
        metrics.log_scalar("_nsent", total("nsentences"))
        keys = {k for log in logging_outputs for k in log if k.startswith("_")}
        for key in sorted(keys):
            metrics.log_scalar(key, total(key))
            name = _accuracy_name(key)
            if name:
                metrics.log_derived(name, lambda m, k=key: round(100.0 * m[k].sum / max(m["_nsent"].sum, 1), 2))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _slot_names(configured, table):
    """The configured names when they fit the labels' slot count, else slot0, slot1..."""
    if not table:
        return []
    names = configured.split(",")
    return names if len(names) == len(table[0]) else [f"slot{i}" for i in range(len(table[0]))]


def _accuracy_name(count_key):
    if count_key == "_correct":
        return "accuracy"
    if count_key.startswith("_slot_"):
        return "acc_" + count_key[len("_slot_"):]
    return None
