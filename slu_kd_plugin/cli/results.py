"""Collect the SLU grid into the paper's Table 2 layout: results.json, results.md, results.png.

    python -m slu_kd_plugin.cli.results WORK/runs --out WORK/results.json
    slu-kd-results recipe WORK --corpus fsc --train-subset train --profile P --augment A

``runs/<subset>/<row>/seed<k>/eval/metrics.json`` -> {"full"|"10pct": {row: {mean, std, runs}}}
(+ ``per_speaker`` per row, the seeds' mean per test speaker, where metrics.json has it;
results.md then adds a table of the full-data rows per test voice).
Beside results.png, ``curves/<subset>_<row>_seed<k>.png``: each run's training curves
(train/valid loss and accuracy per epoch, from its train.log; see slu-kd-curves).
"""
import argparse
import glob
import json
import os
import shlex
import statistics
import sys

from ..utils import atomic_write
from . import cli_parser

ROWS = ["baseline", "pt_kd", "ft_kd", "am_pt", "da"]
ROW_NAMES = {"baseline": "speech BERT + DS2", "pt_kd": "+ PT-KD", "ft_kd": "+ FT-KD", "am_pt": "+ AM-PT", "da": "+ DA"}
SETTINGS = {"full": "train", "10pct": "train10"}


def read_metrics(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read metrics ({e})") from None


def mean_per_speaker(metrics):
    """``{speaker: {utterances, accuracy, voice}}`` averaged over seeds, from the
    runs whose metrics.json has per_speaker (evaluated with --manifest-dir)."""
    by_spk = {}
    for m in metrics:
        for spk, row in m.get("per_speaker", {}).items():
            by_spk.setdefault(spk, []).append(row)
    return {spk: {"utterances": rows[0]["utterances"], "voice": rows[0]["voice"],
                  "accuracy": round(statistics.mean(r["accuracy"] for r in rows), 2)}
            for spk, rows in sorted(by_spk.items())}


def collect(runs_dir):
    table = {}
    for setting, subset in SETTINGS.items():
        for row in ROWS:
            files = sorted(glob.glob(os.path.join(runs_dir, subset, row, "seed*", "eval", "metrics.json")),
                           key=_seed_of)
            metrics = [read_metrics(f) for f in files]
            accs = [round(m["accuracy"], 2) for m in metrics]
            if accs:
                cell = {**_mean_std(accs), "runs": accs, "seeds": [_seed_of(f) for f in files]}
                per_speaker = mean_per_speaker(metrics)
                if per_speaker:
                    cell["per_speaker"] = per_speaker
                table.setdefault(setting, {})[row] = cell
        _paired_steps(table.get(setting, {}))
    return table


def _seed_of(path):
    return int(os.path.basename(os.path.dirname(os.path.dirname(path)))[len("seed"):])


def _mean_std(values):
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 2), "std": round(std, 2)}


def _paired_steps(rows):
    """Each row's ``vs_previous``: the per-seed difference to the row before it in the chain
    (same seed, same data), mean ± std over the seeds both have: what one step adds, with
    the seed-to-seed spread of the runs themselves taken out."""
    for prev, row in zip(ROWS, ROWS[1:]):
        if prev in rows and row in rows:
            before = dict(zip(rows[prev]["seeds"], rows[prev]["runs"]))
            diffs = [round(acc - before[seed], 2)
                     for seed, acc in zip(rows[row]["seeds"], rows[row]["runs"]) if seed in before]
            if diffs:
                rows[row]["vs_previous"] = {**_mean_std(diffs), "diffs": diffs}


def markdown(table):
    lines = ["| system | full test acc % | 10% test acc % (mean ± std, n) |", "|---|---|---|"]
    for row in ROWS:
        cells = []
        for setting in SETTINGS:
            r = table.get(setting, {}).get(row)
            cells.append(f"{r['mean']:.2f} ± {r['std']:.2f} (n={len(r['runs'])})" if r else "—")
        lines.append(f"| {ROW_NAMES[row]} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def steps_table(table):
    """Markdown of each chain step's paired difference (see _paired_steps)."""
    lines = ["", "| step (paired over seeds) | full | 10% |", "|---|---|---|"]
    for prev, row in zip(ROWS, ROWS[1:]):
        cells = []
        for setting in SETTINGS:
            d = table.get(setting, {}).get(row, {}).get("vs_previous")
            cells.append(f"{d['mean']:+.2f} ± {d['std']:.2f} (n={len(d['diffs'])})" if d else "—")
        lines.append(f"| {ROW_NAMES[prev]} → {ROW_NAMES[row]} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def voice_table(table, setting="full"):
    """Markdown: one row per test voice, one column per grid row of ``setting``;
    empty when no run recorded per-speaker accuracy."""
    rows = [r for r in ROWS if "per_speaker" in table.get(setting, {}).get(r, {})]
    if not rows:
        return ""
    cells = {r: table[setting][r]["per_speaker"] for r in rows}
    speakers = sorted({spk for c in cells.values() for spk in c})
    lines = [f"\nTest accuracy % per test voice ({setting} training data, mean over seeds):\n",
             "| voice | speaker | utts | " + " | ".join(ROW_NAMES[r] for r in rows) + " |",
             "|---|---|---|" + "---|" * len(rows)]
    for spk in speakers:
        first = next(c[spk] for c in cells.values() if spk in c)
        accs = [f"{cells[r][spk]['accuracy']:.2f}" if spk in cells[r] else "—" for r in rows]
        lines.append(f"| {first['voice'] or '—'} | {spk} | {first['utterances']} | " + " | ".join(accs) + " |")
    return "\n".join(lines) + "\n"


def timings_table(path):
    """Markdown of stage -> seconds (see :func:`read_timings`)."""
    seconds = read_timings(path)
    return "\n| stage | seconds |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in seconds.items())


def plot(table, path):
    from ..utils import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for k, setting in enumerate(SETTINGS):
        rows = table.get(setting, {})
        xs = [i + (k - 0.5) * width for i, r in enumerate(ROWS) if r in rows]
        ax.bar(xs, [rows[r]["mean"] for r in ROWS if r in rows], width, yerr=[rows[r]["std"] for r in ROWS if r in rows],
               label={"full": "full training data", "10pct": "10% training data"}[setting], capsize=3)
    ax.set_xticks(range(len(ROWS)), [ROW_NAMES[r] for r in ROWS], rotation=15)
    ax.set_ylabel("test accuracy (%)")
    low = min([v["mean"] - v["std"] for s in table.values() for v in s.values()] or [0])
    ax.set_ylim(max(0, low - 5), 100)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)  # never over a bar
    ax.set_title("slu-kd on the synthetic FSC-style corpus (unseen speakers)")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def read_timings(path):
    """{stage: seconds} of a timings.tsv: a stage run again (a resumed job) keeps its last
    time, and one skipped as already done (0 s) keeps the time it took when it ran."""
    seconds = {}
    if os.path.exists(path):
        for line in open(path):
            if "\t" in line:
                stage, _, secs = line.rstrip("\n").rpartition("\t")
                if int(secs) > 0 or stage not in seconds:
                    seconds[stage] = int(secs)
    return seconds


def read_assets(path):
    assets = {}
    for line in open(path):
        key, _, value = line.rstrip("\n").partition("=")
        assets[key] = shlex.split(value)[0] if value else ""  # written with printf %q
    return assets


def recipe_results(work, corpus, subset, profile, augment):
    """A corpus recipe's WORK/results.json from WORK/eval/{valid,test}/metrics.json,
    WORK/assets.env and WORK/timings.tsv; returns it."""
    metrics = {s: read_metrics(os.path.join(work, "eval", s, "metrics.json")) for s in ("valid", "test")}
    out = {"corpus": corpus, "train_subset": subset, "profile": profile, "augment": augment, **metrics,
           "assets": read_assets(os.path.join(work, "assets.env")),
           "timings_s": read_timings(os.path.join(work, "timings.tsv"))}
    if "per_speaker" in metrics["test"]:
        out["test_per_speaker"] = metrics["test"]["per_speaker"]
    with atomic_write(os.path.join(work, "results.json")) as f:
        json.dump(out, f, indent=2)
    return out


def recipe_main(argv):
    p = argparse.ArgumentParser(prog="slu-kd-results recipe",
                                description="A corpus recipe's results.json; prints one line per test "
                                "speaker, then `test accuracy: NN.NN` last.")
    p.add_argument("work")
    for name in ("corpus", "train_subset", "profile", "augment"):
        p.add_argument("--" + name.replace("_", "-"), required=True)
    args = p.parse_args(argv)
    out = recipe_results(args.work, args.corpus, args.train_subset, args.profile, args.augment)
    for spk, row in out.get("test_per_speaker", {}).items():
        voice = f" ({row['voice']})" if row["voice"] else ""
        print(f"test speaker {spk}{voice}: {row['accuracy']:.2f}% of {row['utterances']}")
    print(f"test accuracy: {out['test']['accuracy']:.2f}")


def plot_curves(runs_dir, out_dir):
    """One training-curve PNG per run of the grid that has a train.log; returns their paths."""
    from .curves import plot_log

    written = []
    for log in sorted(glob.glob(os.path.join(runs_dir, "*", "*", "seed*", "train.log"))):
        run = os.path.relpath(os.path.dirname(log), runs_dir).replace(os.sep, "_")
        os.makedirs(out_dir, exist_ok=True)
        try:
            plot_log(log, os.path.join(out_dir, run + ".png"), title=run)
        except ValueError as e:  # a run that logged no epoch yet: say so, draw the others
            print(f"slu-kd-results: no curves for {run}: {e}")
            continue
        written.append(os.path.join(out_dir, run + ".png"))
    return written


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["recipe"]:  # the corpus recipes' results.json (examples/common/stages.sh)
        return recipe_main(argv[1:])
    p = cli_parser("slu-kd-results", __doc__)
    p.add_argument("runs_dir")
    p.add_argument("--out", required=True, help="results.json path; .md and .png are written beside it")
    p.add_argument("--timings", help="timings.tsv (stage, seconds) to append to the markdown")
    args = p.parse_args(argv)
    table = collect(args.runs_dir)
    if not table:
        raise SystemExit(f"{args.runs_dir}: no eval/metrics.json found")
    with atomic_write(args.out) as f:
        json.dump(table, f, indent=2)
    md = markdown(table) + steps_table(table) + voice_table(table)
    if args.timings and os.path.isfile(args.timings):
        md += timings_table(args.timings)
    base = os.path.splitext(args.out)[0]
    with atomic_write(base + ".md") as f:
        f.write(md)
    plot(table, base + ".png")
    curves = plot_curves(args.runs_dir, os.path.join(os.path.dirname(os.path.abspath(args.out)), "curves"))
    print(md)
    if curves:
        print(f"training curves: {len(curves)} PNGs in {os.path.dirname(curves[0])}")


if __name__ == "__main__":
    main()
