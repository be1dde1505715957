"""Using a trained model: slu-kd-package writes a model directory, SLUModel and
slu-kd-predict predict from audio files of any rate / channel count, and the
predictions are those fairseq's own evaluation path gives on the same utterances."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from conftest import ENV, REPO

pytestmark = pytest.mark.slow  # the model comes from the real fairseq-train (conftest `trained`)

PACKAGE_FILES = {"config.json", "model.pt", "quantizer.pt", "labels.json", "units/dict.txt", "label/dict.txt"}


def cli(module, *args, stdin=None):
    """``python -m slu_kd_plugin.cli.<module> ARGS`` (works before setup.py lists it)."""
    return subprocess.run([sys.executable, "-m", f"slu_kd_plugin.cli.{module}", *map(str, args)],
                          input=stdin, capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=300)


def package_args(trained, out, *extra):
    return [trained.ckpt("ft_kd"), out, "--data", trained.data, "--quantizer", trained.root / "quantizer.pt",
            "--manifest-dir", trained.manifests / "fsc", *extra]


def manifest_wavs(trained, split="test"):
    """Absolute wav paths of a split, in manifest (= binarized data) order."""
    with open(trained.manifests / "fsc" / f"{split}.tsv") as f:
        root, *rows = f.read().splitlines()
    return [os.path.join(root, row.split("\t")[0]) for row in rows]


@pytest.fixture(scope="module")
def packaged(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "model"
    result = cli("package", *package_args(trained, out))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture(scope="module")
def slu(packaged):
    from slu_kd_plugin.hub import SLUModel

    return SLUModel.from_pretrained(packaged[0])


def test_model_dir_holds_what_inference_needs_and_reports_sizes(packaged):
    out, stdout = packaged
    files = {os.path.relpath(os.path.join(r, n), out) for r, _, names in os.walk(out) for n in names}
    assert files == PACKAGE_FILES
    assert "model.pt" in stdout and f"total: {out}" in stdout.splitlines()[-1]
    assert not [n for n in os.listdir(out.parent) if n.startswith(".model.")], "temp dir left behind"
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == 1 and config["label_separator"] == "|"
    assert config["slot_names"] == ["action", "object", "location"]


def test_checkpoint_is_stripped_and_loads_with_plain_safe_loading(packaged, trained):
    # a fresh interpreter without slu_kd_plugin: no allow-listed types to lean on
    code = ("import sys, torch; s = torch.load(sys.argv[1], weights_only=True); "
            "print(sorted(s)); print(s['cfg']['task']['teacher_path'], s['cfg']['model']['speech_bert_path']); "
            "print(any(k.startswith('teacher') for k in s['model']))")
    result = subprocess.run([sys.executable, "-c", code, str(packaged[0] / "model.pt")],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    keys, paths, teacher = result.stdout.splitlines()
    assert keys == str(sorted(["args", "cfg", "model", "optimizer_history", "extra_state"]))
    assert paths == "None None" and teacher == "False"
    original = torch.load(trained.ckpt("ft_kd"), weights_only=True)
    assert original["cfg"]["task"]["teacher_path"] and original["last_optimizer_state"]  # what was stripped
    assert (packaged[0] / "model.pt").stat().st_size < trained.ckpt("ft_kd").stat().st_size


def test_units_are_laid_out_as_in_training(slu, trained):
    from slu_kd_plugin.tasks.common import encoder_input, load_split

    binarized = encoder_input(load_split(str(trained.data), "units", "test", slu.unit_dict),
                              slu.unit_dict, slu.max_positions)
    wavs = manifest_wavs(trained)
    assert len(wavs) == len(binarized)
    for i, wav in enumerate(wavs):
        assert torch.equal(slu.units(wav), binarized[i]), wav


def test_predictions_equal_slu_kd_evaluate(slu, packaged, trained):
    from slu_kd_plugin.cli import evaluate
    from slu_kd_plugin.hub import load_slu  # what slu-kd-evaluate loads with

    wavs = manifest_wavs(trained)
    predictions = slu.predict_batch(wavs, batch_size=5)  # batches unlike evaluate's
    # the original checkpoint and the packaged one, through evaluate's fairseq path
    for ckpt in (trained.ckpt("ft_kd"), packaged[0] / "model.pt"):
        model, task = load_slu(str(ckpt), str(trained.data))
        ids, _, preds, probs = evaluate.predict_split(model, task, "test", batch_size=4)
        assert ids == list(range(len(wavs)))
        assert [p["intent"] for p in predictions] == [slu.labels[i] for i in preds]
        assert np.allclose([p["probability"] for p in predictions], probs, atol=1e-5)


def test_prediction_format(slu, trained):
    p = slu.predict(manifest_wavs(trained)[0])
    assert list(p) == ["intent", "slots", "probability"]
    assert p["intent"] in slu.labels and 0 < p["probability"] <= 1
    info = json.loads((trained.manifests / "fsc" / "labels.json").read_text())[p["intent"]]
    assert p["slots"] == info  # as the corpus wrote them ("change language", not "change_language")


def test_8k_stereo_copy_gives_the_same_intent(slu, trained, tmp_path):
    from slu_kd_plugin.audio import read_audio

    for wav in manifest_wavs(trained)[:3]:
        x = read_audio(wav)
        x8 = AF.resample(x, 16000, 8000)
        copy = tmp_path / "copy8k.flac"
        sf.write(str(copy), torch.stack([x8, 0.8 * x8], dim=1).numpy(), 8000)
        p16 = slu.probabilities([slu.units(wav)])[0]
        p8 = slu.probabilities([slu.units(copy)])[0]
        # a different intent is accepted only between two that the original scores alike
        assert p8.argmax() == p16.argmax() or p16.max() - p16[p8.argmax()] < 0.02, wav
        assert abs(float(p8.max() - p16.max())) < 0.05, wav


def test_waveform_input_equals_file_input(slu, trained):
    from slu_kd_plugin.audio import read_audio

    wav = manifest_wavs(trained)[1]
    x = read_audio(wav)
    by_path, by_wave = slu.predict(wav), slu.predict(x)
    assert by_path == by_wave
    stereo_8k = torch.stack([AF.resample(x, 16000, 8000)] * 2)  # (channels, time)
    assert slu.predict(stereo_8k, sample_rate=8000)["intent"] in slu.labels
    with pytest.raises(ValueError, match="looks like \\(time, channels\\)"):
        slu.predict(stereo_8k.T, sample_rate=8000)


def test_batch_equals_one_by_one(slu, trained):
    wavs = manifest_wavs(trained)[:6]
    batch = slu.predict_batch(wavs)
    for wav, b in zip(wavs, batch):
        single = slu.predict(wav)
        assert single["intent"] == b["intent"] and abs(single["probability"] - b["probability"]) < 1e-5


def test_cli_json_lines_stdin_and_bad_files(packaged, slu, trained, tmp_path):
    wavs = manifest_wavs(trained)[:5]
    bad = tmp_path / "not_audio.wav"
    bad.write_text("hello")
    missing = tmp_path / "missing.wav"
    # files on the command line, then more from stdin ('-'), batched across the two
    result = cli("predict", packaged[0], wavs[0], missing, wavs[1], "-", "--batch-size", "2",
                 stdin=f"{bad}\n{wavs[2]}\n\n{wavs[3]}\n{wavs[4]}\n")
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in lines] == wavs
    assert all(list(r) == ["path", "intent", "slots", "probability"] for r in lines)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2 and str(missing) in errors[0] and str(bad) in errors[1]
    expected = slu.predict_batch(wavs)
    assert [r["intent"] for r in lines] == [e["intent"] for e in expected]
    assert [r["slots"] for r in lines] == [e.get("slots") for e in expected]


def test_package_refuses_an_existing_dir_and_a_non_slu_checkpoint(trained, packaged, capsys):
    from slu_kd_plugin.cli import package

    out = packaged[0]
    before = sorted(os.listdir(out))
    with pytest.raises(SystemExit):
        package.main([str(a) for a in package_args(trained, out)])
    assert "exists; pass --overwrite" in capsys.readouterr().err and sorted(os.listdir(out)) == before
    other = out.parent / "other"
    with pytest.raises(SystemExit):
        package.main([str(trained.ckpt("teacher")), str(other), "--data", str(trained.data),
                      "--quantizer", str(trained.root / "quantizer.pt")])
    err = capsys.readouterr().err
    assert str(trained.ckpt("teacher")) in err and "slu_ds2" in err
    assert not other.exists() and not [n for n in os.listdir(out.parent) if n.startswith(".other.")]


def test_package_overwrite_replaces_the_dir(trained, tmp_path):
    from slu_kd_plugin.cli import package

    out = tmp_path / "model"
    package.main([str(a) for a in package_args(trained, out)])
    (out / "stale.txt").write_text("from an older package")
    package.main([str(a) for a in package_args(trained, out, "--overwrite")])
    assert not (out / "stale.txt").exists() and (out / "model.pt").is_file()
    assert os.listdir(tmp_path) == ["model"]


def test_incomplete_model_dir_names_what_is_missing(tmp_path):
    from slu_kd_plugin.hub import ModelDirError, SLUModel

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelDirError, match=r"missing model\.pt.*slu-kd-package"):
        SLUModel.from_pretrained(tmp_path)


def test_a_vq_wav2vec_quantizer_is_packaged_without_its_training_state(tmp_path):
    from slu_kd_plugin.cli.package import write_quantizer
    from slu_kd_plugin.quantize import load_quantizer
    from test_quantize import make_legacy_vq_wav2vec

    src, dst = tmp_path / "vq-wav2vec_kmeans.pt", tmp_path / "quantizer.pt"
    make_legacy_vq_wav2vec(src)  # published layout: args Namespace, fp16, meters in extra_state
    write_quantizer(str(src), str(dst))
    state = torch.load(dst, weights_only=True)
    assert "last_optimizer_state" not in state and state["extra_state"] == {"train_iterator": None}
    wav = torch.randn(8000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert load_quantizer(dst).encode(wav) == load_quantizer(src).encode(wav)
