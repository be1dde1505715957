"""Training you can watch: the recipes' train() (examples/common/stages.sh) writes
TensorBoard event files per stage and a curve PNG from fairseq's log, the threads it
is given reach fairseq-train, and slu-kd-results draws one curve per fine-tuning run
beside results.png."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BIN, ENV, REPO

STAGES_SH = REPO / "examples" / "common" / "stages.sh"


def run_train_wrapper(trained, save, threads, extra=()):
    """stages.sh's train() on the tiny FT-KD stage, in bash, as a recipe calls it."""
    data, args = trained.stage_args("ft_kd")
    args = [str(a) for a in args] + ["--max-epoch", "3", "--batch-size", "8", "--required-batch-size-multiple", "1",
                                     "--log-interval", "1", "--seed", "1", *extra]
    script = f'ROOT="{REPO}"; source "{STAGES_SH}"; train "$@"'
    env = {k: v for k, v in ENV.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(SLU_KD_THREADS=str(threads), PATH=f"{BIN}:{env['PATH']}")
    result = subprocess.run(["bash", "-c", script, "train", str(save), str(data), *args], env=env,
                            capture_output=True, text=True, timeout=600, cwd=str(REPO))
    assert result.returncode == 0, result.stderr + (save / "train.log").read_text()[-3000:]
    return save / "train.log"


@pytest.fixture(scope="module")
def wrapped(trained, tmp_path_factory):
    """One run of the train() wrapper on one thread (its save dir), for the tests below."""
    save = tmp_path_factory.mktemp("watch") / "ft"
    run_train_wrapper(trained, save, threads=1)
    return save


@pytest.mark.slow
def test_train_wrapper_writes_tensorboard_curves_and_sets_threads(wrapped):
    save = wrapped
    text = (save / "train.log").read_text()
    assert "Please install tensorboardX" not in text
    assert "slu-kd-train: rank 0: 1 torch threads" in text  # SLU_KD_THREADS reached fairseq-train
    for tag in ("train", "valid"):
        events = list((save / "tensorboard" / tag).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 100, tag
    # the event files hold the per-epoch scalars a user plots in TensorBoard
    from tensorboard_scalars import scalars
    valid = scalars(save / "tensorboard" / "valid")
    assert len(valid["accuracy"]) == 3 and len(valid["macro_f1"]) == 3
    assert (save / "curves.png").stat().st_size > 5000 and (save / ".done").exists()


@pytest.mark.slow
def test_curves_read_a_real_log_in_both_formats(trained, wrapped, tmp_path):
    from slu_kd_plugin.cli.curves import plot_log, read_log

    json_log = trained.log("ft_kd")  # conftest trains with --log-format json
    simple_log = wrapped / "train.log"  # the recipes' train() logs in fairseq's simple format
    for log, epochs, max_epoch in ((json_log, 5, 5), (simple_log, 3, 3)):
        curves = read_log(log)
        assert [s["epoch"] for s in curves["train"]] == list(range(1, epochs + 1))
        assert curves["max_epoch"] == max_epoch
        assert {"loss", "accuracy"} <= curves["valid"][-1].keys()
        plot_log(log, str(tmp_path / "c.png"))
        assert (tmp_path / "c.png").stat().st_size > 5000


@pytest.mark.slow
def test_results_draws_one_curve_per_grid_run_beside_results_png(trained, tmp_path):
    from slu_kd_plugin.cli import results

    for seed in (1, 2):
        run = tmp_path / "runs" / "train10" / "da" / f"seed{seed}"
        (run / "eval").mkdir(parents=True)
        (run / "eval" / "metrics.json").write_text(json.dumps({"accuracy": 50.0}))
        shutil.copy(trained.log("ft_kd"), run / "train.log")
    results.main([str(tmp_path / "runs"), "--out", str(tmp_path / "results.json")])
    assert (tmp_path / "results.png").exists()
    assert sorted(os.listdir(tmp_path / "curves")) == ["train10_da_seed1.png", "train10_da_seed2.png"]


def test_a_log_without_epochs_is_named(tmp_path):
    from slu_kd_plugin.cli import curves

    log = tmp_path / "train.log"
    log.write_text("fairseq-train failed before the first epoch\n")
    with pytest.raises(SystemExit, match="train.log: no per-epoch"):
        curves.main([str(log), "--out", str(tmp_path / "c.png")])
    assert not (tmp_path / "c.png").exists()
