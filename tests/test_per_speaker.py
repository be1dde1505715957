"""Issue #9: accuracy per test voice, from the manifests' {split}.spk and speakers.tsv
through slu-kd-evaluate's metrics.json to the demo's and the recipes' results."""
import json
import shutil

import pytest

from conftest import error_message, run, tool
from slu_kd_plugin.cli import results


def lines(path):
    return path.read_text().splitlines()


def grouped_accuracy(predictions, speaker_of):
    """{speaker: (n, accuracy %)} recomputed from predictions.jsonl."""
    counts = {}
    for line in lines(predictions):
        p = json.loads(line)
        n, right = counts.get(speaker_of[p["id"]], (0, 0))
        counts[speaker_of[p["id"]]] = (n + 1, right + (p["reference"] == p["prediction"]))
    return {s: (n, 100.0 * right / n) for s, (n, right) in counts.items()}


def evaluate(trained, out, manifest_dir=None):
    args = [tool("slu-kd-evaluate"), trained.data, "--path", trained.ckpt("ft_kd"), "--subset", "test",
            "--out-dir", out]
    if manifest_dir:
        args += ["--manifest-dir", manifest_dir]
    log = out.parent / f"{out.name}.log"
    assert run(args, log, check=False) == 0, error_message(log)
    return json.loads((out / "metrics.json").read_text()), log


def assert_per_speaker_matches_predictions(metrics, out, manifest_dir):
    speaker_of = dict(zip(lines(manifest_dir / "test.id"), lines(manifest_dir / "test.spk")))
    expected = grouped_accuracy(out / "predictions.jsonl", speaker_of)
    got = metrics["per_speaker"]
    assert sorted(got) == sorted(expected) == sorted(set(speaker_of.values()))
    for spk, (n, acc) in expected.items():
        assert got[spk]["utterances"] == n and got[spk]["accuracy"] == pytest.approx(acc), spk
    assert sum(r["utterances"] for r in got.values()) == metrics["n"]


def test_evaluate_scores_each_test_speaker(trained, tmp_path):
    man = trained.manifests / "fsc"
    # slu-kd-prepare wrote the speakers of the FSC-layout corpus, line-aligned
    assert len(lines(man / "test.spk")) == len(lines(man / "test.id"))
    metrics, log = evaluate(trained, tmp_path / "real", man)
    assert_per_speaker_matches_predictions(metrics, tmp_path / "real", man)
    assert "accuracy per speaker" in log.read_text()
    assert "DEBUG:matplotlib" not in log.read_text()  # the confusion plot's font search stays out of the log

    # the tiny corpus has one test speaker: split its lines between two named voices so
    # a per-speaker score that ignored the grouping would not match
    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(man / "test.id", two / "test.id")
    n = len(lines(man / "test.id"))
    (two / "test.spk").write_text("".join(("even\n", "odd\n")[i % 2] for i in range(n)))
    (two / "speakers.tsv").write_text("even\tflite:slt (female)\n")
    metrics, log = evaluate(trained, tmp_path / "two_eval", two)
    assert_per_speaker_matches_predictions(metrics, tmp_path / "two_eval", two)
    assert metrics["per_speaker"]["even"]["voice"] == "flite:slt (female)"
    assert metrics["per_speaker"]["odd"]["voice"] is None
    assert "flite:slt (female)" in log.read_text()

    # older manifests (no .spk): evaluation works and says nothing per speaker
    (two / "test.spk").unlink()
    metrics, _ = evaluate(trained, tmp_path / "old_eval", two)
    assert "per_speaker" not in metrics and metrics["n"] == n


def test_evaluate_several_checkpoints_and_subsets_in_one_process(trained, tmp_path, capsys):
    """The grid's and the recipes' evaluation: one slu-kd-evaluate for many runs, each
    run's results where --out-dir's {run} and {subset} say, the same as one run alone."""
    from slu_kd_plugin.cli import evaluate as ev

    man, runs = trained.manifests / "fsc", []
    for name, which in (("a", "best"), ("b", "last")):
        (tmp_path / name).mkdir()
        runs.append(tmp_path / name / "checkpoint_best.pt")
        shutil.copy(trained.ckpt("ft_kd", which), runs[-1])
    log = tmp_path / "many.log"
    args = [tool("slu-kd-evaluate"), trained.data, "--path", *runs, "--subset", "valid,test",
            "--manifest-dir", man, "--out-dir", "{run}/eval/{subset}"]
    assert run(args, log, check=False) == 0, error_message(log)
    printed = [json.loads(line) for line in lines(log) if line.startswith("{")]
    assert [(p["checkpoint"], p["subset"]) for p in printed] == [(str(r), s) for r in runs for s in ("valid", "test")]
    alone, _ = evaluate(trained, tmp_path / "alone", man)  # the best checkpoint on test, by itself
    together = json.loads((tmp_path / "a" / "eval" / "test" / "metrics.json").read_text())
    assert {k: together[k] for k in ("n", "accuracy", "per_speaker")} == {k: alone[k] for k in ("n", "accuracy", "per_speaker")}
    assert (tmp_path / "a" / "eval" / "test" / "predictions.jsonl").read_text() == \
        (tmp_path / "alone" / "predictions.jsonl").read_text()
    for r in runs:
        for s in ("valid", "test"):
            assert json.loads((r.parent / "eval" / s / "metrics.json").read_text())["subset"] == s

    # refused before any model is loaded, nothing written: outputs that would overwrite
    # each other, a checkpoint that is not there
    for argv, says in ((["--path", *map(str, runs), "--out-dir", str(tmp_path / "one")], "same place"),
                       (["--path", str(runs[0]), "--subset", "valid,test", "--out-dir", str(tmp_path / "one")],
                        "same place"),
                       (["--path", str(runs[0]), str(tmp_path / "nope.pt")], f"no such checkpoint: {tmp_path / 'nope.pt'}")):
        with pytest.raises(SystemExit) as e:
            ev.parse_args([str(trained.data), *argv])
        assert e.value.code == 2 and says in capsys.readouterr().err, argv
    assert not (tmp_path / "one").exists()


# ---------------------------------------------------------------- the demo's grid
def _metric(root, subset, row, seed, acc, per_speaker=None):
    d = root / subset / row / f"seed{seed}" / "eval"
    d.mkdir(parents=True)
    m = {"accuracy": acc}
    if per_speaker:
        m["per_speaker"] = {s: {"utterances": n, "accuracy": a, "voice": v} for s, (n, a, v) in per_speaker.items()}
    (d / "metrics.json").write_text(json.dumps(m))


def test_results_table_per_test_voice(tmp_path):
    runs = tmp_path / "runs"
    _metric(runs, "train", "baseline", 1, 50.0, {"s1": (10, 40.0, "flite:slt (female)"), "s2": (10, 60.0, None)})
    _metric(runs, "train", "am_pt", 1, 80.0, {"s1": (10, 70.0, "flite:slt (female)"), "s2": (10, 90.0, None)})
    _metric(runs, "train10", "baseline", 1, 20.0, {"s1": (10, 10.0, "flite:slt (female)")})
    _metric(runs, "train10", "baseline", 2, 30.0, {"s1": (10, 20.0, "flite:slt (female)")})
    _metric(runs, "train", "da", 1, 99.0)  # evaluated without manifests: no per-speaker numbers
    out = tmp_path / "results.json"
    results.main([str(runs), "--out", str(out)])
    table = json.loads(out.read_text())
    # the layout stays {setting: {row: {mean, std, runs}}}, per_speaker added beside
    assert table["full"]["baseline"]["mean"] == 50.0 and table["full"]["da"]["runs"] == [99.0]
    assert table["10pct"]["baseline"]["per_speaker"] == {
        "s1": {"utterances": 10, "voice": "flite:slt (female)", "accuracy": 15.0}}
    assert table["full"]["am_pt"]["per_speaker"]["s2"] == {"utterances": 10, "voice": None, "accuracy": 90.0}
    md = (tmp_path / "results.md").read_text()
    assert "| voice | speaker | utts | speech BERT + DS2 | + AM-PT |" in md
    assert "| flite:slt (female) | s1 | 10 | 40.00 | 70.00 |" in md
    assert "| — | s2 | 10 | 60.00 | 90.00 |" in md


# ---------------------------------------------------------------- the corpus recipes
def test_recipe_results_json_and_lines_per_test_voice(tmp_path, capsys):
    work = tmp_path / "work"
    per_speaker = {"spkA": {"utterances": 3, "accuracy": 66.66666, "voice": "espeak-ng:en-us (male)"},
                   "spkB": {"utterances": 2, "accuracy": 100.0, "voice": None}}
    for split, extra in (("valid", {}), ("test", {"per_speaker": per_speaker})):
        (work / "eval" / split).mkdir(parents=True)
        (work / "eval" / split / "metrics.json").write_text(
            json.dumps({"n": 5, "accuracy": 80.0, "subset": split, **extra}))
    (work / "assets.env").write_text("QUANTIZER=/x/q\\ uant.pt\nTEACHER=\n")
    (work / "timings.tsv").write_text("manifests\t3\nslu\t9\nslu\t7\n")
    results.main(["recipe", str(work), "--corpus", "fsc", "--train-subset", "train",
                  "--profile", "cpu", "--augment", "units,hidden"])
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["test speaker spkA (espeak-ng:en-us (male)): 66.67% of 3",
                       "test speaker spkB: 100.00% of 2", "test accuracy: 80.00"]
    out = json.loads((work / "results.json").read_text())
    assert out["test_per_speaker"] == per_speaker and out["test"]["per_speaker"] == per_speaker
    assert out["assets"] == {"QUANTIZER": "/x/q uant.pt", "TEACHER": ""}
    assert out["timings_s"] == {"manifests": 3, "slu": 7}
    assert (out["corpus"], out["train_subset"], out["profile"], out["augment"]) == ("fsc", "train", "cpu", "units,hidden")
    # metrics without per_speaker (older manifests): no key, and the last line unchanged
    (work / "eval" / "test" / "metrics.json").write_text(json.dumps({"n": 5, "accuracy": 80.0}))
    results.main(["recipe", str(work), "--corpus", "fsc", "--train-subset", "train", "--profile", "cpu",
                  "--augment", ""])
    assert capsys.readouterr().out.splitlines() == ["test accuracy: 80.00"]
    assert "test_per_speaker" not in json.loads((work / "results.json").read_text())
