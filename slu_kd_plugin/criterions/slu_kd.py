"""FT-KD loss: cross-entropy on the intent plus a distance between the student's and
the text teacher's logits on the same utterance (weight 1, L1 in the paper)."""
from dataclasses import dataclass, field

import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.dataclass import ChoiceEnum

from ._metrics import log_loss, summer
from .slu_cross_entropy import SLUCrossEntropyConfig, SLUCrossEntropyCriterion

LOGIT_DISTANCES = ChoiceEnum(["l1", "mse", "kl"])


@dataclass
class SLUKDConfig(SLUCrossEntropyConfig):
    kd_distance: LOGIT_DISTANCES = field(
        default="l1", metadata={"help": "l1 (paper: summed over classes), mse (summed over classes), "
                                "or kl (KL(teacher || student) on temperature-softened distributions, x T^2)"}
    )
    kd_weight: float = field(default=1.0, metadata={"help": "weight of the KD term (paper: 1)"})
    kd_temperature: float = field(default=1.0, metadata={"help": "temperature for kd_distance=kl"})


def logit_distance(student, teacher, kind, temperature=1.0):
    """Per-utterance distance (B,) between logit vectors."""
    if kind == "l1":
        return (student - teacher).abs().sum(-1)
    if kind == "mse":
        return (student - teacher).pow(2).sum(-1)
    t = temperature
    log_p_s = F.log_softmax(student / t, -1)
    log_p_t = F.log_softmax(teacher / t, -1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1) * t * t


@register_criterion("slu_kd", dataclass=SLUKDConfig)
class SLUKDCriterion(SLUCrossEntropyCriterion):
    def __init__(self, task, kd_distance, kd_weight, kd_temperature):
        super().__init__(task)
        self.kd_distance, self.kd_weight, self.kd_temperature = kd_distance, kd_weight, kd_temperature

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        logits = model.get_logits(net_output).float()
        target = sample["target"].view(-1)
        loss, log = self.compute_loss(logits, target, sample)
        teacher = sample.get("teacher_logits")
        if teacher is None:
            if model.training:
                raise ValueError("slu_kd needs teacher logits in training: pass --teacher-path")
            return loss, target.numel(), log  # validation measures the student alone
        kd = logit_distance(logits, teacher.float(), self.kd_distance, self.kd_temperature).sum()
        loss = loss + self.kd_weight * kd
        log.update(loss=loss.data, kd_loss=kd.data)
        return loss, target.numel(), log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        SLUCrossEntropyCriterion.reduce_metrics(logging_outputs)
        if any("kd_loss" in log for log in logging_outputs):
            total = summer(logging_outputs)
            # base 2 like loss and ce_loss, so loss = ce_loss + kd_weight * kd_loss
            log_loss("kd_loss", total("kd_loss"), total("sample_size"))
