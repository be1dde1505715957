"""Collect the SLU grid into the paper's Table 2 layout: results.json, results.md, results.png.

    python -m slu_kd_plugin.cli.results WORK/runs --out WORK/results.json

``runs/<subset>/<row>/seed<k>/eval/metrics.json`` -> {"full"|"10pct": {row: {mean, std, runs}}}
Beside results.png, ``curves/<subset>_<row>_seed<k>.png``: each run's training curves
(train/valid loss and accuracy per epoch, from its train.log; see slu-kd-curves).
"""
import argparse
import glob
import json
import os
import statistics

from ..utils import atomic_write

ROWS = ["baseline", "pt_kd", "ft_kd", "am_pt", "da"]
ROW_NAMES = {"baseline": "speech BERT + DS2", "pt_kd": "+ PT-KD", "ft_kd": "+ FT-KD", "am_pt": "+ AM-PT", "da": "+ DA"}
SETTINGS = {"full": "train", "10pct": "train10"}


def collect(runs_dir):
    table = {}
    for setting, subset in SETTINGS.items():
        for row in ROWS:
            files = sorted(glob.glob(os.path.join(runs_dir, subset, row, "seed*", "eval", "metrics.json")))
            accs = [round(json.load(open(f))["accuracy"], 2) for f in files]
            if accs:
                std = statistics.stdev(accs) if len(accs) > 1 else 0.0
                table.setdefault(setting, {})[row] = {"mean": round(statistics.mean(accs), 2), "std": round(std, 2), "runs": accs}
    return table


def markdown(table):
    lines = ["| system | full test acc % | 10% test acc % (mean ± std, n) |", "|---|---|---|"]
    for row in ROWS:
        cells = []
        for setting in SETTINGS:
            r = table.get(setting, {}).get(row)
            cells.append(f"{r['mean']:.2f} ± {r['std']:.2f} (n={len(r['runs'])})" if r else "—")
        lines.append(f"| {ROW_NAMES[row]} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def timings_table(path):
    """Markdown of stage -> seconds; a stage run again (a resumed job) keeps its last time,
    and one skipped as already done (0 s) keeps the time it took when it ran."""
    seconds = {}
    for line in open(path):
        if "\t" in line:
            stage, secs = line.rstrip("\n").split("\t")
            if int(secs) > 0 or stage not in seconds:
                seconds[stage] = int(secs)
    return "\n| stage | seconds |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in seconds.items())


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.legend(loc="lower right")
    ax.set_title("slu-kd on the synthetic FSC-style corpus (unseen speakers)")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


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
    p = argparse.ArgumentParser(prog="slu-kd-results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs_dir")
    p.add_argument("--out", required=True, help="results.json path; .md and .png are written beside it")
    p.add_argument("--timings", help="timings.tsv (stage, seconds) to append to the markdown")
    args = p.parse_args(argv)
    table = collect(args.runs_dir)
    if not table:
        raise SystemExit(f"{args.runs_dir}: no eval/metrics.json found")
    with atomic_write(args.out) as f:
        json.dump(table, f, indent=2)
    md = markdown(table)
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
