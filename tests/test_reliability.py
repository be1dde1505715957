"""Interruption and determinism of a training stage (FT-KD, the longest one users run):
a run killed with SIGKILL mid-training (after a checkpoint and a later update) resumes from checkpoint_last.pt and ends with the
same number of updates, and two runs with the same seed report the same metrics."""
import signal
import time

import pytest
import torch

from conftest import log_records, run, start, tail


def _updates(log):
    return int(log_records(log, "train")[-1]["train_num_updates"])


def _checkpoint_updates(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(state["optimizer_history"][-1]["num_updates"])


def _kill_mid_training(proc, save_dir, log, timeout=300):
    """SIGKILL ``proc`` once it has saved a checkpoint and logged an update of a later
    epoch: then the kill provably lands while training is under way (a fixed sleep let a
    fast machine finish every epoch first, and the "resume" then trained nothing)."""
    deadline = time.time() + timeout
    while not (
        (save_dir / "checkpoint_last.pt").exists()
        and any(r["epoch"] >= 2 for r in log_records(log, "train_inner"))
    ):
        assert proc.poll() is None, f"training ended before it could be killed mid-run:\n{tail(log)}"
        assert time.time() < deadline, "no checkpoint and later update within the time limit"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_same_updates(trained, tmp_path):
    # enough epochs that the run cannot end in the moment between the kill's trigger
    # (an update logged after the first checkpoint) and the kill itself
    epochs = ["--max-epoch", "40"]
    ref_args, ref_log = trained.train_job("ft_kd", tmp_path / "ref", extra=epochs)
    run(ref_args, ref_log)
    final = _updates(ref_log)
    args, log = trained.train_job("ft_kd", tmp_path / "killed", extra=epochs)
    proc = start(args, log)
    _kill_mid_training(proc, tmp_path / "killed", log)
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}: the process was not killed"
    assert "done training" not in log.read_text()
    saved = _checkpoint_updates(tmp_path / "killed" / "checkpoint_last.pt")
    assert 0 < saved < final, f"checkpoint_last holds {saved} of {final} updates: nothing left to resume"
    resumed_log = tmp_path / "killed" / "resumed.log"
    run(args, resumed_log)
    assert "Loaded checkpoint" in resumed_log.read_text()
    assert log_records(resumed_log, "train")[0]["epoch"] > 1  # it went on, not from the start
    assert _updates(resumed_log) == final


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
