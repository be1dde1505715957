"""Speed of slu-kd on this machine, measured on a finished demo work dir.

    python benchmarks/run.py --work work/synthetic                 # the full benchmark
    python benchmarks/run.py --work work/synthetic --quick         # smoke version, minutes
    python benchmarks/run.py --work work/synthetic --sections training,ratios

WORK is what ``examples/synthetic/run.sh WORK --stop-stage 5`` leaves: data-bin/{fsc,paired},
checkpoints/{speech_bert,text_model,teacher_train,pt_kd,am_pt}, manifests/fsc, quantizer.pt.
Nothing in WORK is written: every run saves under --scratch (a temp dir by default).

Sections (all by default):
  featurization  seconds of audio per second of slu-kd-featurize, for the MFCC k-means
                 quantizer of WORK and for fairseq vq-wav2vec at the published size
                 (random weights, saved in the 2019 checkpoint format)
  training       fairseq-train throughput of each stage (speech BERT masked LM, text
                 teacher, PT-KD, AM-PT, FT-KD) with WORK's model sizes: utterances/s,
                 updates/s, epoch time and the process's peak RSS
  inference      per-utterance latency (p50/p95, audio file -> intent) and real-time
                 factor of SLUModel (eager) and of the slu-kd-export TorchScript file
  ratios         FT-KD epoch time: cached speech-BERT states vs recomputed; teacher logits
                 precomputed vs on the fly; --max-tokens batches vs --batch-size 32;
                 with the one-off caching/precompute cost of each

Epoch times come from fairseq's own per-epoch JSON records (updates in the epoch /
train_ups); the first epoch is a warm-up and is left out when there are more.  Start-up
and the one-off cost of loading the training split (where caching and precompute
happen) are reported beside them.  The last lines printed are Markdown tables; the JSON
(--out) holds them, the machine, and every run's raw records.
"""
import argparse
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "slu_kd_plugin"
SECTIONS = ("featurization", "training", "inference", "ratios")
STAGES = ("speech_bert", "teacher", "pt_kd", "am_pt", "ft_kd")
STAGE_NAMES = {"speech_bert": "speech BERT (masked LM)", "teacher": "text teacher",
               "pt_kd": "PT-KD", "am_pt": "AM-PT", "ft_kd": "FT-KD"}
TARGETS = {"cache_speech_states": 3.0, "teacher_logits": 1.3}
BUSY_CORES = 0.25  # other processes' average CPU use above which the report warns

# vq-wav2vec k-means as fairseq's examples/wav2vec README trains it (the published
# vq-wav2vec_kmeans.pt), under the legacy task/criterion names the 2019 file carries
PUBLISHED_VQ_WAV2VEC = dict(
    arch="wav2vec", task="speech_pretraining", criterion="binary_cross_entropy",
    conv_feature_layers="[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), "
                        "(512, 1, 1), (512, 1, 1), (512, 1, 1)]",
    conv_aggregator_layers="[" + ", ".join(f"(512, {k}, 1)" for k in range(2, 14)) + "]",
    activation="gelu", offset="auto", skip_connections_agg=True, skip_connections_feat=False,
    residual_scale=0.5, log_compression=False, aggregator="cnn", vq_type="kmeans", vq_groups=2,
    vq_depth=2, combine_groups=True, vq_vars=320, vq_dim=0, vq_gamma=0.25, prediction_steps=12,
    num_negatives=10, cross_sample_negatives=0, lr=[1e-5], optimizer="adam", fp16=True,
    max_update=400000, data="/nonexistent/librispeech",
)


class BenchmarkError(RuntimeError):
    """A missing input or a failed run; the message says which and what to do."""


# ----------------------------------------------------------------------------- work dir


@dataclass
class Work:
    """The inputs the benchmark reads from a finished demo work dir."""

    root: Path
    teacher_override: Path = None

    @property
    def fsc(self):
        return self.root / "data-bin" / "fsc"

    @property
    def paired(self):
        return self.root / "data-bin" / "paired"

    @property
    def bert_units(self):
        # the demo pretrains the speech BERT on data-bin/bert (paired + command audio);
        # the recipes and the test pipeline on the paired corpus' units
        bert = self.root / "data-bin" / "bert" / "units"
        return bert if bert.is_dir() else self.paired / "units"

    @property
    def manifests(self):
        return self.root / "manifests" / "fsc"

    @property
    def quantizer(self):
        return self.root / "quantizer.pt"

    def ckpt(self, stage):
        if stage == "teacher":
            if self.teacher_override:
                return self.teacher_override
            # the demo has one teacher per training subset, the recipes one "teacher"
            for name in ("teacher_train", "teacher"):
                if (self.root / "checkpoints" / name / "checkpoint_best.pt").is_file():
                    return self.root / "checkpoints" / name / "checkpoint_best.pt"
            return self.root / "checkpoints" / "teacher_train" / "checkpoint_best.pt"
        return self.root / "checkpoints" / stage / "checkpoint_best.pt"

    def missing(self):
        needed = [self.fsc / "units", self.fsc / "input0", self.fsc / "label", self.paired / "units",
                  self.paired / "input0", self.paired / "ltr", self.manifests / "test.tsv", self.quantizer]
        needed += [self.ckpt(s) for s in ("speech_bert", "text_model", "teacher", "pt_kd", "am_pt")]
        return [p for p in needed if not p.exists()]

    def check(self):
        missing = self.missing()
        if missing:
            listed = "\n  ".join(str(p) for p in missing)
            raise BenchmarkError(
                f"{self.root} is not a finished demo work dir; missing:\n  {listed}\n"
                f"make one with:  examples/synthetic/run.sh {self.root} --stop-stage 5")


def work_of(args):
    return Work(Path(args.work).resolve(), Path(args.teacher).resolve() if args.teacher else None)


def recorded_cfg(path):
    """{section: dict} of the config a fairseq checkpoint was trained with."""
    import torch

    import slu_kd_plugin  # noqa: F401  (allow-lists the types fairseq checkpoints pickle)

    try:  # mmap: only the config is needed, not gigabytes of weights
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    cfg = state.get("cfg") or {}
    sections = {}
    for name in ("model", "task", "dataset", "optimization", "criterion"):
        value = cfg.get(name) or {}
        sections[name] = dict(vars(value) if isinstance(value, argparse.Namespace) else value)
    return sections


def flags(values, keys):
    """``--key value`` for each key whose value is set (underscores become dashes)."""
    out = []
    for key in keys:
        value = values.get(key)
        if value is not None:
            out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def batch_flags(cfg):
    ds = cfg["dataset"]
    if ds.get("batch_size"):
        return ["--batch-size", str(ds["batch_size"])]
    return ["--max-tokens", str(ds["max_tokens"])]


def lr_of(cfg):
    lr = cfg["optimization"].get("lr") or [1e-3]
    return str(lr[0] if isinstance(lr, (list, tuple)) else lr)


ROBERTA_KEYS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                "encoder_attention_heads", "max_positions")
DS2_KEYS = ("ds2_conv_channels", "ds2_lstm_layers", "ds2_lstm_hidden")


def label_count(data):
    with open(data / "label" / "dict.txt", encoding="utf-8") as f:
        return sum(not line.startswith("madeupword") for line in f)


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    """One subprocess: its command, log, exit status, peak RSS and timed output lines."""

    name: str
    argv: list
    log: str
    wall_s: float = 0.0
    returncode: int = None
    max_rss_mb: float = 0.0
    lines: list = field(default_factory=list, repr=False)  # (seconds since start, text)

    def time_of(self, needle, last=False, after=0.0):
        """Seconds since start when the first (or last) line containing ``needle`` (one
        of them, for a tuple) arrived, not before ``after``."""
        needles = needle if isinstance(needle, tuple) else (needle,)
        hits = [t for t, text in self.lines if t >= after and any(n in text for n in needles)]
        if not hits:
            raise BenchmarkError(f"{self.log}: no line containing {' or '.join(map(repr, needles))}")
        return hits[-1] if last else hits[0]

    def summary(self):
        d = asdict(self)
        d.pop("lines")
        d["argv"] = [str(a) for a in self.argv]
        return d


def max_rss_mb(rusage):
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return rusage.ru_maxrss * scale / 2**20


def run_timed(name, argv, log, env, cwd=REPO):
    """Run ``argv``, timestamping each output line (split on \\n and \\r, so progress
    bars count) as it arrives; the peak RSS is the child's own (os.wait4), not that of
    every child so far as getrusage(RUSAGE_CHILDREN) would give."""
    run = Run(name, [str(a) for a in argv], str(log))
    t0 = time.monotonic()
    proc = subprocess.Popen(run.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=str(cwd), bufsize=0)
    pending, status = b"", None
    try:
        with open(log, "wb") as f:
            while True:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                f.write(chunk)
                now = time.monotonic() - t0
                parts = re.split(rb"[\r\n]", pending + chunk)
                pending = parts.pop()
                run.lines += [(now, p.decode("utf-8", "replace")) for p in parts if p.strip()]
        if pending.strip():
            run.lines.append((time.monotonic() - t0, pending.decode("utf-8", "replace")))
        _, status, rusage = os.wait4(proc.pid, 0)
    finally:
        if status is None:  # interrupted before the child was reaped: leave no orphan
            proc.kill()
            proc.wait()
    proc.returncode = run.returncode = os.waitstatus_to_exitcode(status)
    run.wall_s = time.monotonic() - t0
    run.max_rss_mb = max_rss_mb(rusage)
    if run.returncode != 0:
        tail = "\n".join(text for _, text in run.lines[-25:])
        raise BenchmarkError(f"{name} exited {run.returncode}; full log {log}; last lines:\n{tail}")
    return run


def tool(name):
    """A console script of the venv run.py runs in (else from PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise BenchmarkError(f"{name} not found beside {sys.executable} nor on PATH "
                             "(run with the project's .venv/bin/python)")
    return found


# ----------------------------------------------------------------------------- fairseq logs


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


# ----------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = work_of(args)
        self.scratch = Path(args.scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                        PYTHONUNBUFFERED="1")  # unbuffered: lines are timed as they are written
        self.runs = []
        self._cfg = {}
        self.ft_checkpoint = None
        self.results = {}

    def cfg(self, stage):
        if stage not in self._cfg:
            self._cfg[stage] = recorded_cfg(self.work.ckpt(stage))
        return self._cfg[stage]

    def call(self, name, argv):
        log = self.scratch / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"  {name} ...", end="", flush=True)
        run = run_timed(name, argv, log, self.env)
        print(f" {run.wall_s:.1f} s", flush=True)
        self.runs.append(run)
        return run

    # ------------------------------------------------------------------ featurization

    def featurization(self):
        quantizers = {"mfcc_kmeans": self.work.quantizer, "vq_wav2vec": self.vq_wav2vec_checkpoint()}
        subset = self.manifest_subset("test", self.args.featurize_utts, self.scratch / "featurize")
        audio_s = manifest_seconds(subset / "bench.tsv")
        rows = []
        for name, path in quantizers.items():
            run = self.call(f"featurize_{name}", [
                tool("slu-kd-featurize"), subset, "--quantizer", path, "--split", "bench",
                "--out", self.scratch / "featurize" / name, "--threads", self.args.threads,
                "--device", self.args.device, "--no-progress"])
            rows.append(featurize_row(run, name, audio_s, self.args.featurize_utts, path))
        return rows

    def vq_wav2vec_checkpoint(self):
        path = self.scratch / "vq-wav2vec_kmeans.pt"
        if not path.exists():
            write_vq_wav2vec(path)
        return path

    def manifest_subset(self, split, n, out_dir):
        """The first ``n`` utterances of manifests/fsc/{split}.tsv as out_dir/bench.tsv."""
        with open(self.work.manifests / f"{split}.tsv", encoding="utf-8") as f:
            lines = f.read().splitlines()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.tsv").write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
        return out_dir

    # ------------------------------------------------------------------ training

    def common_flags(self, save_dir, save=False):
        out = ["--user-dir", PLUGIN, "--num-workers", "0", "--optimizer", "adam",
               "--log-format", "json", "--log-interval", "50", "--seed", "1",
               "--max-epoch", self.args.epochs, "--disable-validation", "--required-batch-size-multiple", "1",
               "--save-dir", save_dir, "--no-epoch-checkpoints"]
        # a checkpoint only where one is used (FT-KD, for the inference section); the
        # other FT-KD runs save alike so the ratios compare like with like
        out += ["--save-interval", self.args.epochs] if save else ["--no-save"]
        return out + (["--cpu"] if self.args.device == "cpu" else [])

    def subset(self):
        # --quick trains on the (smaller) valid split: a check of the plumbing
        return "valid" if self.args.quick else "train"

    def stage_args(self, stage):
        """(data dir, fairseq-train flags) of a stage, sizes as WORK's checkpoints record."""
        w, sub = self.work, self.subset()
        if stage == "speech_bert":
            c = self.cfg("speech_bert")
            return w.bert_units, [
                "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
                *flags(c["model"], ROBERTA_KEYS), *flags(c["task"], ("tokens_per_sample", "sample_break_mode",
                                                                    "mask_prob")),
                *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "teacher" and self.cfg("teacher")["task"].get("_name") == "hf_text_classification":
            # the demo's default teacher: a Hugging Face encoder fine-tuned from its pretrained weights
            c = self.cfg("teacher")
            frozen = ["--freeze-embeddings"] if c["model"].get("freeze_embeddings") else []
            return w.fsc, [
                "--task", "hf_text_classification", "--arch", "hf_text_classifier", "--criterion",
                "slu_cross_entropy", *frozen, *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "teacher":
            c = self.cfg("teacher")
            return w.fsc, [
                "--task", "sentence_prediction", "--criterion", "sentence_prediction", "--arch", "roberta_base",
                *flags(c["model"], ROBERTA_KEYS), "--restore-file", w.ckpt("text_model"), "--reset-optimizer",
                "--reset-dataloader", "--reset-meters", "--num-classes", label_count(w.fsc),
                "--init-token", "0", "--separator-token", "2", *batch_flags(c), "--lr", lr_of(c),
                "--train-subset", sub]
        if stage == "pt_kd":
            c = self.cfg("pt_kd")
            return w.paired, [
                "--task", "speech_text_kd", "--arch", "speech_bert_kd", "--criterion", "speech_text_kd",
                "--speech-bert-path", w.ckpt("speech_bert"), "--text-model-path", w.ckpt("text_model"),
                *flags(c["task"], ("text_vector", "max_positions")), *flags(c["criterion"], ("kd_distance",)),
                *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "am_pt":
            c = self.cfg("am_pt")
            cache = ["--cache-speech-states"] if c["task"].get("cache_speech_states") else []
            return w.paired, [
                "--task", "ctc_pretraining", "--arch", "ds2_ctc", "--criterion", "ctc", "--zero-infinity",
                "--post-process", "letter", "--speech-bert-path", w.ckpt("pt_kd"), *flags(c["model"], DS2_KEYS),
                *cache, *flags(c["task"], ("max_positions",)), *batch_flags(c), "--lr", lr_of(c),
                "--train-subset", sub]
        if stage == "ft_kd":
            return w.fsc, self.ft_args()
        raise KeyError(stage)

    def ft_args(self, cache=True, teacher_logits="precompute", batching=None):
        """FT-KD as the demo grid's +AM-PT row runs it (PT-KD speech BERT, teacher, DS2
        from AM-PT, no data augmentation), with the three choices the ratios vary."""
        w, am = self.work, self.cfg("am_pt")
        batching = batching or ["--batch-size", str(self.args.ft_batch_size)]
        return ["--task", "slu_finetuning", "--arch", "slu_ds2", *flags(am["model"], DS2_KEYS),
                "--speech-bert-path", w.ckpt("pt_kd"), "--criterion", "slu_kd", "--teacher-path", w.ckpt("teacher"),
                "--am-path", w.ckpt("am_pt"), "--teacher-logits", teacher_logits,
                *(["--cache-speech-states"] if cache else []), *flags(am["task"], ("max_positions",)),
                *batching, "--train-subset", self.subset(), "--lr", "1e-3", "--lr-scheduler", "fixed",
                "--force-anneal", "1", "--lr-shrink", "0.952", "--weight-decay", "0.01"]

    def train(self, stage, variant="default", stage_flags=None, data=None):
        if stage_flags is None:
            data, stage_flags = self.stage_args(stage)
        name = f"train_{stage}" + ("" if variant == "default" else f"_{variant}")
        save_dir = self.scratch / "checkpoints" / name
        run = self.call(name, [tool("fairseq-train"), data, *self.common_flags(save_dir, save=stage == "ft_kd"),
                               *stage_flags])
        if stage == "ft_kd" and variant == "default":
            self.ft_checkpoint = save_dir / "checkpoint_last.pt"
        return train_result(run, stage, variant, stage_flags)

    def ft_base(self):
        """The FT-KD stage run, also the baseline of every ratio (run once)."""
        if "ft_base" not in self.results:
            self.results["ft_base"] = self.train("ft_kd")
        return self.results["ft_base"]

    def training(self):
        rows = []
        for stage in STAGES:
            rows.append(self.ft_base() if stage == "ft_kd" else self.train(stage))
        return [r.row() for r in rows]

    # ------------------------------------------------------------------ ratios

    def ratios(self):
        base, w = self.ft_base(), self.work
        no_cache = self.train("ft_kd", "no_cache", self.ft_args(cache=False), w.fsc)
        on_the_fly = self.train("ft_kd", "teacher_on_the_fly", self.ft_args(teacher_logits="on-the-fly"), w.fsc)
        max_tokens = self.max_tokens_for(self.args.ft_batch_size)
        bucketed = self.train("ft_kd", "max_tokens", self.ft_args(batching=["--max-tokens", str(max_tokens)]), w.fsc)
        horizon = self.args.horizon_epochs
        rows = [ratio_row("cache_speech_states", "states cached once (--cache-speech-states)",
                          "BERT recomputed every step", base, no_cache, horizon),
                ratio_row("teacher_logits", "logits precomputed (--teacher-logits precompute)",
                          "teacher every batch (--teacher-logits on-the-fly)", base, on_the_fly, horizon),
                ratio_row("length_bucketing", f"--max-tokens {max_tokens} (length-bucketed)",
                          f"--batch-size {self.args.ft_batch_size}", bucketed, base, horizon)]
        rows[2]["padding"] = self.padding(max_tokens)
        return rows

    def split_lengths(self):
        """Tokens per training utterance as fairseq batches them: <s> + units (+ </s>),
        capped at max_positions (tasks.common.encoder_input)."""
        from fairseq.data import Dictionary, data_utils

        max_pos = self.cfg("am_pt")["task"].get("max_positions") or 1024
        data = data_utils.load_indexed_dataset(str(self.work.fsc / "units" / self.subset()),
                                               Dictionary.load(str(self.work.fsc / "units" / "dict.txt")))
        return [min(int(n), max_pos - 1) + 1 for n in data.sizes]

    def max_tokens_for(self, batch_size):
        """--max-tokens giving about ``batch_size`` utterances per update on average:
        length-sorted batches of N tokens number about sum(lengths) / N."""
        lengths = self.split_lengths()
        return max(max(lengths), round(batch_size * statistics.mean(lengths)))

    def padding(self, max_tokens):
        """Padding share of the batches fairseq forms from the length-sorted split."""
        import numpy as np
        from fairseq.data import data_utils

        lengths = np.array(self.split_lengths())
        order = np.argsort(lengths, kind="mergesort")
        fixed = [order[i:i + self.args.ft_batch_size] for i in range(0, len(order), self.args.ft_batch_size)]
        bucketed = data_utils.batch_by_size(order, lambda i: lengths[i], max_tokens=max_tokens,
                                            required_batch_size_multiple=1)
        share = lambda batches: 1 - lengths.sum() / sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
        return {"fixed_batch": float(share(fixed)), "max_tokens": float(share(bucketed)),
                "fixed_batches": len(fixed), "max_tokens_batches": len(bucketed)}

    # ------------------------------------------------------------------ inference

    def inference(self):
        self.ft_base()
        model_dir, ts_path = self.scratch / "model", self.scratch / "model.ts.pt"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        package = self.call("package", [tool("slu-kd-package"), self.ft_checkpoint, model_dir, "--data",
                                        self.work.fsc, "--quantizer", self.work.quantizer,
                                        "--manifest-dir", self.work.manifests])
        export = self.call("export", [tool("slu-kd-export"), model_dir, ts_path, "--format", "torchscript",
                                      "--device", self.args.device])
        exports = {"torchscript": export.wall_s}
        onnx_path = None
        if self.args.device == "cpu" and package_version("onnxruntime"):
            onnx_path = self.scratch / "model.onnx"
            exports["onnx"] = self.call("export_onnx", [tool("slu-kd-export"), model_dir, onnx_path,
                                                        "--format", "onnx"]).wall_s
        subset = self.manifest_subset("test", self.args.latency_utts, self.scratch / "latency")
        rows = measure_latency(model_dir, ts_path, subset / "bench.tsv", self.args, onnx_path=onnx_path)
        for row in rows:
            row["package_s"], row["export_s"] = package.wall_s, exports.get(row["path"])
        return rows


# ----------------------------------------------------------------------------- pieces


def write_vq_wav2vec(path, seed=0):
    """A vq-wav2vec of the published size with random weights, saved as the 2019 file
    is: legacy (non-zip) serialization, an ``args`` Namespace, fp16 weights."""
    import torch
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.wav2vec.wav2vec import Wav2VecModel

    modern = dict(PUBLISHED_VQ_WAV2VEC, task="audio_pretraining", criterion="wav2vec")
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # hydra's deprecation chatter about fairseq's configs
        warnings.simplefilter("ignore")
        logging.getLogger("hydra").setLevel(logging.WARNING)
        model = Wav2VecModel(convert_namespace_to_omegaconf(argparse.Namespace(**modern)).model)
    state = {"args": argparse.Namespace(**PUBLISHED_VQ_WAV2VEC),
             "model": {k: v.half() for k, v in model.state_dict().items()},
             "optimizer_history": [{"criterion_name": "BinaryCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                                    "lr_scheduler_state": {"best": 0.0}, "num_updates": 400000}],
             "extra_state": {"epoch": 1, "train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
             "last_optimizer_state": {}}
    tmp = f"{path}.tmp"
    torch.save(state, tmp, _use_new_zipfile_serialization=False)
    os.replace(tmp, path)


def quantizer_params(path):
    import slu_kd_plugin  # noqa: F401
    from slu_kd_plugin.quantize import load_quantizer

    q = load_quantizer(path)
    if hasattr(q, "model"):
        return sum(p.numel() for p in q.model.parameters())
    return int(q.centroids.numel())


def manifest_seconds(tsv):
    with open(tsv, encoding="utf-8") as f:
        rows = f.read().splitlines()[1:]
    return sum(int(r.split("\t")[1]) for r in rows) / 16000.0


_FEATURIZE_DONE = re.compile(r"(\d+) utterances \((\d+) resumed\), (\d+) s of audio at ([\d.]+)x real time")


def featurize_row(run, name, audio_s, n_utts, path):
    """slu-kd-featurize's own speed (its encode loop: audio reading + quantizer) and the
    span from the quantizer being loaded to the last line (adds the dictionary and the
    quantizer file's fingerprint)."""
    done = [m for _, text in run.lines for m in [_FEATURIZE_DONE.search(text)] if m]
    if not done:
        raise BenchmarkError(f"{run.log}: slu-kd-featurize did not report its speed")
    loaded = run.time_of("quantizer from")
    span = run.time_of("real time", last=True) - loaded
    return {"quantizer": name, "params": quantizer_params(path), "utterances": n_utts, "audio_s": audio_s,
            "audio_s_per_s": float(done[-1].group(4)), "loaded_to_done_s": span,
            "audio_s_per_s_incl_overhead": audio_s / span if span > 0 else None,
            "startup_s": loaded, "wall_s": run.wall_s, "max_rss_mb": run.max_rss_mb}


def ratio_row(name, candidate_label, reference_label, candidate, reference, horizon):
    """How much faster ``candidate``'s epochs are than ``reference``'s (below 1: slower),
    and what the candidate pays once: the extra time loading the training split takes
    (caching states, precomputing logits), also folded into a run of ``horizon`` epochs."""
    total = lambda r: r.train_load_s + horizon * r.stats.epoch_s  # noqa: E731
    row = {"name": name, "candidate": candidate_label, "reference": reference_label,
           "candidate_epoch_s": candidate.stats.epoch_s, "reference_epoch_s": reference.stats.epoch_s,
           "speedup": reference.stats.epoch_s / candidate.stats.epoch_s,
           "candidate_train_load_s": candidate.train_load_s, "reference_train_load_s": reference.train_load_s,
           "one_off_s": candidate.train_load_s - reference.train_load_s, "horizon_epochs": horizon,
           "speedup_incl_one_off": total(reference) / total(candidate),
           "candidate_utts_per_update": candidate.stats.utts_per_update,
           "reference_utts_per_update": reference.stats.utts_per_update,
           "candidate_max_rss_mb": candidate.max_rss_mb, "reference_max_rss_mb": reference.max_rss_mb}
    if name in TARGETS:
        row["target"] = TARGETS[name]
        row["target_met"] = row["speedup"] >= TARGETS[name]
    return row


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure_latency(model_dir, ts_path, tsv, args, warmup=2, onnx_path=None):
    """Per-utterance latency, audio file -> intent, of SLUModel.predict (eager), of the
    quantizer + TorchScript file and (when given) of the quantizer + ONNX file under ONNX
    Runtime; the paths alternate utterance by utterance, so a busy moment on a shared
    machine hits them alike."""
    import torch

    from slu_kd_plugin.hub import SLUModel

    torch.set_num_threads(args.threads)
    slu = SLUModel.from_pretrained(model_dir, device=args.device)
    scripted = torch.jit.load(str(ts_path), map_location=args.device)
    with open(tsv, encoding="utf-8") as f:
        root, *rows = f.read().splitlines()
    utts = [(os.path.join(root, r.split("\t")[0]), int(r.split("\t")[1]) / 16000.0) for r in rows]

    def timed(score):
        def predict(path):
            units = slu.units(path)
            t = time.perf_counter()
            with torch.no_grad():
                probs = score(units[None].to(slu.device)).cpu()
            model_s = time.perf_counter() - t
            return slu.describe(probs[0]), model_s
        return predict

    paths = {"eager": timed(slu.scorer), "torchscript": timed(scripted)}
    if onnx_path is not None:
        from slu_kd_plugin.onnx_scorer import OnnxScorer

        paths["onnx"] = timed(OnnxScorer(onnx_path, threads=args.threads))
    timings = {name: [] for name in paths}
    agree = dict.fromkeys(paths, 0)
    for i, (path, _) in enumerate(utts[:warmup] + utts):  # the first calls pay one-off costs
        intents = {}
        for name, fn in paths.items():
            t = time.perf_counter()
            prediction, model_s = fn(path)
            if i >= warmup:
                timings[name].append((time.perf_counter() - t, model_s))
            intents[name] = prediction["intent"]
        if i >= warmup:
            for name in paths:
                agree[name] += intents[name] == intents["eager"]
    audio_s = sum(d for _, d in utts)
    return [latency_row(name, rows_, audio_s, agree[name] / len(utts)) for name, rows_ in timings.items()]


def latency_row(name, rows, audio_s, agreement):
    total = [t for t, _ in rows]
    model = [m for _, m in rows]
    return {"path": name, "utterances": len(rows), "audio_s": audio_s,
            "p50_ms": 1000 * percentile(total, 50), "p95_ms": 1000 * percentile(total, 95),
            "mean_ms": 1000 * statistics.mean(total), "rtf": sum(total) / audio_s,
            "model_p50_ms": 1000 * percentile(model, 50), "model_p95_ms": 1000 * percentile(model, 95),
            "same_intent_as_eager": agreement}


# ----------------------------------------------------------------------------- report


def machine_info(args):
    import torch

    info = {"cpu_count": os.cpu_count(), "threads": args.threads, "device": args.device,
            "cpu_model": cpu_model(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "fairseq": package_version("fairseq"),
            "git_commit": git(["rev-parse", "HEAD"]), "git_dirty": bool(git(["status", "--porcelain"])),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_at_start": load_average()}
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def load_average():
    """1-minute load average (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def cpu_busy_s():
    """CPU seconds every process on the machine has used since boot (Linux), or None."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """CPU seconds of this process and the children it has waited for."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class OtherLoad:
    """Average number of cores other processes kept busy while the benchmark ran: the
    machine's CPU time minus the benchmark's own, over the wall time."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), cpu_busy_s(), own_cpu_s()

    def cores(self):
        busy = cpu_busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.monotonic() - self.t0
        return round(max(0.0, (busy - self.busy0) - (own_cpu_s() - self.own0)) / wall, 2) if wall > 0 else None


def busy_warning(machine):
    """A line for the report when other processes used the CPU: torch's thread pool
    spinning against them can make a run many times slower (seen: 20x on 2 cores)."""
    other = machine.get("other_processes_cores")
    if other is None or other <= BUSY_CORES:
        return None
    return (f"WARNING: other processes kept {other} of {machine['cpu_count']} cores busy during the run: "
            "these timings are upper bounds; measure on a quiet machine (or with --threads 1)")


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_version(name):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        try:
            return __import__(name).__version__
        except Exception:
            return None


def git(cmd):
    try:
        out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def markdown(report):
    warning = busy_warning(report["machine"])
    parts = [warning] if warning else []
    parts += [f"slu-kd benchmark: {report['machine']['cpu_count']} CPUs, {report['machine']['threads']} threads, "
             f"device {report['machine']['device']}, torch {report['machine']['torch']}, "
             f"commit {str(report['machine']['git_commit'])[:10]}{' (dirty)' if report['machine']['git_dirty'] else ''}"
             f"{', QUICK (smoke test, not for quoting)' if report['settings']['quick'] else ''}"]
    if "featurization" in report:
        parts.append(table(["quantizer", "params", "utterances", "audio (s)", "audio s / s", "peak RSS (MB)"], [
            (r["quantizer"], fmt(r["params"]), r["utterances"], fmt(r["audio_s"], 1), fmt(r["audio_s_per_s"], 1),
             fmt(r["max_rss_mb"], 0)) for r in report["featurization"]]))
    if "training" in report:
        parts.append(table(["stage", "utts/update", "updates/s", "utts/s", "epoch (s)", "start-up (s)",
                            "train-split load (s)", "peak RSS (MB)"], [
            (STAGE_NAMES[r["stage"]], fmt(r["utts_per_update"], 1), fmt(r["updates_per_s"]), fmt(r["utts_per_s"], 1),
             fmt(r["epoch_s"]), fmt(r["startup_s"], 1), fmt(r["train_load_s"], 1), fmt(r["max_rss_mb"], 0))
            for r in report["training"]]))
    if "inference" in report:
        parts.append(table(["path (audio file -> intent)", "p50 (ms)", "p95 (ms)", "RTF", "model only p50 (ms)"], [
            (r["path"], fmt(r["p50_ms"], 1), fmt(r["p95_ms"], 1), fmt(r["rtf"], 4), fmt(r["model_p50_ms"], 1))
            for r in report["inference"]]))
    if "ratios" in report:
        parts.append(table(["FT-KD: candidate / reference", "epoch (s)", "speed-up", "one-off (s)",
                            "speed-up incl. one-off", "utts/update", "target"], [
            (f"{r['candidate']} / {r['reference']}", f"{fmt(r['candidate_epoch_s'])} / {fmt(r['reference_epoch_s'])}",
             f"{fmt(r['speedup'])}x", fmt(r["one_off_s"], 1),
             f"{fmt(r['speedup_incl_one_off'])}x ({r['horizon_epochs']} ep)",
             f"{fmt(r['candidate_utts_per_update'], 1)} / {fmt(r['reference_utts_per_update'], 1)}",
             f">= {r['target']}x: {fmt(r['target_met'])}" if "target" in r else "–")
            for r in report["ratios"]]))
    return "\n\n".join(parts)


def write_json(path, report):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="finished demo work dir (examples/synthetic/run.sh WORK "
                   "--stop-stage 5); read only")
    p.add_argument("--out", help="JSON results, written atomically (default: WORK/benchmarks.json)")
    p.add_argument("--quick", action="store_true",
                   help="smoke version: train on the valid split for 2 epochs, featurize 3 and time 5 "
                        "utterances; checks the plumbing, its numbers are not for quoting")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch/OpenMP threads of every process (default: all cores, here %(default)s)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--epochs", type=int, help="epochs per training run; the first is a warm-up "
                   "(default 3, --quick 2)")
    p.add_argument("--featurize-utts", type=int, help="test utterances to featurize (default 100, --quick 3)")
    p.add_argument("--latency-utts", type=int, help="test utterances to time (default 100, --quick 5)")
    p.add_argument("--ft-batch-size", type=int, default=32,
                   help="FT-KD utterances per update; --max-tokens is chosen to match it on average")
    p.add_argument("--horizon-epochs", type=int, default=15,
                   help="epochs over which one-off costs are folded into the ratios (the demo "
                        "fine-tunes for 15)")
    p.add_argument("--teacher", help="text teacher checkpoint (default: WORK/checkpoints/teacher_train "
                   "or WORK/checkpoints/teacher)")
    p.add_argument("--scratch", help="where runs save and log (default: a new temp dir, removed after "
                   "a successful run)")
    p.add_argument("--keep-scratch", action="store_true", help="keep the scratch dir (logs, checkpoints)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 2:
        p.error("--epochs must be at least 2 (the first is a warm-up)")
    defaults = (2, 3, 5) if args.quick else (3, 100, 100)
    args.epochs = args.epochs or defaults[0]
    args.featurize_utts = args.featurize_utts or defaults[1]
    args.latency_utts = args.latency_utts or defaults[2]
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out = args.out or str(Path(args.work) / "benchmarks.json")
    return args


def run_sections(bench):
    """Every requested section, the machine and the runs, as the JSON report."""
    args = bench.args
    report = {"settings": {
        "work": str(bench.work.root), "quick": args.quick, "epochs": args.epochs, "sections": args.sections,
        "featurize_utts": args.featurize_utts, "latency_utts": args.latency_utts,
        "ft_batch_size": args.ft_batch_size, "horizon_epochs": args.horizon_epochs,
        "train_subset": bench.subset()}}
    other_load = OtherLoad()
    report["machine"] = machine_info(args)
    if (report["machine"]["load_average_at_start"] or 0) > 1:
        print(f"note: 1-min load average {report['machine']['load_average_at_start']} before starting: "
              "other processes are using the CPU", file=sys.stderr)
    for section in SECTIONS:  # in this order: inference reuses the FT-KD checkpoint
        if section in args.sections:
            print(f"== {section}", flush=True)
            report[section] = getattr(bench, section)()
    report["machine"]["other_processes_cores"] = other_load.cores()
    report["runs"] = [r.summary() for r in bench.runs]
    return report


def main(argv=None):
    # the parent only reports; fairseq's and hydra's INFO/DEBUG chatter on import is noise
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    try:
        work_of(args).check()
    except BenchmarkError as e:
        sys.exit(f"benchmarks/run.py: error: {e}")
    keep = args.scratch is not None or args.keep_scratch
    args.scratch = args.scratch or tempfile.mkdtemp(prefix="slu-kd-bench-")
    try:
        report = run_sections(Bench(args))
    except BenchmarkError as e:
        print(f"\nbenchmarks/run.py: error: {e}\n(scratch dir kept: {args.scratch})", file=sys.stderr)
        sys.exit(1)
    if not keep:  # the logs named in the report go with the scratch dir
        for run in report["runs"]:
            run["log"] = None
    write_json(args.out, report)
    print()
    print(markdown(report))
    print(f"\nresults: {args.out}")
    if keep:
        print(f"scratch: {args.scratch}")
    else:
        shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
