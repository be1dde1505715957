"""The demo's last step: the grid's metrics -> results.json in the issue's layout, a
markdown table with one time per stage, and a plot."""
import json

from slu_kd_plugin.cli import results


def _metric(root, subset, row, seed, acc):
    d = root / subset / row / f"seed{seed}" / "eval"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"accuracy": acc}))


def test_table_json_plot_and_timings(tmp_path):
    runs = tmp_path / "runs"
    for seed, acc in enumerate([50.0, 60.0, 70.0], 1):
        _metric(runs, "train10", "baseline", seed, acc)
    _metric(runs, "train", "da", 1, 99.5)
    timings = tmp_path / "timings.tsv"
    timings.write_text("corpora\t48\nPT-KD\t95\nPT-KD\t0\nteachers\t30\nteachers\t40\n")
    out = tmp_path / "results.json"
    results.main([str(runs), "--out", str(out), "--timings", str(timings)])
    table = json.loads(out.read_text())
    assert table["10pct"]["baseline"] == {"mean": 60.0, "std": 10.0, "runs": [50.0, 60.0, 70.0], "seeds": [1, 2, 3]}
    assert table["full"]["da"]["runs"] == [99.5]
    md = (tmp_path / "results.md").read_text()
    assert "| PT-KD | 95 |" in md and "| teachers | 40 |" in md and "| teachers | 30 |" not in md
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_paired_step_differences_match_seeds(tmp_path):
    """Each step is compared seed by seed with the row before it: the spread of the
    differences, not of the runs, says whether a step adds anything."""
    runs = tmp_path / "runs"
    for seed, (base, pt) in {1: (50.0, 52.0), 2: (60.0, 63.0), 3: (70.0, 71.0), 10: (40.0, 0.0)}.items():
        _metric(runs, "train10", "baseline", seed, base)
        if seed != 10:  # a seed the next row lacks is left out of the pairs, not shifted
            _metric(runs, "train10", "pt_kd", seed, pt)
    out = tmp_path / "results.json"
    results.main([str(runs), "--out", str(out)])
    step = json.loads(out.read_text())["10pct"]["pt_kd"]["vs_previous"]
    assert step == {"mean": 2.0, "std": 1.0, "diffs": [2.0, 3.0, 1.0]}
    assert "| speech BERT + DS2 → + PT-KD | — | +2.00 ± 1.00 (n=3) |" in (tmp_path / "results.md").read_text()
