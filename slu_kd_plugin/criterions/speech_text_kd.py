"""PT-KD loss: masked LM on span-masked units + distance between the speech BERT's
``<s>`` vector and the frozen text model's vector of the same utterance."""
import logging
import math
from dataclasses import dataclass, field

import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ._metrics import log_loss, summer

logger = logging.getLogger(__name__)

VECTOR_DISTANCES = ChoiceEnum(["mse", "l1", "cosine"])


@dataclass
class SpeechTextKDCriterionConfig(FairseqDataclass):
    kd_distance: VECTOR_DISTANCES = field(
        default="mse", metadata={"help": "distance between speech and text vectors (the paper does not say; mse "
                                 "is the natural choice; cosine for unit-norm sentence embeddings)"}
    )
    kd_weight: float = field(default=1.0, metadata={"help": "weight of the vector-matching term"})
    mlm_weight: float = field(default=1.0, metadata={"help": "weight of the masked-LM term (0: KD only)"})


def vector_distance(a, b, kind):
    """Per-utterance distance, shape (B,): mean over dimensions for mse/l1."""
    if kind == "mse":
        return (a - b).pow(2).mean(-1)
    if kind == "l1":
        return (a - b).abs().mean(-1)
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


@register_criterion("speech_text_kd", dataclass=SpeechTextKDCriterionConfig)
class SpeechTextKDCriterion(FairseqCriterion):
    def __init__(self, task, kd_distance, kd_weight, mlm_weight):
        super().__init__(task)
        self.kd_distance, self.kd_weight, self.mlm_weight = kd_distance, kd_weight, mlm_weight
        if kd_distance != "cosine" and getattr(task, "text_vector", None) == "mean-normalized":
            # per-dimension mse/l1 to a unit vector is ~1/dim of the MLM term (MiniLM: 1/384),
            # so KD barely moves the model; cosine is the geometry the sentence encoder was
            # trained in, and ignores the speech vector's norm
            logger.warning(f"--kd-distance {kd_distance} to unit-norm text vectors (mean-normalized): "
                           "the KD term is tiny beside masked LM; --kd-distance cosine matches them")

    def forward(self, model, sample, reduce=True):
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        lm_logits, speech_vec = model(**sample["net_input"], masked_tokens=masked)
        n_masked = int(masked.sum())
        mlm_sum = F.cross_entropy(lm_logits.float(), target[masked], reduction="sum")
        dist = vector_distance(speech_vec.float(), sample["text_vector"].float(), self.kd_distance)
        nsent = target.size(0)
        # mlm as a per-token mean scaled to the batch, so both terms are "per utterance"
        # and the sample_size (utterances) normalizes them alike
        loss = self.mlm_weight * mlm_sum / max(n_masked, 1) * nsent + self.kd_weight * dist.sum()
        logging_output = {
            "loss": loss.data,
            "_mlm_sum": mlm_sum.data,
            "_n_masked": n_masked,
            "_dist_sum": dist.sum().data,
            "ntokens": sample["ntokens"],
            "nsentences": nsent,
            "sample_size": nsent,
        }
        return loss, nsent, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = summer(logging_outputs)
        log_loss("loss", total("loss"), total("sample_size"))
        metrics.log_scalar("_mlm_sum", total("_mlm_sum"))
        metrics.log_scalar("_n_masked", total("_n_masked"))
        metrics.log_scalar("_dist_sum", total("_dist_sum"))
        metrics.log_scalar("_nsent", total("nsentences"))
        metrics.log_derived("mlm_loss", lambda m: _ratio(m, "_mlm_sum", "_n_masked") / math.log(2))
        metrics.log_derived("kd_dist", lambda m: _ratio(m, "_dist_sum", "_nsent"))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _ratio(meters, num, den):
    d = meters[den].sum
    return meters[num].sum / d if d > 0 else 0.0
