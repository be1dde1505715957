"""FT-KD over unlabeled speech-text pairs (slu_finetuning --kd-unlabeled-data): the PT-KD
corpus joins the training split with the teacher's logits as its only target."""
import json
import math
import shutil

import pytest

from conftest import error_message, ft_kd_job, log_records, run, tool


def _lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


@pytest.mark.slow
def test_ft_kd_trains_on_the_pairs_beside_the_labeled_split(trained, tmp_path):
    args, log = ft_kd_job(trained, tmp_path / "ft", ["--kd-unlabeled-data", trained.paired, "--max-epoch", "1"])
    run(args, log)
    labeled = _lines(trained.manifests / "fsc" / "train.label")
    pairs = _lines(trained.manifests / "paired" / "train.ltr")
    assert f"FT-KD: {pairs} unlabeled pairs of {trained.paired} (train) join {labeled} labeled" in log.read_text()
    # every pair is a training sample (batches of 8), but only labeled ones are scored
    train = log_records(log, "train")[-1]
    assert int(train["train_num_updates"]) == math.ceil((labeled + pairs) / 8)
    assert float(train["train_kd_loss"]) > 0
    valid = log_records(log, "valid")[-1]
    assert 0 <= float(valid["valid_accuracy"]) <= 100
    # the model needs neither its teacher nor its pairs once trained: slu-kd-evaluate
    # loads it over the labeled data-bin alone
    out = tmp_path / "eval"
    ev = [tool("slu-kd-evaluate"), trained.data, "--path", tmp_path / "ft" / "checkpoint_best.pt",
          "--subset", "test", "--out-dir", out]
    assert run(ev, tmp_path / "eval.log", check=False) == 0, error_message(tmp_path / "eval.log")
    assert json.loads((out / "metrics.json").read_text())["n"] == _lines(trained.manifests / "fsc" / "test.label")


@pytest.mark.slow
def test_pairs_over_another_unit_dictionary_are_refused(trained, tmp_path):
    pairs = tmp_path / "pairs"
    shutil.copytree(trained.paired, pairs)
    units_dict = pairs / "units" / "dict.txt"
    units_dict.write_text("".join(units_dict.read_text().splitlines(keepends=True)[:-1]))
    args, log = ft_kd_job(trained, tmp_path / "ft", ["--kd-unlabeled-data", pairs, "--max-epoch", "1"])
    assert run(args, log, check=False) != 0
    message = error_message(log)
    assert str(units_dict) in message and str(trained.data / "units" / "dict.txt") in message
    assert not (tmp_path / "ft" / "checkpoint_last.pt").exists()


@pytest.mark.slow
def test_pairs_without_a_teacher_are_refused(trained, tmp_path):
    args, log = ft_kd_job(trained, tmp_path / "ft", ["--kd-unlabeled-data", trained.paired, "--max-epoch", "1"])
    teacher = args.index("--teacher-path")
    del args[teacher:teacher + 2]
    assert run(args, log, check=False) != 0
    assert "--kd-unlabeled-data" in error_message(log) and "--teacher-path" in error_message(log)
