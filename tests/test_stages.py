"""Every training stage of the recipe, run by the real fairseq-train on a tiny pipeline:
losses fall, checkpoints exist, each stage starts from the one before, resume works,
evaluation tools agree, and wrong inputs stop with errors that say what is wrong."""
import json
import math
import shutil

import pytest

from conftest import STAGE_ORDER, error_message, log_records, run_all, tool, PLUGIN

pytestmark = pytest.mark.slow


def state_of(path):
    import slu_kd_plugin
    slu_kd_plugin.register()  # allow-lists fairseq's checkpoint types
    from fairseq import checkpoint_utils

    return checkpoint_utils.load_checkpoint_to_cpu(str(path))


def weights(path, prefix):
    """{name without prefix: tensor} of a checkpoint's model, lm head left out."""
    model = state_of(path)["model"]
    return {k[len(prefix):]: v for k, v in model.items() if k.startswith(prefix) and ".lm_head." not in k}


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_stage_trains_and_saves(trained, stage):
    losses = [float(r["train_loss"]) for r in log_records(trained.log(stage), "train")]
    assert len(losses) == 5, f"expected 5 epochs in {trained.log(stage)}"
    assert all(math.isfinite(x) for x in losses), losses
    assert losses[-1] < losses[0], f"{stage}: loss did not fall: {losses}"
    assert trained.ckpt(stage, "best").is_file() and trained.ckpt(stage, "last").is_file()


def test_teacher_starts_from_text_model(trained):
    log = trained.log("teacher").read_text()
    assert f"Loaded checkpoint {trained.ckpt('text_model')}" in log


def test_pt_kd_starts_from_speech_bert(trained):
    sb = weights(trained.ckpt("speech_bert"), "encoder.")
    pt = weights(trained.ckpt("pt_kd"), "bert.encoder.")
    assert sb.keys() == pt.keys()
    # 25 Adam steps of lr 2e-4 move a weight by ~0.005; another model's differ by ~0.1
    for name, w in sb.items():
        assert (pt[name] - w).abs().max() < 0.01, name
    assert state_of(trained.ckpt("pt_kd"))["cfg"]["model"]["speech_bert_path"] == str(trained.ckpt("speech_bert"))


def test_am_pt_runs_over_the_frozen_pt_kd_speech_bert(trained):
    pt = weights(trained.ckpt("pt_kd"), "bert.")
    am = weights(trained.ckpt("am_pt"), "speech_bert.")
    assert am.keys() == pt.keys()
    assert all(am[k].equal(pt[k]) for k in pt)


def test_ft_kd_starts_from_pt_kd_and_am_pt(trained):
    assert f"DS2 block initialized from {trained.ckpt('am_pt')}" in trained.log("ft_kd").read_text()
    pt = weights(trained.ckpt("pt_kd"), "bert.")
    ft = weights(trained.ckpt("ft_kd"), "speech_bert.")
    assert ft.keys() == pt.keys() and all(ft[k].equal(pt[k]) for k in pt)
    assert not any(k.startswith("teacher") for k in state_of(trained.ckpt("ft_kd"))["model"])


def greedy_cer(ckpt, data, manifests, split):
    """Character error rate (%) of a ds2_ctc checkpoint on ``split``, recomputed here:
    greedy CTC decoding (best symbol per frame, repeats merged, blanks dropped) against
    the split's letters as the manifest's ``.ltr`` file writes them."""
    import editdistance
    import torch

    import slu_kd_plugin

    slu_kd_plugin.register()  # fairseq knows the plugin
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)], arg_overrides={"data": str(data)})
    model, chars = models[0].eval(), task.target_dictionary
    with open(manifests / f"{split}.ltr") as f:
        refs = [line.split() for line in f]
    task.load_dataset(split)
    errors = 0
    # batches as fairseq-train's validation forms them (--batch-size 8), so padding is alike
    for sample in task.get_batch_iterator(task.dataset(split), max_sentences=8).next_epoch_itr(shuffle=False):
        with torch.no_grad():
            out = model(**sample["net_input"])
        best = out["encoder_out"].argmax(-1).t()  # (B, T') symbol per output frame
        lengths = (~out["padding_mask"]).sum(-1).tolist()
        for uid, frames, n in zip(sample["id"].tolist(), best, lengths):
            hyp = [chars[s] for s in frames[:n].unique_consecutive().tolist() if s != chars.bos()]  # bos = blank
            errors += editdistance.eval(hyp, refs[uid])
    return 100.0 * errors / sum(len(r) for r in refs)


def test_am_pt_validation_reports_cer(trained):
    valid = log_records(trained.log("am_pt"), "valid")
    assert len(valid) == 5
    # the last epoch's uer is the CER of the model it saved, decoded and scored here
    cer = greedy_cer(trained.ckpt("am_pt", "last"), trained.paired, trained.manifests / "paired", "valid")
    assert float(valid[-1]["valid_uer"]) == pytest.approx(cer, abs=0.001)
    uers = [float(r["valid_uer"]) for r in valid]
    assert float(valid[-1]["valid_best_uer"]) == min(uers)  # --best-checkpoint-metric uer: lower is better


def test_ft_kd_resumes_from_last_checkpoint(trained, tmp_path):
    save = tmp_path / "ft_kd"
    shutil.copytree(trained.ck / "ft_kd", save)
    before = log_records(save / "train.log", "train")[-1]
    rc, log = trained.train("ft_kd", save, extra=["--max-epoch", "7"])
    assert f"Loaded checkpoint {save / 'checkpoint_last.pt'} (epoch 6 @ {before['train_num_updates']} updates)" \
        in log.read_text()
    after = log_records(log, "train")
    assert [r["epoch"] for r in after] == [6, 7]
    assert int(after[0]["train_num_updates"]) > int(before["train_num_updates"])


@pytest.fixture(scope="module")
def evaluation(trained, tmp_path_factory):
    """fairseq-validate and slu-kd-evaluate on the test split, side by side."""
    out = tmp_path_factory.mktemp("eval")
    ckpt = trained.ckpt("ft_kd")
    validate = [tool("fairseq-validate"), trained.data, "--user-dir", PLUGIN, "--cpu", "--task", "slu_finetuning",
                "--path", ckpt, "--valid-subset", "test", "--batch-size", "8", "--log-format", "json"]
    evaluate = [tool("slu-kd-evaluate"), trained.data, "--path", ckpt, "--subset", "test", "--out-dir", out / "eval"]
    codes = run_all((validate, out / "validate.log"), (evaluate, out / "evaluate.log"), check=False)
    return dict(zip(("validate_rc", "evaluate_rc"), codes), out=out)


def test_fairseq_validate_reports_accuracy(trained, evaluation):
    log = evaluation["out"] / "validate.log"
    assert evaluation["validate_rc"] == 0, error_message(log)
    assert evaluation["evaluate_rc"] == 0, error_message(evaluation["out"] / "evaluate.log")
    (record,) = log_records(log, "test")
    # the share of test utterances whose predicted intent (slu-kd-evaluate's predictions,
    # one per utterance) is the manifest's label
    with open(trained.manifests / "fsc" / "test.label") as f:
        labels = [line.strip() for line in f]
    with open(evaluation["out"] / "eval" / "predictions.jsonl") as f:
        predicted = {row["id"]: row["prediction"] for row in map(json.loads, f)}
    assert sorted(predicted) == list(range(len(labels)))
    right = sum(predicted[i] == label for i, label in enumerate(labels))
    assert float(record["test_accuracy"]) == pytest.approx(100.0 * right / len(labels), abs=0.01)


def test_evaluate_writes_metrics_predictions_and_plot(trained, evaluation):
    out = evaluation["out"] / "eval"
    assert evaluation["evaluate_rc"] == 0, error_message(evaluation["out"] / "evaluate.log")
    n_test = sum(1 for _ in open(trained.manifests / "fsc" / "test.label"))
    assert json.loads((out / "metrics.json").read_text())["n"] == n_test
    assert len((out / "predictions.jsonl").read_text().splitlines()) == n_test
    assert (out / "confusion.png").stat().st_size > 0


def test_evaluate_agrees_with_fairseq_validate(evaluation):
    assert evaluation["validate_rc"] == 0 and evaluation["evaluate_rc"] == 0
    (record,) = log_records(evaluation["out"] / "validate.log", "test")
    metrics = json.loads((evaluation["out"] / "eval" / "metrics.json").read_text())
    # both over every test utterance: slot accuracies too, so a tiny model's 0% cannot hide it
    assert metrics["accuracy"] == pytest.approx(float(record["test_accuracy"]), abs=0.01)
    assert metrics["macro_f1"] == pytest.approx(float(record["test_macro_f1"]), abs=0.01)
    for slot, acc in metrics["slot_accuracy"].items():
        assert acc == pytest.approx(float(record[f"test_acc_{slot}"]), abs=0.01), slot


def test_ft_kd_refuses_teacher_with_reordered_labels(trained, tmp_path):
    teacher = tmp_path / "teacher" / "checkpoint_best.pt"
    teacher.parent.mkdir()
    shutil.copy(trained.ckpt("teacher"), teacher)
    labels = (trained.data / "label" / "dict.txt").read_text().splitlines()
    (teacher.parent / "label_dict.txt").write_text("\n".join(labels[::-1]) + "\n")
    rc, log = trained.train("ft_kd", tmp_path / "ft", extra=["--teacher-path", teacher, "--max-epoch", "1"],
                            check=False)
    assert rc != 0
    assert "ordered differently" in error_message(log)
    assert not (tmp_path / "ft" / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("stage,option,wrong", [
    ("pt_kd", "--speech-bert-path", "am_pt"),   # an AM-PT checkpoint where a speech BERT goes
    ("ft_kd", "--am-path", "teacher"),          # a text teacher where an AM-PT checkpoint goes
])
def test_wrong_kind_of_checkpoint_is_named(trained, tmp_path, stage, option, wrong):
    path = trained.ckpt(wrong)
    rc, log = trained.train(stage, tmp_path / stage, extra=[option, path, "--max-epoch", "1"], check=False)
    assert rc != 0
    assert str(path) in error_message(log), f"the error does not name {path}:\n{error_message(log)}"
