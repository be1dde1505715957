"""Corpus readers, manifest writing and slu-kd-prepare, on tiny corpora in each real layout."""
import csv
import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from slu_kd_plugin.audio import read_audio
from slu_kd_plugin.cli.prepare import build_parser, run_fsc
from slu_kd_plugin.cli.prepare import main as prepare_main
from slu_kd_plugin.corpora.fsc import load_fsc
from slu_kd_plugin.corpora.labels import decode_intent, encode_intent, to_ltr
from slu_kd_plugin.corpora.librispeech import load_librispeech
from slu_kd_plugin.corpora.manifest import CorpusError, Utterance, write_split
from slu_kd_plugin.corpora.snips import load_snips, normalize_text, split_speakers
from slu_kd_plugin.corpora.tsv import load_tsv


def write_audio(path, n=800, rate=16000, channels=1, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.random.default_rng(seed).uniform(-0.3, 0.3, (n, channels)).astype("float32")
    sf.write(str(path), data, rate)


def read_lines(path):
    with open(path) as f:
        return f.read().split("\n")[:-1]


def assert_nothing_written(out):
    """No manifest under a final name, and no leftover .tmp either."""
    assert not os.path.exists(out) or os.listdir(out) == [], os.listdir(out)


def run_prepare(*argv):
    return prepare_main([str(a) for a in argv])


# ---------------------------------------------------------------- labels
def test_intent_tokens_keep_spaces_inside_one_token():
    slots = {"action": "change language", "object": "none", "location": "none"}
    assert encode_intent(slots) == "change_language|none|none"
    assert decode_intent("change_language|none|none") == ["change language", "none", "none"]
    assert encode_intent({"intent": "SwitchLightOn"}) == "SwitchLightOn"


@pytest.mark.parametrize("slots", [{"a": "x|y"}, {"a": ""}, {"a": None}, {}])
def test_intent_values_that_cannot_round_trip_are_refused(slots):
    with pytest.raises(ValueError):
        encode_intent(slots)


@pytest.mark.parametrize(
    "text,ltr",
    [
        ("Turn on the lights.", "T U R N | O N | T H E | L I G H T S |"),
        ("don't  stop", "D O N ' T | S T O P |"),
        ("don\u2019t", "D O N ' T |"),
        ("Café 5 - ok?", "C A F E | O K |"),
        ("twenty-one", "T W E N T Y O N E |"),
        ("42 !", ""),
    ],
)
def test_to_ltr(text, ltr):
    assert to_ltr(text) == ltr


# ---------------------------------------------------------------- FSC
FSC_HEADER = ["", "path", "speakerId", "transcription", "action", "object", "location"]
FSC_ROWS = {
    "train": [
        ("spkA", "a1", "Turn on the lights.", "activate", "lights", "none"),
        ("spkA", "a2", "Switch to Chinese", "change language", "Chinese", "none"),
        ("spkB", "b1", "Heat up the kitchen", "increase", "heat", "kitchen"),
        ("spkB", "b2", "Lights on", "activate", "lights", "none"),
    ],
    "valid": [("spkC", "c1", "Lights on please", "activate", "lights", "none")],
    "test": [("spkD", "d1", "Language: Chinese", "change language", "Chinese", "none")],
}


def make_fsc(root, rows=FSC_ROWS, header=FSC_HEADER, stereo_8k=("b1",)):
    os.makedirs(root / "data", exist_ok=True)
    for split, split_rows in rows.items():
        with open(root / "data" / f"{split}_data.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for i, (spk, uid, text, *slots) in enumerate(split_rows):
                rel = f"wavs/speakers/{spk}/{uid}.wav"
                if uid in stereo_8k:
                    write_audio(root / rel, 400, rate=8000, channels=2)
                else:
                    write_audio(root / rel, 800 + i)
                w.writerow([i, rel, spk, text, *slots][: len(header)])
    return root


def test_fsc_outputs_line_by_line(tmp_path):
    root, out = make_fsc(tmp_path / "fsc"), tmp_path / "out"
    assert run_prepare("fsc", root, out) == 0
    tsv = read_lines(out / "train.tsv")
    assert tsv[0] == str(root / "wavs" / "speakers")
    assert tsv[1:] == ["spkA/a1.wav\t800", "spkA/a2.wav\t801", "spkB/b1.wav\t800", "spkB/b2.wav\t803"]
    # the 8 kHz stereo file is recorded with its length after resampling
    assert len(read_audio(root / "wavs/speakers/spkB/b1.wav")) == 800
    assert read_lines(out / "train.txt") == [r[2] for r in FSC_ROWS["train"]]
    assert read_lines(out / "train.id") == ["spkA/a1", "spkA/a2", "spkB/b1", "spkB/b2"]
    assert read_lines(out / "train.label") == [
        "activate|lights|none", "change_language|Chinese|none",
        "increase|heat|kitchen", "activate|lights|none",
    ]
    assert read_lines(out / "train.ltr")[1] == "S W I T C H | T O | C H I N E S E |"
    assert read_lines(out / "test.label") == ["change_language|Chinese|none"]
    assert read_lines(out / "test.tsv") == [str(root / "wavs/speakers/spkD"), "d1.wav\t800"]
    labels = json.load(open(out / "labels.json"))
    assert labels["change_language|Chinese|none"] == {
        "action": "change language", "object": "Chinese", "location": "none"}
    assert len(labels) == 3
    assert not [f for f in os.listdir(out) if f.endswith(".tmp") or "skipped" in f]


def test_fsc_missing_column_names_csv_and_column(tmp_path):
    root = make_fsc(tmp_path / "fsc", header=FSC_HEADER[:-1])
    with pytest.raises(CorpusError) as e:
        load_fsc(root)
    assert "train_data.csv" in str(e.value) and "'location'" in str(e.value)
    assert run_prepare("fsc", root, tmp_path / "out") == 1
    assert_nothing_written(tmp_path / "out")


def test_fsc_empty_cell_names_file_and_line(tmp_path):
    rows = dict(FSC_ROWS, valid=[("spkC", "c1", "", "activate", "lights", "none")])
    root = make_fsc(tmp_path / "fsc", rows=rows)
    with pytest.raises(CorpusError, match=r"valid_data\.csv:2: empty value in column\(s\) transcription"):
        load_fsc(root)
    assert run_prepare("fsc", root, tmp_path / "out") == 1
    assert_nothing_written(tmp_path / "out")


def test_fsc_missing_csv_is_named(tmp_path):
    root = make_fsc(tmp_path / "fsc")
    os.remove(root / "data" / "valid_data.csv")
    with pytest.raises(CorpusError, match="valid_data.csv: FSC split file not found"):
        load_fsc(root)


def _break_fsc_audio(root):
    """Bad audio in test AND train: a missing, an unreadable and an empty file."""
    missing = root / "wavs/speakers/spkD/d1.wav"
    garbage = root / "wavs/speakers/spkA/a1.wav"
    empty = root / "wavs/speakers/spkB/b1.wav"
    os.remove(missing)
    garbage.write_bytes(b"not a wav" * 20)
    sf.write(str(empty), np.zeros((0, 1), "float32"), 16000)
    return {missing: "file not found", garbage: "unreadable audio", empty: "empty audio"}


def test_fsc_bad_audio_error_lists_every_file_and_writes_nothing(tmp_path, capsys):
    root, out = make_fsc(tmp_path / "fsc"), tmp_path / "out"
    bad = _break_fsc_audio(root)
    assert run_prepare("fsc", root, out) == 1
    err = capsys.readouterr().err
    assert_nothing_written(out)
    # the bad files of every split are listed, with their reasons
    for path, reason in bad.items():
        assert f"{path}: {reason}" in err


def test_fsc_bad_audio_skip_writes_the_rest_and_lists_skipped(tmp_path):
    root, out = make_fsc(tmp_path / "fsc"), tmp_path / "out"
    bad = _break_fsc_audio(root)
    # test would be empty, so only its missing file is restored
    write_audio(root / "wavs/speakers/spkD/d1.wav")
    del bad[root / "wavs/speakers/spkD/d1.wav"]
    assert run_prepare("fsc", root, out, "--on-bad-audio", "skip") == 0
    assert read_lines(out / "train.id") == ["spkA/a2", "spkB/b2"]
    assert len(read_lines(out / "train.label")) == len(read_lines(out / "train.tsv")) - 1 == 2
    skipped = [line.split("\t") for line in read_lines(out / "train.skipped.tsv")]
    assert [(p, r.split(" (")[0]) for p, r in skipped] == [(str(p), r) for p, r in bad.items()]
    assert not os.path.exists(out / "test.skipped.tsv")


def test_fsc_unknown_test_intent_names_file_and_line(tmp_path):
    rows = dict(FSC_ROWS, test=[("spkD", "d1", "x", "activate", "lights", "none"),
                                ("spkD", "d2", "Make it loud", "increase", "volume", "none")])
    root, out = make_fsc(tmp_path / "fsc", rows=rows), tmp_path / "out"
    with pytest.raises(CorpusError, match=r"test_data\.csv:3: intent 'increase\|volume\|none' "
                                          r"does not occur in the training labels"):
        run_fsc(build_parser().parse_args(["fsc", str(root), str(out)]))
    assert_nothing_written(out)
    assert run_prepare("fsc", root, out, "--allow-unseen-labels") == 0


def test_fsc_subset_is_reproducible_and_from_train(tmp_path):
    root = make_fsc(tmp_path / "fsc")
    args = ["--subset-fraction", "0.5", "--subset-name", "train10", "--seed", "1"]
    assert run_prepare("fsc", root, tmp_path / "o1", *args) == 0
    assert run_prepare("fsc", root, tmp_path / "o2", *args) == 0
    ids = read_lines(tmp_path / "o1" / "train10.id")
    # half of 4 is 2, but each of the 3 intents gets at least one (--subset-min-per-intent 1)
    assert len(ids) == 3 and set(ids) <= set(read_lines(tmp_path / "o1" / "train.id"))
    assert len(set(read_lines(tmp_path / "o1" / "train10.label"))) == 3
    for ext in ("id", "tsv", "label", "ltr", "txt"):
        assert read_lines(tmp_path / "o1" / f"train10.{ext}") == read_lines(tmp_path / "o2" / f"train10.{ext}")


def test_fsc_subset_is_drawn_per_intent_with_a_floor(tmp_path, capsys):
    """10% of a corpus with one common and two rare intents: the common one gets its share,
    the rare ones the floor, not the one or none a uniform draw would give them."""
    rows = [(f"spk{i % 4}", f"u{i}", "Turn on the lights", "activate", "lights", "none") for i in range(80)]
    rows += [(f"spk{i % 4}", f"v{i}", "Heat up the kitchen", "increase", "heat", "kitchen") for i in range(12)]
    rows += [(f"spk{i % 4}", f"w{i}", "Switch to Chinese", "change language", "Chinese", "none") for i in range(4)]
    root = make_fsc(tmp_path / "fsc", rows={**FSC_ROWS, "train": rows}, stereo_8k=())
    lights, heat, chinese = "activate|lights|none", "increase|heat|kitchen", "change_language|Chinese|none"
    for floor, want in (("0", {lights: 8, heat: 1, chinese: 1}), ("5", {lights: 8, heat: 5, chinese: 4})):
        out = tmp_path / f"out{floor}"
        assert run_prepare("fsc", root, out, "--subset-fraction", "0.1", "--subset-min-per-intent", floor,
                           "--allow-unseen-labels") == 0
        labels = read_lines(out / "train10.label")
        assert {t: labels.count(t) for t in set(labels)} == want
    with pytest.raises(SystemExit):
        run_prepare("fsc", root, tmp_path / "bad", "--subset-fraction", "0.1", "--subset-min-per-intent", "-1")
    assert "--subset-min-per-intent: takes a whole number from 0, not '-1'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "bad")


# ---------------------------------------------------------------- LibriSpeech
def make_librispeech(root, split="dev-clean", chapters=(("84", "121123"), ("174", "50561"))):
    for spk, chap in chapters:
        d = root / split / spk / chap
        lines = []
        for utt in range(2):
            uid = f"{spk}-{chap}-{utt:04d}"
            write_audio(d / f"{uid}.flac", 500 + utt)
            lines.append(f"{uid} HELLO WORLD NUMBER {utt}\n")
        (d / f"{spk}-{chap}.trans.txt").write_text("".join(lines))
    return root


def test_librispeech_outputs_and_split_mapping(tmp_path):
    root, out = tmp_path / "LibriSpeech", tmp_path / "out"
    make_librispeech(root, "dev-clean")
    make_librispeech(root, "dev-other", chapters=(("700", "1"),))
    assert run_prepare("librispeech", root, out, "--splits", "dev-clean", "dev-other=test") == 0
    assert read_lines(out / "valid.id") == [
        "174-50561-0000", "174-50561-0001", "84-121123-0000", "84-121123-0001"]
    assert read_lines(out / "valid.tsv") == [
        str(root / "dev-clean"), "174/50561/174-50561-0000.flac\t500",
        "174/50561/174-50561-0001.flac\t501", "84/121123/84-121123-0000.flac\t500",
        "84/121123/84-121123-0001.flac\t501"]
    assert read_lines(out / "valid.txt")[1] == "HELLO WORLD NUMBER 1"
    assert read_lines(out / "valid.ltr")[0] == "H E L L O | W O R L D | N U M B E R |"
    assert read_lines(out / "test.id") == ["700-1-0000", "700-1-0001"]
    assert not os.path.exists(out / "valid.label") and not os.path.exists(out / "labels.json")


def test_librispeech_flags_map_splits(tmp_path):
    root, out = make_librispeech(tmp_path / "LS", "train-clean-100"), tmp_path / "out"
    assert run_prepare("librispeech", root, out, "--train", "train-clean-100") == 0
    assert len(read_lines(out / "train.id")) == 4


@pytest.mark.parametrize("bad_line,msg", [
    ("84-121123-0002\n", "expected 'ID TRANSCRIPT'"),
    ("99-1-0002 HELLO\n", "id '99-1-0002' is not of the form 84-121123-<number>"),
])
def test_librispeech_malformed_line_names_file_and_line(tmp_path, bad_line, msg):
    root, out = make_librispeech(tmp_path / "LS"), tmp_path / "out"
    trans = root / "dev-clean/84/121123/84-121123.trans.txt"
    with open(trans, "a") as f:
        f.write(bad_line)
    with pytest.raises(CorpusError, match=re.escape(f"{trans}:3: {msg}")):
        load_librispeech(root, "dev-clean")
    assert run_prepare("librispeech", root, out, "--splits", "dev-clean") == 1
    assert_nothing_written(out)


def test_librispeech_missing_split_dir_is_named(tmp_path):
    with pytest.raises(CorpusError, match="dev-other: LibriSpeech split directory not found"):
        load_librispeech(make_librispeech(tmp_path / "LS"), "dev-other")


# ---------------------------------------------------------------- SNIPS
SNIPS_INTENTS = {
    "SwitchLightOn": ["turn on the lights", "switch the light on in the kitchen"],
    "SetLightColor": ["make the lights red"],
}


def make_snips(root, speakers=("w1", "w2", "w3", "w4", "w5"), extra=()):
    intents = {}
    for name, texts in SNIPS_INTENTS.items():
        utts = []
        for t in texts:  # split into parts as the Snips NLU format does
            head, _, tail = t.rpartition(" ")
            utts.append({"data": [{"text": head + " "}, {"text": tail, "entity": "x", "slot_name": "y"}]})
        intents[name] = {"utterances": utts}
    (root / "speech_corpus" / "audio").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"intents": intents}))
    spoken = ["Turn on the lights.", "Make the lights RED", "switch the light on in the kitchen"]
    meta, n = {}, 0
    for spk in speakers:
        for text in spoken + list(extra):
            meta[str(n)] = {"filename": f"{n}.wav", "text": text, "worker": {"id": spk}}
            write_audio(root / "speech_corpus" / "audio" / f"{n}.wav", 300)
            n += 1
    (root / "speech_corpus" / "metadata.json").write_text(json.dumps(meta))
    return root


def test_snips_split_by_speaker_is_reproducible():
    speakers = [f"w{i}" for i in range(20)]
    a, b = split_speakers(speakers, seed=3), split_speakers(list(reversed(speakers)), seed=3)
    assert a == b and sorted(a) == sorted(speakers)
    assert [list(a.values()).count(s) for s in ("train", "valid", "test")] == [16, 2, 2]
    assert split_speakers(speakers, seed=4) != a


@pytest.mark.parametrize("n,sizes", [(3, [1, 1, 1]), (5, [3, 1, 1]), (6, [2, 2, 2]), (9, [5, 2, 2]),
                                     (10, [6, 2, 2]), (30, [24, 3, 3])])
def test_snips_split_holds_several_unseen_test_voices(n, sizes):
    split = split_speakers([f"w{i}" for i in range(n)])
    assert [list(split.values()).count(s) for s in ("train", "valid", "test")] == sizes
    # the minimum holds under other fractions too (valid and test were 0.05 of 10 speakers)
    split = split_speakers([f"w{i}" for i in range(10)], fractions=(0.9, 0.05, 0.05), seed=2)
    assert [list(split.values()).count(s) for s in ("train", "valid", "test")] == [6, 2, 2]


def test_snips_six_speaker_corpus_tests_on_two_unseen_speakers(tmp_path):
    speakers = [f"w{i}" for i in range(6)]
    root, out = make_snips(tmp_path / "snips", speakers=speakers), tmp_path / "out"
    assert run_prepare("snips", root, out) == 0
    spk = {s: set(read_lines(out / f"{s}.spk")) for s in ("train", "valid", "test")}
    assert len(spk["test"]) >= 2 and len(spk["valid"]) >= 2
    assert not spk["test"] & (spk["train"] | spk["valid"]) and not spk["valid"] & spk["train"]
    assert spk["train"] | spk["valid"] | spk["test"] == set(speakers)
    assert normalize_text("Turn on  the LIGHTS!") == "turn on the lights"


def test_snips_outputs(tmp_path):
    root, out = make_snips(tmp_path / "smart-lights-en-close-field"), tmp_path / "out"
    assert run_prepare("snips", root, out) == 0
    split_of = split_speakers(["w1", "w2", "w3", "w4", "w5"])
    for split in ("train", "valid", "test"):
        ids = read_lines(out / f"{split}.id")
        assert len(ids) == 3 * list(split_of.values()).count(split)
        assert read_lines(out / f"{split}.label")[:3] == ["SwitchLightOn", "SetLightColor", "SwitchLightOn"]
        assert read_lines(out / f"{split}.txt")[1] == "Make the lights RED"
    assert json.load(open(out / "labels.json")) == {
        "SetLightColor": {"intent": "SetLightColor"}, "SwitchLightOn": {"intent": "SwitchLightOn"}}


def test_snips_unmatched_audio_is_reported(tmp_path, capsys):
    root, out = make_snips(tmp_path / "snips", extra=["dim the lights"]), tmp_path / "out"
    splits, unmatched = load_snips(root)
    assert sum(len(v) for v in unmatched.values()) == 5
    assert run_prepare("snips", root, out) == 1
    assert "3.wav: text 'dim the lights' matches no utterance in dataset.json" in capsys.readouterr().err
    assert_nothing_written(out)
    assert run_prepare("snips", root, out, "--on-bad-audio", "skip") == 0
    skipped = [line for s in ("train", "valid", "test") for line in read_lines(out / f"{s}.skipped.tsv")]
    assert len(skipped) == 5 and all("matches no utterance" in line for line in skipped)


def test_snips_metadata_entry_without_worker_is_named(tmp_path):
    root = make_snips(tmp_path / "snips")
    meta = json.load(open(root / "speech_corpus/metadata.json"))
    del meta["4"]["worker"]
    (root / "speech_corpus/metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CorpusError, match=r"metadata\.json: entry '4' needs"):
        load_snips(root)
    assert run_prepare("snips", root, tmp_path / "out") == 1
    assert_nothing_written(tmp_path / "out")


def test_snips_split_file_replaces_the_seeded_cut(tmp_path):
    root, out = make_snips(tmp_path / "snips"), tmp_path / "out"
    (root / "split.tsv").write_text("workerId\tsplit\nw1\ttest\nw2\tvalid\nw3\ttrain\nw4\ttrain\nw5\ttrain\n")
    assert run_prepare("snips", root, out, "--split-file", root / "split.tsv") == 0
    assert set(read_lines(out / "test.spk")) == {"w1"} and set(read_lines(out / "valid.spk")) == {"w2"}
    assert run_prepare("snips", root, tmp_path / "seeded") == 0  # without the option: the seeded cut
    seeded = split_speakers(["w1", "w2", "w3", "w4", "w5"])
    assert set(read_lines(tmp_path / "seeded" / "test.spk")) == {w for w, s in seeded.items() if s == "test"}


def test_snips_bad_split_file_names_file_and_line(tmp_path, capsys):
    root = make_snips(tmp_path / "snips")
    bad = root / "split.tsv"
    bad.write_text("w1\ttest\nw2 valid\nw3\tdev\nw1\ttrain\n")
    assert run_prepare("snips", root, tmp_path / "out", "--split-file", bad) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: expected workerId<TAB>train|valid|test" in err and f"{bad}:3:" in err
    assert f"{bad}:4: worker 'w1' listed twice" in err
    bad.write_text("w1\ttest\nw2\tvalid\nw3\ttrain\n")  # w4, w5 forgotten
    assert run_prepare("snips", root, tmp_path / "out", "--split-file", bad) == 1
    assert "2 worker(s) of metadata.json not listed" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


# ---------------------------------------------------------------- generic TSV
def make_tsv(d, name, rows, header="path\ttranscript\tintent\tspeaker"):
    lines = [header] + ["\t".join(r) for r in rows]
    (d / name).write_text("\n".join(lines) + "\n")
    for r in rows:
        if not os.path.exists(d / r[0]):
            write_audio(d / r[0], 640)
    return d / name


def test_tsv_outputs(tmp_path):
    d, out = tmp_path / "corpus", tmp_path / "out"
    d.mkdir()
    tr = make_tsv(d, "train.tsv", [("a/1.wav", "play music", "play music", "s1"),
                                   ("a/2.wav", "stop", "stop", "s1")])
    va = make_tsv(d, "valid.tsv", [("b/3.wav", "Stop now", "stop", "s2")])
    te = make_tsv(d, "test.tsv", [("b/4.wav", "play some music", "play music", "s3")])
    assert run_prepare("tsv", tr, va, te, out) == 0
    assert read_lines(out / "train.tsv") == [str(d / "a"), "1.wav\t640", "2.wav\t640"]
    assert read_lines(out / "train.label") == ["play_music", "stop"]
    assert read_lines(out / "train.id") == ["a/1", "a/2"]
    assert read_lines(out / "test.ltr") == ["P L A Y | S O M E | M U S I C |"]
    assert json.load(open(out / "labels.json"))["play_music"] == {"intent": "play music"}


def test_tsv_bad_rows_name_file_and_line(tmp_path):
    d = tmp_path
    make_tsv(d, "x.tsv", [("1.wav", "hi", "greet", "s1")], header="path\ttranscript\tintnt\tspeaker")
    with pytest.raises(CorpusError, match=r"x\.tsv: missing column\(s\) 'intent'"):
        load_tsv(d / "x.tsv")
    make_tsv(d, "y.tsv", [("1.wav", "hi", "greet", "s1"), ("2.wav", "hi", "greet")])
    with pytest.raises(CorpusError, match=r"y\.tsv:3: 3 tab-separated fields, header has 4"):
        load_tsv(d / "y.tsv")
    assert run_prepare("tsv", d / "x.tsv", d / "y.tsv", d / "y.tsv", d / "out") == 1
    assert_nothing_written(d / "out")


def test_tsv_unknown_test_intent_and_missing_audio(tmp_path):
    d, out = tmp_path / "c", tmp_path / "out"
    d.mkdir()
    tr = make_tsv(d, "train.tsv", [("1.wav", "hi", "greet", "s1")])
    va = make_tsv(d, "valid.tsv", [("2.wav", "hi", "greet", "s2")])
    te = make_tsv(d, "test.tsv", [("3.wav", "bye", "greet", "s3"), ("4.wav", "bye", "leave", "s3")])
    assert run_prepare("tsv", tr, va, te, out) == 1
    assert_nothing_written(out)
    os.remove(d / "2.wav")
    with pytest.raises(CorpusError) as e:
        write_split(out, "valid", load_tsv(va))
    assert f"{d / '2.wav'}: file not found" in str(e.value)
    assert_nothing_written(out)


# ---------------------------------------------------------------- write_split itself
def test_write_split_refuses_duplicate_ids_and_token_collisions(tmp_path):
    write_audio(tmp_path / "a.wav")
    u = Utterance("u1", str(tmp_path / "a.wav"), "hi", {"intent": "play music"}, origin="f:1")
    v = Utterance("u1", str(tmp_path / "a.wav"), "hi", {"intent": "play_music"}, origin="f:2")
    with pytest.raises(CorpusError) as e:
        write_split(tmp_path / "out", "train", [u, v])
    assert "f:2: duplicate utterance id 'u1' (also f:1)" in str(e.value)
    assert "both encode to 'play_music'" in str(e.value)
    assert_nothing_written(tmp_path / "out")


def test_rewriting_a_split_without_labels_removes_the_stale_label_file(tmp_path):
    write_audio(tmp_path / "a.wav")
    out = tmp_path / "out"
    r = write_split(out, "train", [Utterance("u", str(tmp_path / "a.wav"), "hi", {"intent": "x"})])
    assert r.n_written == 1 and r.labels == {"x"} and os.path.exists(out / "train.label")
    write_split(out, "train", [Utterance("u", str(tmp_path / "a.wav"), "hi")])
    assert not os.path.exists(out / "train.label")
    assert json.load(open(out / "labels.json")) == {"x": {"intent": "x"}}


def test_no_resample_makes_8k_audio_bad(tmp_path):
    write_audio(tmp_path / "a.wav", rate=8000)
    utt = Utterance("u", str(tmp_path / "a.wav"), "hi")
    with pytest.raises(CorpusError, match=r"a\.wav: sample rate 8000 Hz"):
        write_split(tmp_path / "out", "train", [utt], resample=False)
    assert_nothing_written(tmp_path / "out")
    r = write_split(tmp_path / "out", "train", [utt], check="decode")
    assert read_lines(tmp_path / "out" / "train.tsv")[1] == "a.wav\t1600" and r.skipped == []


# ---------------------------------------------------------------- speakers: {split}.spk, speakers.tsv
def test_fsc_spk_is_line_aligned_and_speakers_tsv_copied(tmp_path):
    root, out = make_fsc(tmp_path / "fsc"), tmp_path / "out"
    listing = "speakerId\tvoice\nspkA\tflite:slt:s160:p50 (female)\nspkD\tespeak-ng:en-us (male)\n"
    (root / "speakers.tsv").write_text(listing)
    assert run_prepare("fsc", root, out, "--subset-fraction", "0.5") == 0
    for split, rows in FSC_ROWS.items():
        assert read_lines(out / f"{split}.spk") == [r[0] for r in rows]
    # the subset's speakers follow its utterances, line by line
    ids, spk = read_lines(out / "train50.id"), read_lines(out / "train50.spk")
    assert len(ids) == 3 and [i.split("/")[0] for i in ids] == spk
    assert (out / "speakers.tsv").read_text() == listing
    # a corpus without a list: the copy from the previous run must not stay behind
    os.remove(root / "speakers.tsv")
    assert run_prepare("fsc", root, out) == 0
    assert not os.path.exists(out / "speakers.tsv") and os.path.exists(out / "test.spk")


def test_snips_spk_is_line_aligned_with_worker_ids(tmp_path):
    root, out = make_snips(tmp_path / "snips"), tmp_path / "out"
    assert run_prepare("snips", root, out) == 0
    split_of = split_speakers(["w1", "w2", "w3", "w4", "w5"])
    meta = json.load(open(root / "speech_corpus/metadata.json"))
    worker_of = {os.path.splitext(e["filename"])[0]: e["worker"]["id"] for e in meta.values()}
    for split in ("train", "valid", "test"):
        spk = read_lines(out / f"{split}.spk")
        assert spk == [worker_of[i] for i in read_lines(out / f"{split}.id")]
        assert len(spk) == len(read_lines(out / f"{split}.tsv")) - 1
        assert {split_of[s] for s in spk} == {split}


@pytest.mark.parametrize("listing,msg", [
    ("spkA\tslt\nspkB\n", r"speakers\.tsv:2: expected speakerId<TAB>voice"),
    ("spkA\tslt\tx\n", r"speakers\.tsv:1: expected speakerId<TAB>voice"),
    ("spkA\tslt\nspkB\tkal\nspkA\tawb\n", r"speakers\.tsv:3: speaker 'spkA' already given on line 1"),
])
def test_bad_speakers_tsv_names_file_and_line_and_writes_nothing(tmp_path, capsys, listing, msg):
    root, out = make_fsc(tmp_path / "fsc"), tmp_path / "out"
    (root / "speakers.tsv").write_text(listing)
    assert run_prepare("fsc", root, out) == 1
    assert re.search(msg, capsys.readouterr().err)
    assert_nothing_written(out)


def test_half_known_speakers_are_refused(tmp_path):
    d, out = tmp_path / "c", tmp_path / "out"
    d.mkdir()
    tr = make_tsv(d, "train.tsv", [("1.wav", "hi", "greet", "s1"), ("2.wav", "hi", "greet", "")])
    va = make_tsv(d, "valid.tsv", [("3.wav", "hi", "greet", "s2")])
    with pytest.raises(CorpusError, match=r"train\.tsv:3 has none"):
        write_split(out, "train", load_tsv(tr))
    assert run_prepare("tsv", tr, va, va, out) == 1
    assert_nothing_written(out)
    # no speaker column at all: no .spk, and no error
    tr2 = make_tsv(d, "t2.tsv", [("1.wav", "hi", "greet")], header="path\ttranscript\tintent")
    write_split(out, "train", load_tsv(tr2))
    assert not os.path.exists(out / "train.spk") and os.path.exists(out / "train.id")
