"""benchmarks/run.py: --quick on the tiny trained pipeline reports every section with
positive numbers and leaves the work dir alone; a work dir that is not finished is
refused with the command that makes one; epoch times are read from fairseq's records."""
import importlib
import json
import re
import subprocess
import sys

import pytest

from conftest import ENV, REPO

SCRIPT = REPO / "benchmarks" / "run.py"


def training_module():
    """benchmarks/measure/training.py, where the training section reads fairseq's logs."""
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("measure.training")


def positive(row, *keys):
    bad = {k: row.get(k) for k in keys if not (isinstance(row.get(k), (int, float)) and row[k] > 0)}
    assert not bad, f"not positive in {row.get('stage') or row.get('path') or row.get('name') or row}: {bad}"


@pytest.mark.slow
def test_quick_benchmark_reports_every_section(trained, tmp_path):
    out = tmp_path / "bench.json"
    before = sorted(p.name for p in trained.root.iterdir())
    result = subprocess.run([sys.executable, str(SCRIPT), "--work", str(trained.root), "--quick", "--threads", "1",
                             "--out", str(out), "--scratch", str(tmp_path / "scratch")],
                            capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"machine", "settings", "featurization", "training", "inference", "ratios", "runs"} <= set(report)
    assert report["machine"]["cpu_count"] > 0 and report["machine"]["torch"] and report["machine"]["git_commit"]

    quantizers = {r["quantizer"]: r for r in report["featurization"]}
    assert set(quantizers) == {"mfcc_kmeans", "vq_wav2vec"}
    for row in quantizers.values():
        positive(row, "audio_s", "audio_s_per_s", "max_rss_mb")
    assert quantizers["vq_wav2vec"]["params"] > 30_000_000  # the published size, not a toy

    assert [r["stage"] for r in report["training"]] == ["speech_bert", "teacher", "pt_kd", "am_pt", "ft_kd"]
    for row in report["training"]:
        positive(row, "updates_per_s", "utts_per_s", "epoch_s", "utts_per_update", "startup_s", "max_rss_mb")

    assert [r["path"] for r in report["inference"]] == ["eager", "torchscript", "onnx"]
    for row in report["inference"]:
        positive(row, "p50_ms", "p95_ms", "rtf", "model_p50_ms")
        # the export is parity-checked to 1e-5: only a near-tie could flip an intent
        assert row["p95_ms"] >= row["p50_ms"] and row["same_intent_as_eager"] >= 0.8

    assert [r["name"] for r in report["ratios"]] == ["cache_speech_states", "teacher_logits", "length_bucketing"]
    for row in report["ratios"]:
        positive(row, "speedup", "candidate_epoch_s", "reference_epoch_s", "speedup_incl_one_off")
        assert isinstance(row["one_off_s"], float)
    assert all(r["max_rss_mb"] > 0 and r["returncode"] == 0 for r in report["runs"])

    for header in ("| quantizer |", "| stage |", "| path (audio file -> intent) |", "| FT-KD: candidate / reference |"):
        assert header in result.stdout
    assert result.stdout.rstrip().endswith(f"scratch: {tmp_path / 'scratch'}")
    assert sorted(p.name for p in trained.root.iterdir()) == before  # the work dir is only read


def test_unfinished_work_dir_is_refused_with_the_way_to_make_one(tmp_path):
    (tmp_path / "data-bin" / "fsc").mkdir(parents=True)
    result = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path), "--device", "cpu"],
                            capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=120)
    assert result.returncode != 0
    assert "checkpoints/pt_kd/checkpoint_best.pt" in result.stderr
    assert f"examples/synthetic/run.sh {tmp_path} --stop-stage {last_needed_demo_stage()}" in result.stderr
    assert not (tmp_path / "benchmarks.json").exists()


# the demo stages (examples/synthetic/run.sh's 'stage N "what"', or side_by_side_stages'
# 'N "what" functions') whose outputs the benchmark reads
NEEDED = ("prepare", "quantizer", "units", "data-bin", "speech BERT", "text model", "PT-KD", "AM-PT", "text teachers")


def last_needed_demo_stage():
    stages = re.findall(r'\b(\d+) "([^"]+)"', (REPO / "examples" / "synthetic" / "run.sh").read_text())
    assert {what.split(":")[0] for _, what in stages} >= {"prepare", "PT-KD", "AM-PT", "text teachers"}, stages
    return max(int(n) for n, what in stages if what.startswith(NEEDED))


def test_epoch_time_from_fairseq_records_leaves_out_the_warm_up_epoch():
    training = training_module()
    records = [{"epoch": 1.0, "train_num_updates": 10.0, "train_ups": 1.0, "train_bsz": 32.0, "train_wps": 100.0},
               {"epoch": 2.0, "train_num_updates": 20.0, "train_ups": 2.0, "train_bsz": 30.0, "train_wps": 300.0},
               {"epoch": 3.0, "train_num_updates": 30.0, "train_ups": 2.5, "train_bsz": 30.0, "train_wps": 400.0}]
    stats = training.epoch_stats(records)
    assert stats.epochs_measured == 2 and stats.updates_per_epoch == 10
    assert stats.epoch_s == pytest.approx((10 / 2.0 + 10 / 2.5) / 2)
    assert stats.utts_per_s == pytest.approx((60 + 75) / 2) and stats.updates_per_s == pytest.approx(2.25)
