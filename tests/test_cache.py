"""--cache-speech-states: running the frozen speech BERT once per split must give the
very same training run as recomputing its states every step; and teacher logits
computed once at load must give the same run as the teacher run on every batch."""
import pytest

from conftest import TRAIN_COMMON, log_records, run, tool

DA_FLAGS = {"--augment-units", "--augment-hidden"}


def _ft(trained, save_dir, extra, da):
    data, args = trained.stage_args("ft_kd")
    args = [a for a in args if da or a not in DA_FLAGS]
    save_dir.mkdir()
    log = save_dir / "train.log"
    run([tool("fairseq-train"), data, *TRAIN_COMMON, "--save-dir", save_dir, *args,
         "--max-epoch", "2", *extra], log)
    return log


def _metrics(log, kind):
    return [float(r[f"{kind}_{k}"]) for r in log_records(log, kind) for k in ("loss", "accuracy")]


@pytest.fixture(scope="module")
def plain(trained, tmp_path_factory):
    """FT-KD without DA, speech BERT states recomputed every step, teacher logits
    computed once at load: the reference of both comparisons below."""
    return _ft(trained, tmp_path_factory.mktemp("cache") / "plain", ["--teacher-logits", "precompute"], da=False)


@pytest.mark.slow
def test_cached_states_give_identical_training(trained, plain, tmp_path):
    cached = _ft(trained, tmp_path / "cached", ["--cache-speech-states"], da=False)
    # the same numbers up to float summation order (the cache batches utterances by length)
    for kind in ("train", "valid"):
        assert _metrics(plain, kind) == pytest.approx(_metrics(cached, kind), abs=0.01)
    assert "not cached" not in cached.read_text()


@pytest.mark.slow
def test_no_cache_where_units_are_masked(trained, tmp_path):
    log = _ft(trained, tmp_path / "da", ["--cache-speech-states"], da=True)
    assert "train: speech BERT states not cached" in log.read_text()
    assert "valid: speech BERT states not cached" not in log.read_text()


@pytest.mark.slow
def test_on_the_fly_teacher_gives_the_precomputed_targets(trained, plain, tmp_path):
    # the teacher is frozen and in eval mode: running it on every batch must give the
    # very same KD targets (and so the same run) as computing them once at load
    pre = plain
    fly = _ft(trained, tmp_path / "fly", ["--teacher-logits", "on-the-fly"], da=False)
    for kind in ("train", "valid"):
        assert _metrics(pre, kind) == pytest.approx(_metrics(fly, kind), abs=0.01)
    kd = [float(r["train_kd_loss"]) for r in log_records(fly, "train")]
    assert kd and all(k > 0 for k in kd)
    assert kd == pytest.approx([float(r["train_kd_loss"]) for r in log_records(pre, "train")], abs=0.01)
    # the precompute pass shows its progress bar; on the fly there is none
    assert "teacher logits (train)" in pre.read_text()
    assert "teacher logits (train)" not in fly.read_text()
