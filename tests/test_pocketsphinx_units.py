"""The pocketsphinx phone quantizer (the offline default unit source): real TTS speech
of different engines and genders through CMU's pretrained en-us acoustic model."""
import os
import subprocess

import editdistance
import pytest
import soundfile as sf
import torch

import slu_kd_plugin  # noqa: F401  (safe-loading allow-list)
from slu_kd_plugin.quantize import QuantizerError, load_quantizer, merge_consecutive
from slu_kd_plugin.quantize.featurize import featurize_split, merge_shards
from slu_kd_plugin.quantize.pocketsphinx_phones import PocketsphinxPhoneQuantizer, phone_set
from slu_kd_plugin.synth.tts import synthesize
from slu_kd_plugin.synth.voices import Speaker

from conftest import tool, ENV

SENTENCES = ("turn on the lights in the kitchen", "bring me my shoes please")
VOICES = {  # a male espeak-ng voice, flite's female voice, festival's male diphone voice
    "espeak": Speaker("espeak-ng", "en-us", "m3", 170, 50, "white", 30.0, 0.5),
    "flite": Speaker("flite", "slt", "", 170, 50, "white", 30.0, 0.5),
    "festival": Speaker("festival", "kal_diphone", "", 170, 50, "white", 30.0, 0.5),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """{(voice, sentence index): wav path} and a manifest dir with all of them."""
    root = tmp_path_factory.mktemp("ps")
    paths, lines = {}, [str(root)]
    for name, spk in VOICES.items():
        for i, text in enumerate(SENTENCES):
            wav = synthesize(text, spk, seed=i)
            rel = f"{name}_{i}.wav"
            sf.write(str(root / rel), wav, 16000, subtype="PCM_16")
            paths[name, i] = str(root / rel)
            lines.append(f"{rel}\t{len(wav)}")
    (root / "train.tsv").write_text("\n".join(lines) + "\n")
    return root, paths


@pytest.fixture(scope="module")
def quantizer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "phones.pt"
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--frame-ms", "30",
                          "--out", str(path)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    return path


def _phones(q, path):
    wav, _ = sf.read(path, dtype="float32")
    return merge_consecutive(q.encode(torch.from_numpy(wav)))


def test_file_round_trip_and_symbols(quantizer_file):
    q = load_quantizer(quantizer_file)
    assert q.kind == "pocketsphinx_phones" and q.frame_ms == 30
    assert {"AA", "IY", "SH", "SIL"} <= set(q.symbols()) and q.symbols() == phone_set()


def test_same_words_give_close_phones_across_engines_and_genders(corpus, quantizer_file):
    """The point of the unit source: another engine or gender changes the phones less
    than other words do (MFCC k-means units fitted on one voice change wholesale)."""
    _, paths = corpus
    q = load_quantizer(quantizer_file)
    seqs = {k: [p for p in _phones(q, v) if p != "SIL"] for k, v in paths.items()}

    def dist(a, b):
        return editdistance.eval(seqs[a], seqs[b]) / max(len(seqs[a]), len(seqs[b]))

    for i in range(len(SENTENCES)):
        same_words = dist(("flite", i), ("festival", i))
        other_words = dist(("flite", i), ("festival", 1 - i))
        assert same_words < 0.6 and same_words < other_words - 0.25, (same_words, other_words)
    assert {"L", "AY", "K", "CH"} <= set(seqs["flite", 0])  # "lights", "kitchen"


def test_durations_kept_one_token_per_frame_ms(corpus, quantizer_file):
    _, paths = corpus
    wav, _ = sf.read(paths["flite", 0], dtype="float32")
    wav = torch.from_numpy(wav)
    q30, q10 = load_quantizer(quantizer_file), PocketsphinxPhoneQuantizer(frame_ms=10)
    n30, n10 = len(q30.encode(wav)), len(q10.encode(wav))
    assert abs(n10 - len(wav) / 160) <= 3  # every 10 ms frame has its phone
    assert abs(n30 - n10 / 3) <= 0.15 * n10 / 3
    assert merge_consecutive(q30.encode(wav)) == merge_consecutive(q10.encode(wav)) or n30 < n10


def test_sharded_featurization_equals_one_pass(corpus, quantizer_file, tmp_path):
    """Decoding carries nothing between utterances: shards give the one-pass tokens."""
    root, _ = corpus
    q = load_quantizer(quantizer_file)
    featurize_split(q, str(root), "train", str(tmp_path / "one"), progress=False)
    for rank in range(2):
        featurize_split(q, str(root), "train", str(tmp_path / "two"), rank=rank, nshard=2, progress=False)
    merge_shards(str(root), "train", 2, out_dir=str(tmp_path / "two"))
    one = (tmp_path / "one" / "train.units").read_text()
    assert one == (tmp_path / "two" / "train.units").read_text() and len(one.splitlines()) == 6


def test_file_of_another_acoustic_model_is_refused(quantizer_file, tmp_path):
    state = torch.load(quantizer_file, weights_only=True)
    state["fingerprint"] = "0123456789abcdef"
    torch.save(state, tmp_path / "other.pt")
    q = load_quantizer(tmp_path / "other.pt")
    with pytest.raises(QuantizerError, match="another pocketsphinx acoustic model"):
        q.encode(torch.zeros(16000))


def test_bad_frame_size_is_refused(tmp_path):
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--frame-ms", "25",
                          "--out", str(tmp_path / "q.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "multiple of 10 ms" in res.stderr
    assert not os.path.exists(tmp_path / "q.pt")
