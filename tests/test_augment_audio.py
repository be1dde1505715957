"""slu-kd-augment on real TTS audio: alignment, lengths, pitch, determinism, errors, resume."""
import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from slu_kd_plugin.audio import read_audio
from slu_kd_plugin.cli.augment import main as augment_main
from slu_kd_plugin.cli.prepare import main as prepare_main
from slu_kd_plugin.corpora import augment_audio
from slu_kd_plugin.synth.fsc_like import FscSynthConfig, write_corpus

EXTS = ("tsv", "txt", "ltr", "id", "label", "spk")


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """A prepared FSC-like split of 4 espeak-ng utterances, with a .spk file."""
    root = tmp_path_factory.mktemp("aug")
    cfg = FscSynthConfig(speakers=4, utts_per_speaker=2, valid_speakers=1, test_speakers=1, seed=5)
    write_corpus(str(root / "corpus"), cfg, n_jobs=1, progress=False)
    prepare_main(["fsc", str(root / "corpus"), str(root / "man"), "--allow-unseen-labels"])
    ids = (root / "man" / "train.id").read_text().splitlines()
    (root / "man" / "train.spk").write_text("".join(i.split("/")[0] + "\n" for i in ids))
    return root / "man"


def _fresh(manifests, tmp_path):
    """A private copy of the manifest dir (the audio stays where it is)."""
    man = tmp_path / "man"
    shutil.copytree(manifests, man, ignore=shutil.ignore_patterns("audio", "train_aug*"))
    return man


def _lines(man, split, ext):
    return (man / f"{split}.{ext}").read_text().splitlines()


def _entries(man, split):
    """(absolute path, n_samples) of every tsv line."""
    root, *rows = _lines(man, split, "tsv")
    return [(os.path.join(root, r.split("\t")[0]), int(r.split("\t")[1])) for r in rows]


def _by_id(man, split):
    return dict(zip(_lines(man, split, "id"), _entries(man, split)))


def _f0(path):
    """Median autocorrelation F0 (60-400 Hz) of the voiced, energetic 40 ms frames."""
    frames = read_audio(path).unfold(0, 640, 160).numpy()
    energy = (frames ** 2).mean(1)
    f0s = []
    for x in frames[energy > 0.1 * energy.max()]:
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[639:]
        lag = 40 + int(np.argmax(ac[40:267]))
        if ac[lag] > 0.3 * ac[0]:
            f0s.append(16000 / lag)
    assert len(f0s) > 10, path
    return float(np.median(f0s))


def _centroid(path):
    """Mean spectral centroid of the energetic frames (moves with the formants)."""
    frames = read_audio(path).unfold(0, 512, 160).numpy()
    energy = (frames ** 2).mean(1)
    mag = np.abs(np.fft.rfft(frames[energy > 0.1 * energy.max()] * np.hanning(512), axis=1))
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    return float(((mag * freqs).sum(1) / mag.sum(1)).mean())


def _run(man, *args):
    augment_main([str(man), "--split", "train", "--no-progress", *map(str, args)])


def test_new_split_is_aligned_and_featurizable(manifests, tmp_path):
    from slu_kd_plugin.cli.featurize import main as featurize_main
    from slu_kd_plugin.cli.fit_quantizer import main as fit_main

    man = _fresh(manifests, tmp_path)
    _run(man, "--speed", "0.9,1.1", "--pitch", "2")
    n = len(_lines(man, "train", "id"))
    for ext in EXTS:
        assert len(_lines(man, "train_aug", ext)) == 4 * n + (ext == "tsv"), ext
    ids = _lines(man, "train_aug", "id")
    src = _lines(man, "train", "id")
    assert ids[:n] == src
    assert ids[n:] == [f"{i}-{c}" for i in src for c in ("sp0.9", "sp1.1", "ps2")]
    for ext in ("txt", "ltr", "label", "spk"):  # each copy says what its source said
        assert _lines(man, "train_aug", ext) == _lines(man, "train", ext) + [
            line for line in _lines(man, "train", ext) for _ in range(3)]
    for path, n_samples in _entries(man, "train_aug"):
        assert sf.info(path).frames == n_samples and sf.info(path).samplerate == 16000
        assert sf.info(path).subtype == "PCM_16"
    fit_main([str(man), "--split", "train", "--n-clusters", "8", "--seed", "1",
              "--out", str(tmp_path / "q.pt"), "--no-progress"])
    featurize_main([str(man), "--quantizer", str(tmp_path / "q.pt"), "--split", "train_aug", "--no-progress"])
    assert len(_lines(man, "train_aug", "units")) == 4 * n


def test_speed_pitch_and_formant_copies(manifests, tmp_path):
    man = _fresh(manifests, tmp_path)
    _run(man, "--speed", "0.9,1.1", "--pitch=-2,2", "--vtlp", "0.9,1.1")
    entries = _by_id(man, "train_aug")
    for uid in _lines(man, "train", "id"):
        path, n = entries[uid]
        for factor in (0.9, 1.1):  # Kaldi-style: 1/factor as long
            assert abs(entries[f"{uid}-sp{factor:g}"][1] - n / factor) <= 1
        for tag in ("ps-2", "ps2", "vt0.9", "vt1.1"):
            assert abs(entries[f"{uid}-{tag}"][1] - n) <= 0.01 * n
    uid = _lines(man, "train", "id")[0]
    f0 = _f0(entries[uid][0])
    up, down = _f0(entries[f"{uid}-ps2"][0]), _f0(entries[f"{uid}-ps-2"][0])
    # 2 semitones: x1.122 and x0.891 (a 1-semitone shift, x1.059, would fail)
    assert 1.09 < up / f0 < 1.16 and 0.86 < down / f0 < 0.93, (f0, up, down)
    # the formant warp moves the spectrum, not the pitch
    for tag in ("vt0.9", "vt1.1"):
        assert abs(_f0(entries[f"{uid}-{tag}"][0]) / f0 - 1) < 0.05, tag
    c = _centroid(entries[uid][0])
    assert _centroid(entries[f"{uid}-vt1.1"][0]) > 1.02 * c and _centroid(entries[f"{uid}-vt0.9"][0]) < c / 1.02


def _wavs(audio_dir):
    """Bytes of every file under the settings' hash directory, by path below it."""
    out = {}
    for d, _, files in os.walk(audio_dir):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, audio_dir).split(os.sep, 1)[1]] = open(p, "rb").read()
    return out


RANDOM = ("--speed", "0.9,1.1", "--noise-snr", "5:20", "--reverb", "0.2:0.8", "--vtlp", "0.9,1.1",
          "--combine", "--copies-per-utt", "2")


def test_same_seed_same_bytes_whatever_jobs(manifests, tmp_path):
    runs = {}
    for name, extra in (("a", ("--jobs", "1")), ("b", ("--jobs", "2")), ("c", ("--seed", "2"))):
        man = _fresh(manifests, tmp_path / name)
        _run(man, *RANDOM, "--audio-dir", tmp_path / name / "wav", *extra)
        runs[name] = _wavs(tmp_path / name / "wav"), man
    (wav_a, man_a), (wav_b, man_b), (wav_c, _) = runs["a"], runs["b"], runs["c"]
    assert len(wav_a) == 4 * 2 + 1 and wav_a == wav_b  # 4 utterances x 2 copies + augment.json
    for ext in ("txt", "id", "label", "spk"):
        assert filecmp.cmp(man_a / f"train_aug.{ext}", man_b / f"train_aug.{ext}", shallow=False)
    assert [n for _, n in _entries(man_a, "train_aug")] == [n for _, n in _entries(man_b, "train_aug")]
    wavs = [k for k in wav_a if k.endswith(".wav")]
    assert sorted(wavs) == sorted(k for k in wav_c if k.endswith(".wav"))
    assert all(wav_c[k] != wav_a[k] for k in wavs)  # another seed: other noise, other rooms


def test_missing_audio_names_the_line_and_writes_nothing(manifests, tmp_path):
    man = _fresh(manifests, tmp_path)
    lines = (man / "train.tsv").read_text().splitlines()
    lines[2] = "no/such/file.wav\t16000"
    (man / "train.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as e:
        _run(man, "--speed", "1.1")
    assert f"{man / 'train.tsv'}:3" in str(e.value) and "file not found" in str(e.value)
    assert not list(man.glob("train_aug*")) and not (man / "audio").exists()


def test_misaligned_files_are_refused(manifests, tmp_path):
    man = _fresh(manifests, tmp_path)
    (man / "train.spk").write_text("only-one\n")
    with pytest.raises(SystemExit) as e:
        _run(man, "--speed", "1.1")
    assert "train.spk: 1 lines" in str(e.value)
    assert not list(man.glob("train_aug*"))


def test_resume_after_interruption(manifests, tmp_path, monkeypatch):
    ref = _fresh(manifests, tmp_path / "ref")
    _run(ref, *RANDOM, "--audio-dir", tmp_path / "ref" / "wav")
    man = _fresh(manifests, tmp_path / "int")
    (man / "train_aug.units").write_text("stale\n")  # from an older version of the split
    real, calls = augment_audio._run_job, []

    def dies_on_third(job, cfg):
        calls.append(job.uid)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job, cfg)

    monkeypatch.setattr(augment_audio, "_run_job", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        _run(man, *RANDOM, "--audio-dir", tmp_path / "int" / "wav")
    assert not (man / "train_aug.tsv").exists()
    first = {p: os.stat(p).st_mtime_ns for p in (tmp_path / "int" / "wav").rglob("*.wav")}
    assert len(first) == 4  # two utterances' copies were written before the interruption
    monkeypatch.setattr(augment_audio, "_run_job", real)
    _run(man, *RANDOM, "--audio-dir", tmp_path / "int" / "wav")
    assert _wavs(tmp_path / "int" / "wav") == _wavs(tmp_path / "ref" / "wav")
    assert all(os.stat(p).st_mtime_ns == t for p, t in first.items())  # kept, not redone
    assert not (man / "train_aug.units").exists()
    assert not list((tmp_path / "int" / "wav").rglob("*.tmp"))
    for ext in ("txt", "id", "label", "spk"):
        assert filecmp.cmp(ref / f"train_aug.{ext}", man / f"train_aug.{ext}", shallow=False)


def test_bad_settings_are_refused(manifests, tmp_path):
    man = _fresh(manifests, tmp_path)
    for args in (("--speed", "3"), ("--noise-snr", "20:5"), ("--preset", "chorus"), ()):
        with pytest.raises(SystemExit):
            _run(man, *args)
    assert not list(man.glob("train_aug*"))


REPO = Path(__file__).resolve().parents[1]
RECIPE_ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
                  PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _recipe(args):
    return subprocess.run(["bash", str(REPO / "examples/fsc/run.sh"), *map(str, args)],
                          capture_output=True, text=True, env=RECIPE_ENV)


def test_recipe_refuses_an_unknown_augmentation(manifests, tmp_path):
    res = _recipe([manifests.parent / "corpus", tmp_path / "w", "--stage", "1", "--augment-audio", "speed,chorus"])
    assert res.returncode == 2 and "--augment-audio takes" in res.stderr and "'speed,chorus'" in res.stderr


@pytest.mark.slow
def test_recipe_trains_on_the_augmented_subset(manifests, tmp_path):
    """fsc/run.sh stages 0-3 with --augment-audio speed: the quantizer, units and data-bin
    all have SUBSET_aug (originals + 0.9 and 1.1 copies)."""
    work = tmp_path / "w"
    res = _recipe([manifests.parent / "corpus", work, "--profile", "debug", "--stop-stage", "3",
                   "--augment-audio", "speed", "--allow-unseen-labels"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    m = work / "manifests"
    n = len(_lines(m, "train", "id"))
    assert len(_lines(m, "train_aug", "units")) == 3 * n
    assert _lines(m, "train_aug", "id")[n:n + 2] == [f"{_lines(m, 'train', 'id')[0]}-sp{f}" for f in ("0.9", "1.1")]
    for stream in ("units", "input0", "label", "ltr"):
        assert (work / "data-bin" / stream / "train_aug.bin").is_file(), stream
    assert "audio augmentation" in (work / "timings.tsv").read_text()
