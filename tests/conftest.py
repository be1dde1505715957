"""Shared fixtures: a tiny but real slu-kd pipeline, built once per test session.

``pipeline``: TTS-spoken corpora -> manifests -> quantizer -> units -> data-bin, all by
the console scripts a user runs.  ``trained``: every training stage of
examples/synthetic/run.sh (speech BERT, text model, teacher, PT-KD, AM-PT, FT-KD) run
by the real ``fairseq-train`` with tiny sizes.  Tests use the ``Pipeline`` object to
re-run a stage with extra arguments (argparse keeps the last value of a repeated
option, so extra arguments override the stage's own).
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import slu_kd_plugin
from slu_kd_plugin.recipe import settings

# the tests parse fairseq options with --user-dir in this process, after the plugin was
# imported (which no longer imports fairseq): fairseq then registers nothing itself
slu_kd_plugin.register()

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "slu_kd_plugin"
BIN = Path(sys.executable).parent  # the venv's console scripts

# One thread per process: on 2 shared cores, torch's default thread pool makes tiny
# models ~10x slower (threads spin against each other and other processes).
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")

# what examples/common/stages.sh's train() passes to every stage, with JSON logs;
# the tiny splits (4-12 utterances) need --required-batch-size-multiple 1, or fairseq
# drops every last batch that is not a multiple of 8 (some splits would be empty)
TRAIN_COMMON = ["--user-dir", str(PLUGIN), "--cpu", "--optimizer", "adam", "--no-epoch-checkpoints",
                "--log-format", "json", "--log-interval", "1", "--num-workers", "0",
                "--required-batch-size-multiple", "1", "--batch-size", "8", "--seed", "1"]
STAGE_ORDER = ("speech_bert", "text_model", "teacher", "pt_kd", "am_pt", "ft_kd")


def tool(name):
    return str(BIN / name)


def tail(path, n=30):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def start(args, log):
    f = open(log, "w")
    proc = subprocess.Popen([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT, env=ENV, cwd=str(REPO))
    f.close()
    return proc


def run_all(*jobs, check=True, timeout=600):
    """Run (args, log) jobs side by side; return their exit codes, or fail with the
    failing job's log tail when ``check``."""
    procs = [(start(args, log), args, log) for args, log in jobs]
    codes = []
    for proc, args, log in procs:
        codes.append(proc.wait(timeout=timeout))
        if check and codes[-1] != 0:
            raise AssertionError(f"{Path(args[0]).name} exited {codes[-1]}; end of {log}:\n{tail(log)}")
    return codes


def run(args, log, check=True):
    return run_all((args, log), check=check)[0]


def log_records(log, kind="train"):
    """The JSON stats fairseq-train/-validate log per epoch for ``kind`` (train, valid, test)."""
    marker = f"| {kind} | "
    records = []
    with open(log, errors="replace") as f:
        for line in f:
            i = line.find(marker)
            if i >= 0 and line.rstrip().endswith("}"):
                records.append(json.loads(line[i + len(marker):]))
    return records


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def ft_kd_job(trained, save_dir, extra):
    """fairseq-train of the trained pipeline's FT-KD stage without DA, with ``extra`` flags:
    (args, log) for run() or run_all(), in a new ``save_dir``."""
    data, args = trained.stage_args("ft_kd")
    args = [a for a in args if a not in ("--augment-units", "--augment-hidden")]
    save_dir.mkdir()
    return [tool("fairseq-train"), data, *TRAIN_COMMON, "--save-dir", save_dir, *args, *extra], save_dir / "train.log"


def error_message(log):
    """The text of the exception a failed run ended with (its last exception line on)."""
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    starts = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    return "\n".join(lines[starts[-1]:]) if starts else ""


class Pipeline:
    """Paths of the tiny pipeline and the command line of each training stage."""

    def __init__(self, root):
        self.root = Path(root)
        self.manifests = self.root / "manifests"
        self.data = self.root / "data-bin" / "fsc"
        self.paired = self.root / "data-bin" / "paired"
        self.ck = self.root / "checkpoints"
        self.timings = {}

    def ckpt(self, stage, which="best"):
        return self.ck / stage / f"checkpoint_{which}.pt"

    def log(self, stage):
        return self.ck / stage / "train.log"

    def num_labels(self):
        with open(self.data / "label" / "dict.txt") as f:
            return sum(not line.startswith("madeupword") for line in f)

    def stage_args(self, stage):
        """(data dir, fairseq-train arguments) of a stage: the recipes' stage functions
        (slu_kd_plugin/recipe/settings.py) with the tiny pipeline's values (``TESTS``)."""
        p, ck = settings.TESTS, self.ckpt
        max_pos = p.bert.max_positions
        if stage == "speech_bert":
            return self.paired / "units", settings.speech_bert(p, "train")
        if stage == "text_model":
            return self.paired / "input0", settings.text_model(p, "train")
        if stage == "teacher":
            return self.data, settings.teacher(p, str(ck("text_model")), p.text.flags(), self.num_labels(), "train")
        if stage == "pt_kd":
            return self.paired, settings.pt_kd(p, str(ck("speech_bert")), str(ck("text_model")), p.text_vector,
                                               max_pos, "train")
        if stage == "am_pt":
            return self.paired, settings.am_pt(p, str(ck("pt_kd")), max_pos, "train")
        if stage == "ft_kd":
            method = settings.full_method(p, str(ck("teacher")), str(ck("am_pt")), str(self.paired), p.augment)
            return self.data, settings.fine_tuning(p, p.ds2.flags(), str(ck("pt_kd")), max_pos, "train",
                                                   method=method)
        raise KeyError(stage)

    def train_job(self, stage, save_dir=None, extra=()):
        """(args, log) of ``fairseq-train`` for a stage, saving to ``save_dir``."""
        save_dir = Path(save_dir or self.ck / stage)
        save_dir.mkdir(parents=True, exist_ok=True)
        data, args = self.stage_args(stage)
        argv = [tool("fairseq-train"), data, *TRAIN_COMMON, "--save-dir", save_dir, *args, *extra]
        return argv, save_dir / "train.log"

    def train(self, stage, save_dir=None, extra=(), check=True):
        """Run a stage; returns (exit code, log path)."""
        args, log = self.train_job(stage, save_dir, extra)
        return run(args, log, check=check), log

    def timed(self, name, *jobs):
        t0 = time.time()
        run_all(*jobs)
        self.timings[name] = time.time() - t0


def build_data(p):
    """run.sh stages 0-1 at tiny size: corpora, manifests, quantizer, units, data-bin."""
    r, m = p.root, p.manifests
    p.timed("corpora",
            ([tool("slu-kd-synth"), "fsc", r / "corpus/fsc", "--speakers", "6", "--utts-per-speaker", "12",
              "--valid-speakers", "1", "--test-speakers", "1", "--seed", "1", "--jobs", "1", "--quiet"],
             r / "synth_fsc.log"),
            ([tool("slu-kd-synth"), "librispeech", r / "corpus/librispeech", "--utterances", "40",
              "--seed", "2", "--jobs", "1", "--quiet"], r / "synth_ls.log"))
    # 48 training utterances cannot cover all 31 intents: the held-out speakers say some
    # the training speakers never did, so the label dict is written from every split
    p.timed("manifests",
            ([tool("slu-kd-prepare"), "fsc", r / "corpus/fsc", m / "fsc", "--subset-fraction", "0.5",
              "--subset-name", "train10", "--seed", "1", "--allow-unseen-labels"], r / "prepare_fsc.log"),
            ([tool("slu-kd-prepare"), "librispeech", r / "corpus/librispeech", m / "paired",
              "--train", "train-clean-100", "--valid", "dev-clean"], r / "prepare_ls.log"))
    p.timed("quantizer", ([tool("slu-kd-fit-quantizer"), m / "paired", "--split", "train", "--n-clusters", "32",
                           "--seed", "1", "--out", r / "quantizer.pt", "--no-progress"], r / "quantizer.log"))
    p.timed("units",
            ([tool("slu-kd-featurize"), m / "fsc", "--quantizer", r / "quantizer.pt",
              "--split", "train,train10,valid,test", "--no-progress"], r / "featurize_fsc.log"),
            ([tool("slu-kd-featurize"), m / "paired", "--quantizer", r / "quantizer.pt",
              "--split", "train,valid", "--no-progress"], r / "featurize_ls.log"))
    labels = sorted({line.strip() for s in ("train", "valid", "test") for line in open(m / "fsc" / f"{s}.label")})
    (r / "labels.txt").write_text("".join(f"{label} 1\n" for label in labels))
    p.timed("binarize fsc", ([tool("slu-kd-binarize"), m / "fsc", p.data, "--splits", "train", "train10", "valid",
                              "test", "--spm-extra-text", m / "paired" / "train.txt", "--spm-vocab-size", "100",
                              "--label-dict", r / "labels.txt"], r / "binarize_fsc.log"))
    p.timed("binarize paired", ([tool("slu-kd-binarize"), m / "paired", p.paired, "--splits", "train", "valid",
                                 "--streams", "units", "input0", "ltr", "--spm-model", p.data / "spm.model"],
                                r / "binarize_paired.log"))


def train_all(p):
    """run.sh stages 2-6 in dependency order, independent stages side by side."""
    p.timed("speech BERT + text model", p.train_job("speech_bert"), p.train_job("text_model"))
    p.timed("teacher + PT-KD", p.train_job("teacher"), p.train_job("pt_kd"))
    shutil.copy(p.data / "label" / "dict.txt", p.ck / "teacher" / "label_dict.txt")  # as run.sh does
    p.timed("AM-PT", p.train_job("am_pt"))
    p.timed("FT-KD", p.train_job("ft_kd"))


def built_once(tmp_path_factory, name, build):
    """``build(dir)`` into the base temp dir's ``name``, once per test session whatever the
    number of pytest-xdist workers: the first worker to get here builds, under a lock in
    the base temp dir the workers share; the others wait for it and reuse what it made."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has its own basetemp below the shared one
        base = base.parent
    root = base / name
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not Path(f"{root}.done").exists():
            shutil.rmtree(root, ignore_errors=True)  # what a failed build left starts anew
            root.mkdir()
            build(root)
            Path(f"{root}.done").touch()
    return root


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    return Pipeline(built_once(tmp_path_factory, "pipeline", lambda root: build_data(Pipeline(root))))


@pytest.fixture(scope="session")
def trained(pipeline, tmp_path_factory):
    def train(_):
        train_all(pipeline)
        print("\npipeline timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in pipeline.timings.items()))

    built_once(tmp_path_factory, "pipeline/checkpoints", train)
    return pipeline


# pytest-xdist hands out whole files in collection order (pytest.ini): first the files
# that make their own corpora and run whole recipes, the longest first, so that they run
# beside the shared pipeline's build and the tests on it rather than after them
LONG_FIRST = ("test_recipes.py", "test_published_recipes.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))  # stable: else as collected
