"""Quantizers: MFCC k-means (fit, save/load, determinism) and fairseq vq-wav2vec
checkpoints in the published legacy format; safe loading refuses a malicious file.

The helpers here (corpus of generated wavs, tiny vq-wav2vec checkpoint) are also
used by test_featurize.py.
"""
import argparse
import os
import sys
import types
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

import slu_kd_plugin

slu_kd_plugin.register()  # installs the safe-loading allow-list
from slu_kd_plugin.quantize import (
    QuantizerError,
    UnsafeCheckpointError,
    load_quantizer,
    merge_consecutive,
)
from slu_kd_plugin.quantize.mfcc_kmeans import (
    MfccConfig,
    fit_kmeans,
    fit_quantizer,
    mfcc_features,
    sample_training_frames,
)

SR = 16000


# ------------------------------------------------------------------ helpers


def synth_signals(seed=0):
    """Named 0.5-1.3 s test signals: tones, noise, chirps, tone bursts in silence."""
    rng = np.random.RandomState(seed)
    t = lambda sec: np.arange(int(sec * SR)) / SR  # noqa: E731
    sig = {
        "tone220": 0.5 * np.sin(2 * np.pi * 220 * t(0.8)),
        "tone1k": 0.3 * np.sin(2 * np.pi * 1000 * t(0.6)),
        "noise": 0.1 * rng.randn(int(0.7 * SR)),
        "chirp_up": 0.4 * np.sin(2 * np.pi * (100 + 1500 * t(1.0)) * t(1.0)),
        "chirp_down": 0.4 * np.sin(2 * np.pi * (3000 - 1200 * t(1.2)) * t(1.2)),
        "bursts": np.concatenate([np.zeros(2400), 0.5 * np.sin(2 * np.pi * 440 * t(0.3)),
                                  np.zeros(3200), 0.05 * rng.randn(4800)]),
        "mix": 0.3 * np.sin(2 * np.pi * 330 * t(1.3)) + 0.05 * rng.randn(int(1.3 * SR)),
    }
    return {k: v.astype(np.float32) for k, v in sig.items()}


def make_corpus(root, split="train", signals=None, extra=()):
    """Real wav files under root/wavs and a fairseq manifest root/{split}.tsv.
    ``extra``: (name, samples) added at the end (e.g. a too-short file)."""
    signals = list((signals or synth_signals()).items()) + list(extra)
    os.makedirs(os.path.join(root, "wavs"), exist_ok=True)
    lines = [os.path.abspath(root)]
    for name, x in signals:
        rel = f"wavs/{name}.wav"
        sf.write(os.path.join(root, rel), x, SR, subtype="PCM_16")
        lines.append(f"{rel}\t{len(x)}")
    with open(os.path.join(root, f"{split}.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return root


def manifest_entries(root, split="train"):
    from slu_kd_plugin.quantize.featurize import read_manifest

    return read_manifest(os.path.join(root, f"{split}.tsv"))


def fit_tiny_quantizer(root, out_path, k=12, seed=1):
    frames = sample_training_frames(manifest_entries(root), max_frames=2000, seed=seed)
    q = fit_quantizer(frames, k, seed=seed, n_iter=30)
    q.save(out_path)
    return q


TINY_W2V_ARGS = dict(
    # legacy names the 2019 checkpoints carry; fairseq's upgrade renames them
    arch="wav2vec", task="speech_pretraining", criterion="binary_cross_entropy",
    data="/checkpoint/nonexistent/librispeech", lr=[1e-5], optimizer="adam", fp16=True,
    max_update=400000, conv_feature_layers="[(32, 10, 5), (32, 8, 4), (32, 4, 2), (32, 4, 2), (32, 4, 2)]",
    conv_aggregator_layers="[(32, 2, 1), (32, 3, 1)]", vq_type="kmeans", vq_vars=8,
    vq_groups=2, vq_dim=0, vq_depth=1, combine_groups=False, vq_gamma=0.25,
    log_compression=False, skip_connections_feat=False, skip_connections_agg=True,
    residual_scale=0.5, prediction_steps=3, num_negatives=2, offset="auto",
    activation="gelu", aggregator="cnn",
)


def _old_average_meter_class():
    """A class that pickles as ``fairseq.meters.AverageMeter`` (fairseq < 0.10 path)."""
    class AverageMeter:
        def __init__(self):
            self.val, self.avg, self.sum, self.count = 2.0, 2.5, 10.0, 4

    AverageMeter.__module__ = "fairseq.meters"
    AverageMeter.__qualname__ = "AverageMeter"
    return AverageMeter


def make_legacy_vq_wav2vec(path, seed=0):
    """A small random vq-wav2vec saved like the published vq-wav2vec_kmeans.pt."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.wav2vec.wav2vec import Wav2VecModel

    args = argparse.Namespace(**TINY_W2V_ARGS)
    modern = argparse.Namespace(**{**TINY_W2V_ARGS, "task": "audio_pretraining", "criterion": "wav2vec"})
    torch.manual_seed(seed)
    model = Wav2VecModel(convert_namespace_to_omegaconf(modern).model)
    meter_cls = _old_average_meter_class()
    old_module = types.ModuleType("fairseq.meters")
    old_module.AverageMeter = meter_cls
    state = {
        "args": args,
        "model": {k: v.half() for k, v in model.state_dict().items()},
        "optimizer_history": [{"criterion_name": "BinaryCrossEntropyCriterion",
                               "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 1.5}, "num_updates": 400000}],
        "extra_state": {"epoch": 30, "val_loss": 1.5, "train_meters": {"train_loss": meter_cls()},
                        "train_iterator": {"epoch": 30, "iterations_in_epoch": 0}},
        "last_optimizer_state": {},
    }
    sys.modules["fairseq.meters"] = old_module  # so pickle can name the class there
    try:
        torch.save(state, path, _use_new_zipfile_serialization=False)
    finally:
        del sys.modules["fairseq.meters"]
    return model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(scope="module")
def kmeans_file(corpus, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("q") / "kmeans.pt")
    fit_tiny_quantizer(corpus, path)
    return path


@pytest.fixture(scope="module")
def vq_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vq") / "vq-wav2vec_kmeans.pt")
    make_legacy_vq_wav2vec(path)
    return path


def read_wav(path):
    from slu_kd_plugin.audio import read_audio

    return read_audio(path)


# ------------------------------------------------------------------ MFCC k-means


def test_mfcc_features_shape_and_min_length():
    cfg = MfccConfig()
    assert mfcc_features(torch.randn(SR), cfg).shape == (98, 39)  # 13 + deltas + delta-deltas
    assert mfcc_features(torch.randn(cfg.window_samples), cfg).shape == (1, 39)


def test_kmeans_seeded_deterministic_and_finds_blobs():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.3 * torch.randn(200, 2, generator=gen) for c in centres])
    c1, mse1 = fit_kmeans(x, 3, seed=5)
    c2, mse2 = fit_kmeans(x, 3, seed=5)
    assert torch.equal(c1, c2) and mse1 == mse2
    found = sorted(c1.round().tolist())
    assert found == sorted(centres.tolist())
    with pytest.raises(QuantizerError, match="cannot make"):
        fit_kmeans(x[:2], 3)


def test_fit_save_load_round_trip_weights_only(corpus, kmeans_file):
    state = torch.load(kmeans_file, weights_only=True)  # plain safe load, no allow-list needed
    assert state["kind"] == "mfcc_kmeans" and state["version"] == 1
    assert state["centroids"].shape == (12, 39)
    q = load_quantizer(kmeans_file)
    assert q.kind == "mfcc_kmeans" and q.merge_repeats and q.frame_shift_ms == 10.0
    assert q.min_samples == 400 and q.symbols() == [str(i) for i in range(12)]
    wav = read_wav(os.path.join(corpus, "wavs", "chirp_up.wav"))
    units = q.encode(wav)
    assert units == load_quantizer(kmeans_file).encode(wav)  # deterministic
    assert set(units) <= set(q.symbols()) and len(set(units)) > 1
    assert units == merge_consecutive(units)


def test_refit_same_seed_gives_identical_file_content(corpus, kmeans_file, tmp_path):
    q2 = fit_tiny_quantizer(corpus, str(tmp_path / "again.pt"))
    assert torch.equal(q2.centroids, load_quantizer(kmeans_file).centroids)


def test_merge_repeats_shortens(corpus, kmeans_file):
    wav = read_wav(os.path.join(corpus, "wavs", "tone220.wav"))
    merged = load_quantizer(kmeans_file).encode(wav)
    frames = load_quantizer(kmeans_file, merge_repeats=False).encode(wav)
    assert len(frames) == 1 + (wav.numel() - 400) // 160
    assert merged == merge_consecutive(frames) and len(merged) < len(frames)
    assert merge_consecutive(list("aabbba")) == list("aba")


def test_too_short_audio_names_file(kmeans_file):
    q = load_quantizer(kmeans_file)
    with pytest.raises(QuantizerError, match=r"short\.wav: 399 samples .* minimum of 400"):
        q.encode(torch.zeros(399), name="short.wav")
    assert len(q.encode(torch.zeros(400))) == 1


# ------------------------------------------------------------------ vq-wav2vec


def test_vq_wav2vec_legacy_checkpoint(corpus, vq_file):
    assert not zipfile.is_zipfile(vq_file)  # legacy serialization, like the 2019 files
    q = load_quantizer(vq_file)
    assert q.kind == "vq_wav2vec" and not q.merge_repeats and q.frame_shift_ms == 10.0
    assert q.min_samples == 465  # receptive field of the 10,8,4,4,4 / 5,4,2,2,2 stack
    assert q.symbols()[:3] == ["0-0", "0-1", "0-2"] and len(q.symbols()) == 64
    wav = read_wav(os.path.join(corpus, "wavs", "mix.wav"))
    units = q.encode(wav)
    assert len(units) == 1 + (wav.numel() - 465) // 160
    assert set(units) <= set(q.symbols())
    assert units == load_quantizer(vq_file).encode(wav)
    with pytest.raises(QuantizerError, match=r"tiny\.wav: 464 samples .* minimum of 465"):
        q.encode(wav[:464], name="tiny.wav")
    assert len(q.encode(wav[:465])) == 1


def test_vq_wav2vec_tokens_equal_fairseq_forward_idx(corpus, vq_file):
    """Same model built and run the way fairseq's vq-wav2vec_featurize.py does it."""
    from fairseq import checkpoint_utils

    from slu_kd_plugin.quantize.vq_wav2vec import kmeans_idx_blockwise

    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([vq_file])
    model = models[0].eval()
    wav = read_wav(os.path.join(corpus, "wavs", "chirp_down.wav"))
    with torch.no_grad():
        z = model.feature_extractor(wav[None])
        _, idx = model.vector_quantizer.forward_idx(z)
        blocks = kmeans_idx_blockwise(model.vector_quantizer, z, max_frames=7)
    expected = ["-".join(map(str, a.tolist())) for a in idx[0]]
    assert load_quantizer(vq_file).encode(wav) == expected
    assert torch.equal(blocks, idx)  # long utterances are blocked without changing a token


def test_legacy_meter_loads_under_old_module_name(vq_file):
    state = torch.load(vq_file, weights_only=True)
    meter = state["extra_state"]["train_meters"]["train_loss"]
    assert type(meter).__module__ == "fairseq.logging.meters" and meter.count == 4
    assert state["model"]["vector_quantizer.embedding"].dtype == torch.float16


class _Payload:
    """Pickles as a call to os.system: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [True, False])
def test_malicious_checkpoint_is_refused(tmp_path, vq_file, legacy):
    marker, path = tmp_path / "pwned", str(tmp_path / "evil.pt")
    state = {"args": argparse.Namespace(**TINY_W2V_ARGS), "model": {}, "extra_state": _Payload(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    refused = r"evil\.pt: cannot load quantizer: refused by torch's safe loading"
    with pytest.raises(UnsafeCheckpointError, match=refused):
        load_quantizer(path)
    assert not marker.exists()
    assert load_quantizer(vq_file).kind == "vq_wav2vec"  # the legitimate one still loads


def test_layer_spec_code_is_refused(tmp_path):
    """fairseq eval()s conv layer specs; a checkpoint must not smuggle code through them."""
    path = str(tmp_path / "spec.pt")
    args = argparse.Namespace(**{**TINY_W2V_ARGS, "conv_feature_layers": "__import__('os').getcwd() or []"})
    history = [{"criterion_name": "x", "optimizer_name": "x", "lr_scheduler_state": {}, "num_updates": 0}]
    torch.save({"args": args, "model": {}, "optimizer_history": history,
                "extra_state": {"train_iterator": None}}, path)
    with pytest.raises(QuantizerError, match="conv_feature_layers is not a list"):
        load_quantizer(path)


def test_not_a_quantizer(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    with pytest.raises(QuantizerError, match="junk.pt: cannot load quantizer: not a readable torch file"):
        load_quantizer(str(junk))
    torch.save({"weights": torch.zeros(2)}, str(tmp_path / "other.pt"))
    with pytest.raises(QuantizerError, match="neither a slu-kd quantizer"):
        load_quantizer(str(tmp_path / "other.pt"))
    with pytest.raises(QuantizerError, match="missing.pt: quantizer file not found"):
        load_quantizer(str(tmp_path / "missing.pt"))


def test_unit_dictionary_as_fairseq_preprocess_writes_it(vq_file, tmp_path):
    """bert_kmeans' dict.txt (any dictionary fairseq-preprocess writes) ends with
    ``madeupwordNNNN 0`` padding: those are not units, and the dictionary fits its quantizer."""
    from fairseq.data import Dictionary

    from published import preprocess_dict
    from slu_kd_plugin.quantize import check_unit_dictionary

    q = load_quantizer(vq_file)
    seen = q.symbols()[:41]  # 4 specials + 41 units: fairseq pads with 3 entries to 48
    dict_path = preprocess_dict([" ".join(seen[: i + 1]) for i in range(len(seen))], tmp_path / "units")
    lines = dict_path.read_text().splitlines()
    assert lines[-3:] == ["madeupword0000 0", "madeupword0001 0", "madeupword0002 0"]
    check_unit_dictionary(q, Dictionary.load(str(dict_path)), dict_path)
    # a unit the quantizer cannot emit is still refused, by name
    dict_path.write_text("\n".join(lines[:-3] + ["9-99 1"] + lines[-3:]) + "\n")
    with pytest.raises(QuantizerError, match=r"'9-99' only in the dictionary"):
        check_unit_dictionary(q, Dictionary.load(str(dict_path)), dict_path)
