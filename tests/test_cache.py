"""--cache-speech-states: running the frozen speech BERT once per split must give the
very same training run as recomputing its states every step."""
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


@pytest.mark.slow
def test_cached_states_give_identical_training(trained, tmp_path):
    plain = _ft(trained, tmp_path / "plain", [], da=False)
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
