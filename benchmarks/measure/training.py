"""Section "training": fairseq-train throughput of each stage, read from fairseq's own
per-epoch JSON records (--log-format json) and the times its log lines arrived."""
import json
import statistics
from dataclasses import asdict, dataclass

from . import BenchmarkError

STAGES = ("speech_bert", "teacher", "pt_kd", "am_pt", "ft_kd")


def measure(bench):
    rows = []
    for stage in STAGES:
        rows.append(bench.ft_base() if stage == "ft_kd" else bench.train(stage))
    return [r.row() for r in rows]


def train_records(run):
    """fairseq's per-epoch training stats (--log-format json), numbers as floats."""
    records = []
    for _, text in run.lines:
        i = text.find("| train | {")
        if i >= 0:
            raw = json.loads(text[i + len("| train | "):])
            records.append({k: float(v) if _is_number(v) else v for k, v in raw.items()})
    if not records:
        raise BenchmarkError(f"{run.log}: no per-epoch training records (is --log-format json set?)")
    return records


def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


@dataclass
class EpochStats:
    """Per-epoch throughput from fairseq's records: epoch ``e`` (e >= 2) took
    (updates in e) / train_ups seconds, fairseq's ups meter being reset at the end of
    epoch e-1 (in epoch 1 it starts only after the first update: a warm-up epoch)."""

    epochs_measured: int
    updates_per_epoch: float
    utts_per_update: float
    updates_per_s: float
    utts_per_s: float
    epoch_s: float
    tokens_per_s: float


def epoch_stats(records, spans=None):
    """``spans``: each epoch's seconds from its log lines, for an epoch too slow for
    fairseq's ups (printed to 2 decimals) to be above 0."""
    previous = {r["epoch"]: r["train_num_updates"] for r in records}
    rows = []
    for i, r in enumerate(records):
        if i == 0 and len(records) > 1:  # the warm-up epoch
            continue
        updates = r["train_num_updates"] - previous.get(r["epoch"] - 1, 0)
        seconds = updates / r["train_ups"] if r["train_ups"] > 0 else spans[i]
        rows.append((updates, r["train_bsz"], updates / seconds, seconds, r["train_wps"]))
    med = lambda i: statistics.median(row[i] for row in rows)  # noqa: E731
    return EpochStats(len(rows), med(0), med(1), med(2), statistics.median(r[1] * r[2] for r in rows),
                      med(3), med(4))


@dataclass
class TrainResult:
    stage: str
    variant: str
    stats: EpochStats
    startup_s: float  # process start -> fairseq starts loading the training split
    train_load_s: float  # loading the training split: where caching / precompute happen
    wall_s: float
    max_rss_mb: float
    flags: list
    epoch_spans_s: list  # every epoch, warm-up included, timed by its log lines
    epochs: list  # fairseq's own per-epoch numbers, warm-up included

    def row(self):
        return {"stage": self.stage, "variant": self.variant, **asdict(self.stats),
                "startup_s": self.startup_s, "train_load_s": self.train_load_s, "wall_s": self.wall_s,
                "max_rss_mb": self.max_rss_mb, "epoch_spans_s": self.epoch_spans_s, "epochs": self.epochs,
                "flags": self.flags}


# fairseq's first line once the training split is loaded: it then forms the batches
# (whose first call costs ~2 s of start-up in any task, caching or not)
LOADED = ("can_reuse_epoch_itr", "creating new batches", "begin training epoch 1")


def epoch_spans(run, epochs):
    """Seconds from "begin training epoch N" to "end of epoch N" as the lines arrived: a
    cross-check of the epoch times fairseq's ups give."""
    spans = []
    for n in range(1, epochs + 1):
        begin = run.time_of(f"begin training epoch {n}")
        spans.append(run.time_of(f"end of epoch {n} ", after=begin) - begin)
    return spans


def train_result(run, stage, variant, stage_flags):
    records = train_records(run)
    spans = epoch_spans(run, len(records))
    load_start = run.time_of("loading train data for epoch 1")
    return TrainResult(stage, variant, epoch_stats(records, spans), load_start,
                       run.time_of(LOADED, after=load_start) - load_start, run.wall_s,
                       run.max_rss_mb, [str(a) for a in stage_flags], spans,
                       [{k: r.get(f"train_{k}", r.get(k)) for k in RAW_KEYS} for r in records])


RAW_KEYS = ("epoch", "num_updates", "ups", "wps", "bsz", "wpb", "train_wall", "wall")
