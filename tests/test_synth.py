"""The synthetic corpora: real TTS, tiny sizes, real FSC / LibriSpeech layouts."""
import csv
import json
import filecmp
import os
import re

import numpy as np
import pytest
import soundfile as sf

from slu_kd_plugin.cli.synth import main as synth_main
from slu_kd_plugin.synth.commands import INTENTS, PHRASINGS, all_phrasings
from slu_kd_plugin.synth.fsc_like import FscSynthConfig, write_corpus as write_fsc
from slu_kd_plugin.synth.librispeech_like import (
    LibriSynthConfig, write_corpus as write_libri)
from slu_kd_plugin.synth.voices import speaker_pool

FSC_HEADER = ",path,speakerId,transcription,action,object,location"
TINY_FSC = FscSynthConfig(speakers=4, utts_per_speaker=3, valid_speakers=1,
                          test_speakers=1, seed=3)
TINY_LIBRI = LibriSynthConfig(utterances=6, speakers=3, splits="train-clean-100=2,dev-clean=1",
                              seed=3, utts_per_chapter=2)
REAL_FSC_INTENTS = (
    [("activate", o, "none") for o in ("lamp", "lights", "music")]
    + [("deactivate", o, "none") for o in ("lamp", "lights", "music")]
    + [(a, "lights", r) for a in ("activate", "deactivate")
       for r in ("kitchen", "bedroom", "washroom")]
    + [(a, "heat", r) for a in ("increase", "decrease")
       for r in ("none", "kitchen", "bedroom", "washroom")]
    + [(a, "volume", "none") for a in ("increase", "decrease")]
    + [("bring", o, "none") for o in ("newspaper", "juice", "socks", "shoes")]
    + [("change language", o, "none") for o in ("none", "Chinese", "Korean", "English", "German")]
)


@pytest.fixture(scope="module")
def fsc_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fsc"))
    write_fsc(root, TINY_FSC, n_jobs=1, progress=False)
    return root


@pytest.fixture(scope="module")
def libri_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("libri"))
    write_libri(root, TINY_LIBRI, n_jobs=1, progress=False)
    return root


def _rows(root, split):
    with open(os.path.join(root, "data", f"{split}_data.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names)


def test_phrasing_table_is_fsc():
    assert len(INTENTS) == 31
    assert set(INTENTS) == set(REAL_FSC_INTENTS)
    texts = [t.lower() for t, _ in all_phrasings()]
    assert len(texts) == len(set(texts)), "a phrasing appears twice"
    assert all(6 <= len(p) <= 10 for p in PHRASINGS.values())


def test_speaker_pool_is_distinct_and_seeded():
    pool = speaker_pool(1)
    assert len(pool) >= 40 and len({s.name for s in pool}) == len(pool)
    assert {s.engine for s in pool} <= {"espeak-ng", "flite"}
    assert len({(s.voice, s.variant) for s in pool}) == len(pool)  # distinct timbres
    assert pool == speaker_pool(1) and pool != speaker_pool(2)


def test_fsc_layout_and_audio(fsc_root):
    assert not [f for f in _files(fsc_root) if f.endswith(".tmp")]
    speakers = {}
    for split in ("train", "valid", "test"):
        with open(os.path.join(fsc_root, "data", f"{split}_data.csv")) as f:
            assert f.readline().rstrip("\n") == FSC_HEADER
        rows = _rows(fsc_root, split)
        assert [int(r[""]) for r in rows] == list(range(len(rows)))
        speakers[split] = {r["speakerId"] for r in rows}
        for r in rows:
            assert r["path"] == f"wavs/speakers/{r['speakerId']}/{os.path.basename(r['path'])}"
            assert (r["action"], r["object"], r["location"]) in PHRASINGS
            info = sf.info(os.path.join(fsc_root, r["path"]))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            wav, _ = sf.read(os.path.join(fsc_root, r["path"]))
            assert np.abs(wav).max() > 0.05 and np.sqrt(np.mean(wav ** 2)) > 0.005
    assert [len(speakers[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    assert not (speakers["train"] & speakers["valid"] or speakers["train"] & speakers["test"]
                or speakers["valid"] & speakers["test"])


def test_fsc_deterministic_across_job_counts_and_cli(fsc_root, tmp_path):
    other = str(tmp_path / "again")
    code = synth_main(["fsc", other, "--speakers", "4", "--utts-per-speaker", "3",
                       "--valid-speakers", "1", "--test-speakers", "1", "--seed", "3",
                       "--jobs", "2", "--quiet"])
    assert code == 0
    files = _files(fsc_root)
    assert files == _files(other)
    match, mismatch, errors = filecmp.cmpfiles(fsc_root, other, files, shallow=False)
    assert not mismatch and not errors


def test_fsc_rerun_keeps_files_and_other_seed_rebuilds(fsc_root, tmp_path):
    root = str(tmp_path / "c")
    write_fsc(root, TINY_FSC, n_jobs=1, progress=False)
    wav = os.path.join(root, _rows(root, "train")[0]["path"])
    os.utime(wav, (1, 1))
    write_fsc(root, TINY_FSC, n_jobs=1, progress=False)
    assert os.stat(wav).st_mtime == 1  # complete output kept, not regenerated
    other = FscSynthConfig(**{**TINY_FSC.__dict__, "seed": 4})
    write_fsc(root, other, n_jobs=1, progress=False)
    assert _rows(root, "train") != _rows(fsc_root, "train")


def test_fsc_rejects_impossible_split(tmp_path):
    assert synth_main(["fsc", str(tmp_path), "--speakers", "2", "--quiet"]) == 2


def test_librispeech_layout(libri_root):
    split_speakers = {}
    for split in ("train-clean-100", "dev-clean"):
        split_speakers[split] = set(os.listdir(os.path.join(libri_root, split)))
        for spk in split_speakers[split]:
            for chapter in os.listdir(os.path.join(libri_root, split, spk)):
                d = os.path.join(libri_root, split, spk, chapter)
                with open(os.path.join(d, f"{spk}-{chapter}.trans.txt")) as f:
                    lines = f.read().splitlines()
                ids = [line.split(" ", 1)[0] for line in lines]
                for line in lines:
                    assert re.fullmatch(rf"{spk}-{chapter}-\d{{4}} [A-Z' ]+", line), line
                flacs = sorted(n[:-5] for n in os.listdir(d) if n.endswith(".flac"))
                assert flacs == sorted(ids)
                info = sf.info(os.path.join(d, f"{ids[0]}.flac"))
                assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    assert split_speakers["train-clean-100"] and split_speakers["dev-clean"]
    assert not split_speakers["train-clean-100"] & split_speakers["dev-clean"]


def test_librispeech_deterministic(libri_root, tmp_path):
    other = str(tmp_path / "again")
    write_libri(other, TINY_LIBRI, n_jobs=1, progress=False)
    files = _files(libri_root)
    assert files == _files(other)
    assert not filecmp.cmpfiles(libri_root, other, files, shallow=False)[1]


def _heard_and_unheard(cfg):
    from slu_kd_plugin.synth.fsc_like import plan
    utts = plan(cfg)
    return ({u.speaker for u in utts if u.split != "test"}, {u.speaker for u in utts if u.split == "test"})


def test_held_out_plan_never_trains_on_a_test_voice_kind():
    """Every test voice is of an engine/gender pair or an espeak-ng accent that neither
    training nor valid ever has; training still hears all three engines."""
    heard, unheard = _heard_and_unheard(FscSynthConfig(speakers=30, utts_per_speaker=2, valid_speakers=4,
                                                       test_speakers=6, seed=5, voices="held-out"))
    assert len(unheard) == 6 and {s.engine for s in heard} == {"espeak-ng", "flite", "festival"}
    kinds = {(s.family, s.gender) for s in heard}
    accents = {s.voice for s in heard if s.engine == "espeak-ng"}
    for spk in unheard:
        new_kind = (spk.family, spk.gender) not in kinds
        new_accent = spk.engine == "espeak-ng" and spk.voice not in accents
        assert new_kind or new_accent, spk
    assert {s.family for s in unheard} >= {"flite", "festival-hts", "espeak-ng"}


def test_wide_paired_corpus_never_uses_a_test_voice():
    from slu_kd_plugin.synth.librispeech_like import plan
    from slu_kd_plugin.synth.voices import TEST_TIMBRES
    voices = {u.speaker for u in plan(LibriSynthConfig(utterances=60, speakers=30, seed=2, voices="wide"))}
    assert {v.engine for v in voices} == {"espeak-ng", "flite", "festival"}
    assert not {(v.engine, v.voice, v.variant) for v in voices} & set(TEST_TIMBRES)


def test_speakers_file_names_every_speaker(tmp_path):
    cfg = FscSynthConfig(speakers=3, utts_per_speaker=1, valid_speakers=1, test_speakers=1, seed=4,
                         voices="held-out")
    write_fsc(str(tmp_path), cfg, n_jobs=1, progress=False)
    lines = [line.split("\t") for line in (tmp_path / "speakers.tsv").read_text().splitlines()]
    ids = {r["speakerId"] for s in ("train", "valid", "test") for r in _rows(str(tmp_path), s)}
    assert {spk for spk, _ in lines} == ids
    test_voice = [v for _, v in lines if v.endswith(", test)")]
    assert len(test_voice) == 1 and test_voice[0].startswith("flite:slt")


# ---------------------------------------------------------------- SNIPS smart-lights
SNIPS_REAL_INTENTS = {"SwitchLightOn", "SwitchLightOff", "IncreaseBrightness", "DecreaseBrightness",
                      "SetLightColor", "SetLightBrightness"}
TINY_SNIPS = dict(speakers=4, utts_per_speaker=6, valid_speakers=1, test_speakers=1, seed=3,
                  voices="held-out")
TINY_SNIPS_ARGS = ["--speakers", "4", "--utts-per-speaker", "6", "--valid-speakers", "1",
                   "--test-speakers", "1", "--seed", "3", "--voices", "held-out", "--jobs", "1", "--quiet"]


@pytest.fixture(scope="module")
def snips_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("snips") / "smart-lights")
    assert synth_main(["snips", root, *TINY_SNIPS_ARGS]) == 0
    return root


def _tsv(path):
    return [line.split("\t") for line in open(path).read().splitlines()]


def test_smart_lights_grammar():
    from slu_kd_plugin.corpora.snips import normalize_text
    from slu_kd_plugin.synth.smart_lights import PHRASINGS, SLOT_VALUES, text_of
    assert set(PHRASINGS) == SNIPS_REAL_INTENTS
    texts = [normalize_text(text_of(p)) for ps in PHRASINGS.values() for p in ps]
    assert len(texts) >= 300 and len(set(texts)) == len(texts)  # one intent per text
    for ps in PHRASINGS.values():
        for p in ps:
            assert all(text in SLOT_VALUES[slot] for text, slot in p if slot)
    slots = {name: {s for p in ps for _, s in p if s} for name, ps in PHRASINGS.items()}
    assert slots["SetLightColor"] == {"room", "color"}
    assert slots["SetLightBrightness"] == {"room", "brightness"}


def test_snips_layout_is_read_by_prepare(snips_root, tmp_path):
    from slu_kd_plugin.cli.prepare import main as prepare_main
    meta = json.load(open(os.path.join(snips_root, "speech_corpus", "metadata.json")))
    assert len(meta) == 4 * 6 and not [f for f in _files(snips_root) if f.endswith(".tmp")]
    for entry in meta.values():
        info = sf.info(os.path.join(snips_root, "speech_corpus", "audio", entry["filename"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    out = tmp_path / "m"
    split_file = os.path.join(snips_root, "split.tsv")
    assert prepare_main(["snips", snips_root, str(out), "--split-file", split_file]) == 0
    split = dict(_tsv(split_file)[1:])
    for name in ("train", "valid", "test"):
        spk = (out / f"{name}.spk").read_text().split()
        assert len(spk) == 6 * list(split.values()).count(name) and {split[s] for s in spk} == {name}
        assert set((out / f"{name}.label").read_text().split()) == SNIPS_REAL_INTENTS  # all 6 per speaker
    assert (out / "speakers.tsv").read_text() == open(os.path.join(snips_root, "speakers.tsv")).read()


def test_snips_speakers_file_and_held_out_test_voices(snips_root):
    from slu_kd_plugin.synth.snips_like import SnipsSynthConfig, plan
    from slu_kd_plugin.synth.voices import TEST_TIMBRES
    voices = dict(_tsv(os.path.join(snips_root, "speakers.tsv")))
    split = dict(_tsv(os.path.join(snips_root, "split.tsv"))[1:])
    assert set(voices) == set(split) and len(voices) == 4
    assert all(re.fullmatch(r"[a-z-]+:\S+:s\d+:p\d+ \((male|female)\)", v) for v in voices.values())
    [test_worker] = [w for w, s in split.items() if s == "test"]
    assert voices[test_worker].startswith("flite:slt:")  # the held-out plan's first test voice
    recs = plan(SnipsSynthConfig(**{**TINY_SNIPS, "speakers": 12, "test_speakers": 4}))
    timbre = {r.worker: (r.speaker.engine, r.speaker.voice, r.speaker.variant) for r in recs}
    which = {r.worker: r.split for r in recs}
    assert all((timbre[w] in TEST_TIMBRES) == (s == "test") for w, s in which.items())


def test_snips_deterministic_by_seed(snips_root, tmp_path):
    from slu_kd_plugin.synth.snips_like import SnipsSynthConfig, plan
    other = str(tmp_path / "again")
    assert synth_main(["snips", other, *TINY_SNIPS_ARGS]) == 0
    files = _files(snips_root)
    assert files == _files(other)
    assert not filecmp.cmpfiles(snips_root, other, files, shallow=False)[1]
    texts = [r.text for r in plan(SnipsSynthConfig(**TINY_SNIPS))]
    assert texts != [r.text for r in plan(SnipsSynthConfig(**{**TINY_SNIPS, "seed": 4}))]


def test_snips_recipe_splits_by_the_corpus_split_file(snips_root, tmp_path):
    """examples/snips/run.sh (manifest stage only) takes ROOT/split.tsv by itself."""
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")
    work = tmp_path / "w"
    res = subprocess.run(["bash", os.path.join(repo, "examples", "snips", "run.sh"), snips_root, str(work),
                          "--stop-stage", "0", "--profile", "debug", "--nj", "1"],
                         env=env, cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    split = dict(_tsv(os.path.join(snips_root, "split.tsv"))[1:])
    assert {split[s] for s in (work / "manifests" / "test.spk").read_text().split()} == {"test"}


def test_snips_rejects_impossible_split(tmp_path):
    assert synth_main(["snips", str(tmp_path), "--speakers", "2", "--quiet"]) == 2
