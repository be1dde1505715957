"""The KD distances and the criteria's metrics: exact values on hand-built inputs, and
accuracies pooled over workers (what fairseq reports with several GPUs) rather than
averaged per worker."""
import math
from types import SimpleNamespace

import pytest
import torch
from fairseq import metrics
from fairseq.data import Dictionary

from slu_kd_plugin.criterions.slu_cross_entropy import SLUCrossEntropyCriterion
from slu_kd_plugin.criterions.slu_kd import SLUKDCriterion, logit_distance
from slu_kd_plugin.criterions.speech_text_kd import SpeechTextKDCriterion, vector_distance
from slu_kd_plugin.data.labels import UNLABELED, macro_f1

STUDENT = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
TEACHER = torch.tensor([[0.0, 2.0, 5.0], [1.0, -1.0, 0.0]])


def kl_by_hand(s, t, temp):
    ps = [math.exp(x / temp) for x in s]
    pt = [math.exp(x / temp) for x in t]
    ps, pt = [x / sum(ps) for x in ps], [x / sum(pt) for x in pt]
    return temp * temp * sum(b * math.log(b / a) for a, b in zip(ps, pt))


def test_l1_and_mse_sum_over_classes():
    assert logit_distance(STUDENT, TEACHER, "l1").tolist() == [3.0, 2.0]
    assert logit_distance(STUDENT, TEACHER, "mse").tolist() == [5.0, 2.0]


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0])
def test_kl_is_teacher_to_student_with_temperature(temp):
    got = logit_distance(STUDENT, TEACHER, "kl", temperature=temp)
    want = [kl_by_hand(s, t, temp) for s, t in zip(STUDENT.tolist(), TEACHER.tolist())]
    assert got.tolist() == pytest.approx(want, rel=1e-5)


def test_kl_is_zero_for_equal_or_shifted_logits():
    assert logit_distance(STUDENT, STUDENT, "kl").abs().max() < 1e-6
    assert logit_distance(STUDENT + 7.0, STUDENT, "kl", temperature=2.0).abs().max() < 1e-5


def test_vector_distances():
    a, b = torch.tensor([[1.0, 2.0], [1.0, 0.0]]), torch.tensor([[3.0, 2.0], [-1.0, 0.0]])
    assert vector_distance(a, b, "mse").tolist() == [2.0, 2.0]  # mean over dims
    assert vector_distance(a, b, "l1").tolist() == [1.0, 1.0]
    assert vector_distance(a, b, "cosine").tolist() == pytest.approx([1 - 7 / 65 ** 0.5, 2.0])
    assert vector_distance(a, a, "cosine").abs().max() < 1e-6


def reduce(criterion_cls, *logging_outputs, calls=1):
    """Smoothed values after fairseq reduces these logging outputs ``calls`` times
    (once per log interval) in one aggregation."""
    with metrics.aggregate() as agg:
        for _ in range(calls):
            criterion_cls.reduce_metrics(list(logging_outputs))
        return agg.get_smoothed_values()


def slu_log(n, correct, action, loss, **extra):
    return dict(loss=torch.tensor(loss), ce_loss=torch.tensor(loss), ntokens=10 * n, nsentences=n,
                sample_size=n, _correct=correct, _slot_action=action, **extra)


# worker 1: 9 of 10 right; worker 2: 0 of 2. Pooled 75%, per-worker mean 45%.
WORKERS = (slu_log(10, 9, 10, 1.0), slu_log(2, 0, 1, 3.0))


@pytest.mark.parametrize("calls", [1, 3])
def test_slu_accuracy_is_pooled_over_workers(calls):
    out = reduce(SLUCrossEntropyCriterion, *WORKERS, calls=calls)
    assert out["accuracy"] == 75.0
    assert out["acc_action"] == 91.67
    assert out["loss"] == pytest.approx(4.0 / 12 / math.log(2), abs=1e-3)
    assert not any(k.startswith("_") for k in out)


def test_kd_criterion_pools_accuracy_and_kd_loss():
    logs = [dict(WORKERS[0], kd_loss=torch.tensor(5.0)), dict(WORKERS[1], kd_loss=torch.tensor(1.0))]
    out = reduce(SLUKDCriterion, *logs)
    assert out["accuracy"] == 75.0 and out["acc_action"] == 91.67
    assert out["kd_loss"] == pytest.approx(6.0 / 12 / math.log(2), abs=1e-3)  # base 2, like loss


def test_speech_text_kd_pools_mlm_and_distance():
    def log(n, n_masked, mlm, dist):
        return dict(loss=torch.tensor(1.0), _mlm_sum=torch.tensor(mlm), _n_masked=n_masked,
                    _dist_sum=torch.tensor(dist), ntokens=100, nsentences=n, sample_size=n)

    out = reduce(SpeechTextKDCriterion, log(8, 100, 100.0, 8.0), log(2, 10, 50.0, 10.0))
    assert out["mlm_loss"] == pytest.approx(150.0 / 110 / math.log(2), rel=1e-5)
    assert out["kd_dist"] == pytest.approx(18.0 / 10, rel=1e-5)


# --- forward on a tiny fake task and model -----------------------------------------

LABELS = ["a|x|k", "a|y|l", "b|x|k"]


def fake_task():
    d = Dictionary()
    for label in LABELS:
        d.add_symbol(label)
    return SimpleNamespace(target_dictionary=d, cfg=SimpleNamespace(slot_separator="|", slot_names="action,object,location"))


class FakeModel:
    def __init__(self, logits, training=True):
        self.logits, self.training = logits, training

    def __call__(self, **net_input):
        return {"logits": self.logits}

    @staticmethod
    def get_logits(net_output):
        return net_output["logits"]


def sample(target, teacher=None):
    s = {"net_input": {}, "target": torch.tensor(target).view(-1, 1), "ntokens": 30}
    if teacher is not None:
        s["teacher_logits"] = teacher
    return s


LOGITS = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])  # predicts 0, 0, 2


def test_slu_criterion_counts_correct_intents_and_slots():
    loss, n, log = SLUCrossEntropyCriterion(fake_task())(FakeModel(LOGITS), sample([0, 1, 0]))
    assert n == 3 and log["_correct"] == 1
    # pred 0 vs 1: same action; pred 2 ("b|x|k") vs 0 ("a|x|k"): same object and location
    assert (log["_slot_action"], log["_slot_object"], log["_slot_location"]) == (2, 2, 2)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(LOGITS, torch.tensor([0, 1, 0]),
                                                                          reduction="sum").item())


def test_kd_criterion_adds_weighted_distance_to_teacher():
    teacher = LOGITS + torch.tensor([[1.0, 0.0, 0.0]] * 3)  # L1 distance 1 per utterance
    ce, _, _ = SLUCrossEntropyCriterion(fake_task())(FakeModel(LOGITS), sample([0, 1, 0]))
    crit = SLUKDCriterion(fake_task(), kd_distance="l1", kd_weight=0.5, kd_temperature=1.0)
    loss, _, log = crit(FakeModel(LOGITS), sample([0, 1, 0], teacher))
    assert loss.item() == pytest.approx(ce.item() + 0.5 * 3.0)
    assert log["kd_loss"].item() == pytest.approx(3.0)


def test_unlabeled_pairs_get_the_kd_term_only():
    # FT-KD's unlabeled pairs (target UNLABELED): no cross-entropy, not counted in accuracy,
    # but their KD term is in the loss and they count in the sample size it is divided by
    teacher = LOGITS + torch.tensor([[1.0, 0.0, 0.0]] * 3)
    crit = SLUKDCriterion(fake_task(), kd_distance="l1", kd_weight=1.0, kd_temperature=1.0)
    loss, n, log = crit(FakeModel(LOGITS), sample([0, UNLABELED, 2], teacher))
    ce = torch.nn.functional.cross_entropy(LOGITS[[0, 2]], torch.tensor([0, 2]), reduction="sum")
    assert loss.item() == pytest.approx(ce.item() + 3.0)
    assert (n, log["sample_size"], log["nsentences"], log["_correct"]) == (3, 3, 2, 2)
    assert sum(log[f"_true_{c}"] for c in range(3)) == 2


def test_kd_criterion_needs_a_teacher_only_in_training():
    crit = SLUKDCriterion(fake_task(), kd_distance="l1", kd_weight=1.0, kd_temperature=1.0)
    loss, _, log = crit(FakeModel(LOGITS, training=False), sample([0, 1, 0]))
    assert "kd_loss" not in log
    with pytest.raises(ValueError, match="--teacher-path"):
        crit(FakeModel(LOGITS, training=True), sample([0, 1, 0]))


def _counts_log(refs, preds, n_classes=3):
    crit = SLUCrossEntropyCriterion(fake_task())
    logits = torch.nn.functional.one_hot(torch.tensor(preds), n_classes).float() * 5
    return crit(FakeModel(logits), sample(refs))[2]


def test_macro_f1_pools_class_counts_over_workers_and_batches():
    # two workers (or two batches of an epoch): F1 of each part averaged would be wrong
    parts = [([0, 1, 0, 2], [0, 0, 0, 2]), ([1, 1], [1, 2])]
    refs = [r for part in parts for r in part[0]]
    preds = [p for part in parts for p in part[1]]
    out = reduce(SLUCrossEntropyCriterion, *(_counts_log(r, p) for r, p in parts))
    assert out["macro_f1"] == pytest.approx(macro_f1(refs, preds, 3), abs=0.01)
    assert out["accuracy"] == pytest.approx(100 * 4 / 6, abs=0.01)
    # 0: P 2/3 R 1 -> 0.8; 1: P 1 R 1/3 -> 0.5; 2: P 1/2 R 1 -> 2/3
    assert out["macro_f1"] == pytest.approx(100 * (0.8 + 0.5 + 2 / 3) / 3, abs=0.01)


def test_macro_f1_ignores_intents_never_seen_or_predicted():
    out = reduce(SLUCrossEntropyCriterion, _counts_log([0, 0], [0, 0]))
    assert out["macro_f1"] == 100.0  # classes 1 and 2 occur nowhere: not counted as 0
    # a meter fairseq has reset keeps its key with a count of 0: still not a class
    out = reduce(SLUCrossEntropyCriterion, dict(_counts_log([0, 0], [0, 0]), _pred_2=0, _true_2=0))
    assert out["macro_f1"] == 100.0
