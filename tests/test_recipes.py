"""The corpus recipes examples/{librispeech,fsc,snips}/run.sh, end to end at debug size.

Each recipe runs on a tiny corpus in its real layout: LibriSpeech and FSC from
``slu-kd-synth``, SNIPS smart-lights written here (Snips NLU ``dataset.json`` +
``speech_corpus/metadata.json`` + TTS audio).  FSC uses the LibriSpeech recipe's output
as ``--pretrained-dir``; SNIPS trains its own speech BERT, text model, PT-KD and AM-PT
(the offline path), side by side with the LibriSpeech -> FSC chain.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# one torch thread per process: two recipes share 2 cores (see conftest.py)
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
           PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
ACCURACY_LINE = re.compile(r"^test accuracy: \d{1,3}\.\d\d$")
PRETRAINED = ("speech_bert", "text_model", "pt_kd", "am_pt")

# SNIPS smart-lights in miniature: every intent, slot-bearing parts as Snips NLU writes them
SNIPS_INTENTS = {
    "IncreaseBrightness": [["brighten the lights in the ", ("kitchen", "room")], ["increase the brightness"]],
    "DecreaseBrightness": [["dim the lights in the ", ("bedroom", "room")], ["lower the brightness please"]],
    "SwitchLightOn": [["turn on the lights in the ", ("living room", "room")], ["switch the light on"]],
    "SwitchLightOff": [["turn off the ", ("bathroom", "room"), " lights"], ["switch off all the lights"]],
    "SetLightBrightness": [["set the brightness to ", ("fifty", "brightness"), " percent"],
                           ["put the lights at ", ("ten", "brightness"), " percent"]],
    "SetLightColor": [["make the lights ", ("blue", "color")], ["change the color to ", ("red", "color")]],
}
SNIPS_SPEAKERS = 6  # split 2 / 2 / 2: the 80/10/10 speaker cut keeps 2 held-out voices each


def snips_part(part):
    if isinstance(part, str):
        return {"text": part}
    text, slot = part
    return {"text": text, "entity": slot, "slot_name": slot}


def utterance_text(parts):
    return "".join(p if isinstance(p, str) else p[0] for p in parts)


def write_snips(root):
    """A smart-lights corpus in the real layout; one dataset text has no recording (as in
    the real corpus) and one recording matches no intent (the recipe skips it)."""
    from slu_kd_plugin.synth.tts import Job, render
    from slu_kd_plugin.synth.voices import speaker_pool

    intents = {name: {"utterances": [{"data": [snips_part(p) for p in parts]} for parts in phrasings]}
               for name, phrasings in SNIPS_INTENTS.items()}
    intents["SwitchLightOn"]["utterances"].append({"data": [{"text": "lights on in the garage"}]})  # never spoken
    (root / "speech_corpus" / "audio").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"intents": intents, "entities": {}, "language": "en"}))
    metadata, jobs = {}, []
    for s, spk in enumerate(speaker_pool(seed=7, size=SNIPS_SPEAKERS, salt="snips")):
        texts = [utterance_text(ph[s % 2]) for ph in SNIPS_INTENTS.values()]
        texts[0] = texts[0].capitalize() + "!"  # recordings' texts are normalized before matching
        if s == 0:
            texts.append("please make me a sandwich")
        for text in texts:
            key = str(len(metadata))
            metadata[key] = {"filename": f"{key}.wav", "text": text, "worker": {"id": f"worker{s}"}}
            jobs.append(Job(str(root / "speech_corpus" / "audio" / f"{key}.wav"), text, spk, 100 + int(key)))
    render(jobs, n_jobs=1, progress=False)
    (root / "speech_corpus" / "metadata.json").write_text(json.dumps(metadata))


class Run:
    """A recipe run: its work dir, exit code, output lines and wall time."""

    def __init__(self, name, args, work, log):
        self.name, self.work, self.log = name, Path(work), Path(log)
        self.t0 = time.time()
        with open(log, "w") as f:
            self.proc = subprocess.Popen([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT,
                                         env=ENV, cwd=str(REPO))

    def wait(self, timeout=900):
        self.code = self.proc.wait(timeout=timeout)
        self.seconds = time.time() - self.t0
        self.lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return self

    def check(self):
        assert self.code == 0, f"{self.name} exited {self.code}; end of {self.log}:\n" + "\n".join(self.lines[-30:])


def recipe(name):
    return REPO / "examples" / name / "run.sh"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    synth = [subprocess.Popen([str(BIN / "slu-kd-synth"), *args, "--jobs", "1", "--quiet"], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for args in (["librispeech", root / "librispeech", "--utterances", "30", "--seed", "2"],
                          ["fsc", root / "fsc", "--speakers", "4", "--utts-per-speaker", "8",
                           "--valid-speakers", "1", "--test-speakers", "1", "--seed", "1"])]
    write_snips(root / "smart-lights-en-close-field")
    for p in synth:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    debug = ["--profile", "debug"]
    snips = Run("snips", [recipe("snips"), root / "smart-lights-en-close-field", root / "work_snips", *debug],
                root / "work_snips", root / "snips.log")
    ls = Run("librispeech", [recipe("librispeech"), root / "librispeech", root / "work_ls", *debug],
             root / "work_ls", root / "librispeech.log").wait()
    # 16 training utterances cannot cover every intent the held-out speakers say
    fsc = Run("fsc", [recipe("fsc"), root / "fsc", root / "work_fsc", *debug, "--pretrained-dir", root / "work_ls",
                      "--allow-unseen-labels"], root / "work_fsc", root / "fsc.log") if ls.code == 0 else None
    done = {"librispeech": ls, "snips": snips.wait(), "fsc": fsc.wait() if fsc else None, "fsc_corpus": root / "fsc"}
    print("\nrecipe wall times (s): " + ", ".join(f"{k} {r.seconds:.0f}" for k, r in done.items() if isinstance(r, Run)))
    return done


def assets(work):
    out = {}
    for line in (work / "assets.env").read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


def check_slu_outputs(run, n_labels=None):
    """What an SLU recipe promises: one final accuracy line, results.json, evaluation files."""
    run.check()
    assert ACCURACY_LINE.match(run.lines[-1]), run.lines[-5:]
    assert sum(bool(ACCURACY_LINE.match(line)) for line in run.lines) == 1
    results = json.loads((run.work / "results.json").read_text())
    assert f"test accuracy: {results['test']['accuracy']:.2f}" == run.lines[-1]
    for split in ("valid", "test"):
        assert results[split]["subset"] == split and results[split]["n"] > 0
        for name in ("metrics.json", "predictions.jsonl", "confusion.png"):
            assert (run.work / "eval" / split / name).is_file()
    for stage in ("teacher", "slu"):
        assert (run.work / "checkpoints" / stage / "checkpoint_best.pt").is_file()
    labels = (run.work / "data-bin" / "label" / "dict.txt").read_text().splitlines()
    assert (run.work / "checkpoints" / "teacher" / "label_dict.txt").read_text().splitlines() == labels
    if n_labels:
        assert len(labels) == n_labels
    return results


@pytest.mark.slow
def test_librispeech_recipe_makes_the_pretrained_assets(runs):
    run = runs["librispeech"]
    run.check()
    for stage in PRETRAINED:
        assert (run.work / "checkpoints" / stage / "checkpoint_best.pt").is_file(), stage
    a = assets(run.work)
    # the offline default unit source: pocketsphinx word decoding with the transcripts' LM
    assert a["QUANTIZER_KIND"] == "words" and a["TEXT_ENCODER"] == "spm"
    from slu_kd_plugin.quantize import load_quantizer
    assert load_quantizer(a["QUANTIZER"]).decoding == "words"
    assert a["AM_PT"] == str(run.work / "checkpoints" / "am_pt" / "checkpoint_best.pt")
    for split in ("train", "valid"):
        for stream in ("units", "input0", "ltr"):
            assert (run.work / "data-bin" / stream / f"{split}.bin").is_file()
    assert run.lines[-1] == f"pretrained assets: {run.work / 'assets.env'}"


@pytest.mark.slow
def test_fsc_recipe_with_pretrained_dir(runs):
    assert runs["fsc"] is not None, "the LibriSpeech recipe failed first"
    run = runs["fsc"]
    results = check_slu_outputs(run)
    assert set(results["test"]["slot_accuracy"]) == {"action", "object", "location"}
    ls_work = runs["librispeech"].work
    # the pretrained dir's models and dictionaries are used, none are trained again
    assert results["assets"]["PT_KD"] == str(ls_work / "checkpoints" / "pt_kd" / "checkpoint_best.pt")
    assert not (run.work / "checkpoints" / "pt_kd").exists()
    assert (run.work / "data-bin" / "units" / "dict.txt").read_text() == (ls_work / "data-bin" / "units" / "dict.txt").read_text()
    assert (run.work / "data-bin" / "input0" / "dict.txt").read_text() == (ls_work / "data-bin" / "input0" / "dict.txt").read_text()
    # the pretrained dir's units, decoded with the LM of this corpus' own transcripts
    from slu_kd_plugin.quantize import load_quantizer
    from slu_kd_plugin.quantize.pocketsphinx_phones import transcript_words
    own, pretrained = (load_quantizer(a["QUANTIZER"]) for a in (results["assets"], assets(ls_work)))
    assert (own.decoding, pretrained.decoding) == ("phrases", "words")  # FSC's default: its commands' phrases
    assert results["assets"]["QUANTIZER"] == str(run.work / "quantizer.pt") and own.frame_ms == pretrained.frame_ms
    lm_words = {line.split()[0] for line in own.word_lm["dict"].splitlines()}
    fsc_words = {w for s in transcript_words((run.work / "manifests" / "train.txt").read_text().splitlines()) for w in s}
    assert lm_words <= fsc_words and lm_words != {line.split()[0] for line in pretrained.word_lm["dict"].splitlines()}


@pytest.mark.slow
def test_snips_recipe_offline(runs):
    run = runs["snips"]
    results = check_slu_outputs(run, n_labels=len(SNIPS_INTENTS))
    assert "slot_accuracy" not in results["test"]
    for stage in PRETRAINED:  # no --pretrained-dir: trained here on the corpus itself
        assert (run.work / "checkpoints" / stage / "checkpoint_best.pt").is_file(), stage
    skipped = "".join(p.read_text() for p in (run.work / "manifests").glob("*.skipped.tsv"))
    assert "sandwich" in skipped
    ids = {split: (run.work / "manifests" / f"{split}.id").read_text().split() for split in ("train", "valid", "test")}
    assert [len(v) for v in ids.values()] == [2 * 6, 2 * 6, 2 * 6]  # speakers 2 / 2 / 2


@pytest.mark.parametrize("name", ["librispeech", "fsc", "snips"])
def test_recipe_usage_on_bad_arguments(name, tmp_path):
    res = subprocess.run(["bash", str(recipe(name))], capture_output=True, text=True, env=ENV)
    assert res.returncode == 2 and "usage: examples/" in res.stderr and "stages:" in res.stderr
    res = subprocess.run(["bash", str(recipe(name)), str(tmp_path), str(tmp_path / "w"), "--bogus", "1"],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 2 and "unknown option --bogus" in res.stderr


def recorded_assets(work):
    """WORK/assets.env as the recipe's shell reads it (values unquoted)."""
    import shlex
    return {k: " ".join(shlex.split(v)) for k, v in assets(work).items()} | {"WORK": str(work)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["librispeech", "fsc", "snips"])
def test_recipe_runs_what_the_settings_table_says(runs, name):
    """Every stage's fairseq-train config, as fairseq logged it in train.log, is what the
    table's stage function gives for the debug profile and the run's recorded assets."""
    from recipe_config import config_drift, recipe_stage_args
    from slu_kd_plugin.recipe import settings

    run = runs[name]
    assert run is not None, "an earlier recipe failed"
    run.check()
    a, checked = recorded_assets(run.work), []
    for stage in ("speech_bert", "text_model", "pt_kd", "am_pt", "teacher", "slu"):
        log = run.work / "checkpoints" / stage / "train.log"
        if not log.is_file():  # given by --pretrained-dir, or not a stage of this recipe
            continue
        labels = run.work / "data-bin" / "label" / "dict.txt"
        n = sum(not line.startswith("madeupword") for line in labels.open()) if stage == "teacher" else None
        args = recipe_stage_args(stage, a, n, p=settings.PROFILES["debug"])
        assert config_drift(log, args) == {}, f"{name} {stage}: the recipe ran (right) other than the table (left)"
        checked.append(stage)
    assert checked == {"librispeech": ["speech_bert", "text_model", "pt_kd", "am_pt"], "fsc": ["teacher", "slu"],
                       "snips": ["speech_bert", "text_model", "pt_kd", "am_pt", "teacher", "slu"]}[name]


ROWS = ("baseline", "pt_kd", "ft_kd", "am_pt", "da")
RESULTS_LINE = re.compile(r"^results: (.+/results\.json)$")


@pytest.mark.slow
def test_fsc_recipe_ablation_grid(runs, tmp_path):
    """--ablation: the demo's Table-2 grid on a user's corpus (debug sizes): two teachers,
    five rows x {full, 10%} x seeds, the demo's results.json/.md/.png, and a rerun keeps
    every finished run.  Stages 0-7 are those of the FSC run above (--pretrained-dir: the
    same in both modes, and asserted there): its work dir is copied without what stages
    8-10 made, and the grid runs from stage 8."""
    fsc = runs["fsc"]
    assert fsc is not None, "the LibriSpeech recipe failed first"
    fsc.check()
    work = tmp_path / "work"
    shutil.copytree(fsc.work, work, ignore=shutil.ignore_patterns("checkpoints", "eval*", "results.json",
                                                                  "timings.tsv"))
    args = [recipe("fsc"), runs["fsc_corpus"], work, "--profile", "debug", "--allow-unseen-labels", "--nj", "1",
            "--pretrained-dir", runs["librispeech"].work, "--ablation", "--seeds-10pct", "2", "--seeds-full", "1",
            "--stage", "8"]
    run = Run("fsc --ablation", args, work, tmp_path / "ablation.log").wait(timeout=1800)
    run.check()
    assert RESULTS_LINE.match(run.lines[-1]) and run.lines[-1] == f"results: {work / 'results.json'}", run.lines[-5:]
    assert not any(ACCURACY_LINE.match(line) for line in run.lines)
    results = json.loads((work / "results.json").read_text())
    assert set(results) == {"full", "10pct"}
    per_voice = (work / "manifests" / "test.spk").is_file()
    for setting, seeds in (("full", 1), ("10pct", 2)):
        assert set(results[setting]) == set(ROWS), setting
        for row in ROWS:
            cell = results[setting][row]
            assert len(cell["runs"]) == seeds and cell["seeds"] == list(range(1, seeds + 1)), (setting, row)
            assert ("per_speaker" in cell) == per_voice, (setting, row)
    for row in ROWS[1:]:
        assert len(results["10pct"][row]["vs_previous"]["diffs"]) == 2, row
    for name in ("results.md", "results.png"):
        assert (work / name).is_file() and (work / name).stat().st_size > 0, name
    for teacher in ("teacher_train", "teacher_train10"):
        assert (work / "checkpoints" / teacher / "checkpoint_best.pt").is_file(), teacher
    assert not (work / "checkpoints" / "slu").exists()

    # the 10% cells take the profile's 10% batch (debug: 4), the full-data ones its batch (8)
    for setting, batch in (("train", 8), ("train10", 4)):
        for log in work.glob(f"runs/{setting}/*/seed*/train.log"):
            assert f"'batch_size': {batch}," in log.read_text(), log
    logs = sorted(work.glob("runs/*/*/seed*/train.log")) + sorted(work.glob("checkpoints/teacher_*/train.log"))
    assert len(logs) == 5 * (1 + 2) + 2
    before = {p: p.stat().st_mtime_ns for p in logs}
    again = Run("fsc --ablation rerun", args, work, tmp_path / "rerun.log").wait()
    again.check()
    assert sum("done before, kept" in line for line in again.lines) == len(logs), again.lines
    assert {p: p.stat().st_mtime_ns for p in logs} == before
    assert again.lines[-1] == run.lines[-1]
    assert json.loads((work / "results.json").read_text()) == results
