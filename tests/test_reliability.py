"""Interruption and determinism of a training stage (FT-KD, the longest one users run):
a run killed with SIGKILL mid-training resumes from checkpoint_last.pt and ends with the
same number of updates, and two runs with the same seed report the same metrics."""
import signal
import time

import pytest

from conftest import log_records, run, start


def _updates(log):
    return int(log_records(log, "train")[-1]["train_num_updates"])


def _kill_after_first_checkpoint(proc, save_dir, timeout=300):
    deadline = time.time() + timeout
    while not (save_dir / "checkpoint_last.pt").exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within the time limit"
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch: the kill lands mid-epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_same_updates(trained, tmp_path):
    epochs = ["--max-epoch", "6"]
    ref_args, ref_log = trained.train_job("ft_kd", tmp_path / "ref", extra=epochs)
    run(ref_args, ref_log)
    args, log = trained.train_job("ft_kd", tmp_path / "killed", extra=epochs)
    _kill_after_first_checkpoint(start(args, log), tmp_path / "killed")
    resumed_log = tmp_path / "killed" / "resumed.log"
    run(args, resumed_log)
    assert "Loaded checkpoint" in resumed_log.read_text()
    assert _updates(resumed_log) == _updates(ref_log)


@pytest.mark.slow
def test_same_seed_same_metrics(trained, tmp_path):
    logs = []
    for name in ("a", "b"):
        args, log = trained.train_job("ft_kd", tmp_path / name, extra=["--max-epoch", "2"])
        run(args, log)
        logs.append(log)
    keys = ("valid_loss", "valid_accuracy", "valid_acc_action")
    first, second = ([[r[k] for k in keys] for r in log_records(log, "valid")] for log in logs)
    assert first == second and first
