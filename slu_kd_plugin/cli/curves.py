"""slu-kd-curves: a training-curve PNG from a fairseq-train log.

    slu-kd-curves SAVE_DIR/train.log --out curves.png

Reads the per-epoch summaries fairseq-train writes (``--log-format simple`` or ``json``):
train and valid loss on the left, train and valid accuracy (or the CTC stages' ``uer``)
on the right, one point per epoch. The title says how many epochs ran of ``--max-epoch``,
so a run that was cut short or is still climbing shows at a glance.
"""
import json
import os
import re
import sys

from . import cli_parser

SECOND_METRICS = ("accuracy", "uer")  # SLU and teacher stages; AM-PT (CTC)
_MAX_EPOCH = re.compile(r"'max_epoch': (\d+)")


def parse_summary(text, tag):
    """One epoch summary (after ``| tag | ``) -> {metric: float}, keys without the tag prefix."""
    text = text.strip()
    if text.startswith("{"):
        raw = json.loads(text)
        raw = {k[len(tag) + 1:] if k.startswith(tag + "_") else k: v for k, v in raw.items()}
    else:  # simple format: "epoch 003 | valid on 'valid' subset | loss 1.2 | ..."
        raw = dict(part.strip().split(" ", 1) for part in text.split(" | ") if " " in part.strip())
    stats = {}
    for key, value in raw.items():
        try:
            stats[key] = float(value)
        except (TypeError, ValueError):
            pass
    return stats


def read_log(path):
    """{"train": [stats per epoch], "valid": [...], "max_epoch": int or None} of a train.log."""
    curves, max_epoch = {"train": {}, "valid": {}}, None
    with open(path, errors="replace") as f:
        for line in f:
            if max_epoch is None and (m := _MAX_EPOCH.search(line)):
                max_epoch = int(m.group(1))
            for tag in curves:
                i = line.find(f"| {tag} | ")
                if i >= 0:
                    stats = parse_summary(line[i + len(tag) + 4:], tag)
                    if "epoch" in stats:  # a resumed run logs an epoch again: keep the last
                        curves[tag][int(stats["epoch"])] = stats
    return {"train": [curves["train"][e] for e in sorted(curves["train"])],
            "valid": [curves["valid"][e] for e in sorted(curves["valid"])], "max_epoch": max_epoch}


def plot_log(log, out, title=None):
    """Draw ``log``'s curves to ``out`` (atomically); returns the parsed curves."""
    from ..utils import pyplot

    plt = pyplot()
    curves = read_log(log)
    if not curves["train"] and not curves["valid"]:
        raise ValueError(f"{log}: no per-epoch train/valid summary lines (is it a fairseq-train log?)")
    second = next((m for m in SECOND_METRICS if any(m in s for s in curves["train"] + curves["valid"])), None)
    fig, axes = plt.subplots(1, 2 if second else 1, figsize=(10 if second else 5.5, 3.8), squeeze=False)
    for ax, metric in zip(axes[0], ["loss", second]):
        for tag, style in (("train", "o-"), ("valid", "s--")):
            points = [(s["epoch"], s[metric]) for s in curves[tag] if metric in s]
            if points:
                ax.plot(*zip(*points), style, label=f"{tag} {metric}", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric + (" (%)" if metric != "loss" else ""))
        ax.legend()
        ax.grid(alpha=0.3)
    ran = int(max(s["epoch"] for s in curves["train"] + curves["valid"]))
    of = f" of {curves['max_epoch']}" if curves["max_epoch"] else ""
    fig.suptitle(f"{title or os.path.dirname(os.path.abspath(log))}: {ran}{of} epochs", fontsize=10)
    fig.tight_layout()
    tmp = f"{out}.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return curves


def main(argv=None):
    p = cli_parser("slu-kd-curves", __doc__)
    p.add_argument("log", help="train.log of a fairseq-train run")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", help="plot title (default: the log's directory)")
    args = p.parse_args(argv)
    try:
        plot_log(args.log, args.out, args.title)
    except (OSError, ValueError) as e:
        sys.exit(f"slu-kd-curves: error: {e}")


if __name__ == "__main__":
    main()
