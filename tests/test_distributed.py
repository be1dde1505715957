"""Two CPU workers (torchrun, gloo, fairseq's env:// initialization through
slu-kd-train) reach the numbers one worker reaches with the same samples per update
(one worker: --update-freq 2, two workers: one batch each), for PT-KD, AM-PT and FT-KD
with the teacher and cached speech states: the same pooled train and valid loss,
accuracy, macro-F1, per-slot accuracy and CER, and the same weights; --threads reaches
every worker."""
import socket
import sys

import pytest
import torch

from conftest import BIN, TRAIN_COMMON, log_records, run

pytestmark = pytest.mark.slow  # real fairseq-train runs on the conftest pipeline

# per-step averages (words/batch, words/s, wall time) legitimately differ with the split
PER_STEP = ("wps", "ups", "wpb", "bsz", "wall", "train_wall", "gb_free")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_cmd(workers):
    module = ["-m", "slu_kd_plugin.cli.train", "--threads", "1"]
    if workers == 1:
        return [sys.executable, *module]
    return [str(BIN / "torchrun"), "--nproc_per_node", str(workers), "--master_addr", "127.0.0.1",
            "--master_port", str(free_port()), *module]


def run_stage(trained, stage, workers, save_dir, extra=()):
    data, args = trained.stage_args(stage)
    # --augment-* draw random masks, which one worker and two cannot share
    args = [a for a in args if a not in ("--augment-units", "--augment-hidden")]
    freq = ["--update-freq", "2"] if workers == 1 else []
    common = [str(a) for a in TRAIN_COMMON if str(a) != "--user-dir" and "slu_kd_plugin" not in str(a)]
    argv = [*train_cmd(workers), data, "--user-dir", "slu_kd_plugin", *common, "--save-dir", save_dir,
            *args, "--max-epoch", "2", *freq, *extra]
    save_dir.mkdir(parents=True, exist_ok=True)
    run(argv, save_dir / "train.log")
    return save_dir / "train.log"


def pooled(records):
    return [{k: v for k, v in r.items() if k.split("_", 1)[-1] not in PER_STEP} for r in records]


def assert_same_numbers(log1, log2, kind):
    one, two = pooled(log_records(log1, kind)), pooled(log_records(log2, kind))
    assert one and len(one) == len(two)
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for key in a:  # logged rounded: equal, or one step of the last digit apart
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-3, abs=0.002), (kind, key, a, b)


def assert_same_weights(dir1, dir2):
    a = torch.load(dir1 / "checkpoint_last.pt", weights_only=False)["model"]
    b = torch.load(dir2 / "checkpoint_last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-4), key


@pytest.fixture(scope="module")
def no_dropout_bert(trained, tmp_path_factory):
    """The speech BERT again without dropout: two workers draw other dropout masks than
    one worker's consecutive batches, and PT-KD trains the BERT itself."""
    save = tmp_path_factory.mktemp("bert0")
    trained.train("speech_bert", save, extra=["--dropout", "0", "--attention-dropout", "0", "--max-epoch", "1"])
    return save / "checkpoint_best.pt"


@pytest.mark.parametrize("stage", ["pt_kd", "am_pt", "ft_kd"])
def test_two_workers_reach_one_workers_numbers(trained, no_dropout_bert, stage, tmp_path):
    extra = ["--speech-bert-path", str(no_dropout_bert)] if stage == "pt_kd" else []
    if stage in ("am_pt", "ft_kd"):
        extra += ["--cache-speech-states"]
    log1 = run_stage(trained, stage, 1, tmp_path / "one", extra)
    log2 = run_stage(trained, stage, 2, tmp_path / "two", extra)
    text = log2.read_text()
    assert "rank 1: 1 torch threads" in text and "rank 0: 1 torch threads" in text  # --threads reached both
    assert "distributed init (rank 0): env://" in text
    assert_same_numbers(log1, log2, "train")
    assert_same_numbers(log1, log2, "valid")
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    if stage == "ft_kd":
        valid = log_records(log2, "valid")[-1]
        assert {"valid_accuracy", "valid_macro_f1", "valid_acc_action"} <= valid.keys()


def test_torchrun_worker_options_and_threads():
    from slu_kd_plugin.cli.train import split_threads, torchrun_args

    env = dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="h", MASTER_PORT="1")
    opts = torchrun_args(["data", "--cpu"], env, cuda=False)
    assert opts == ["--distributed-init-method", "env://", "--distributed-world-size", "2",
                    "--distributed-rank", "1", "--device-id", "1", "--distributed-backend", "gloo",
                    "--ddp-backend", "legacy_ddp", "--distributed-no-spawn"]
    # what the user gives wins; outside torchrun nothing is added; GPUs keep fairseq's backends
    assert "--ddp-backend" not in torchrun_args(["data", "--cpu", "--ddp-backend=no_c10d"], env, cuda=False)
    assert "gloo" not in torchrun_args(["data"], env, cuda=True)
    assert torchrun_args(["data", "--cpu"], {}, cuda=False) == []
    assert split_threads(["d", "--threads", "3", "--cpu"]) == (3, ["d", "--cpu"])
    with pytest.raises(SystemExit, match="positive whole number"):
        split_threads(["d", "--threads=0"])
