"""Bad inputs (issue #5): each is refused with a message naming the file (and line or
field) at fault, or handled where a flag says so, and a refused run leaves nothing that
looks complete.  One test per item; items also covered elsewhere say where.

Everything is real and tiny: wavs written with soundfile, a quantizer fitted here, units
from slu-kd-featurize, a data-bin from slu-kd-binarize, and fairseq checkpoints saved by
fairseq's own Trainer (untrained: these tests need the files, not good weights).
"""
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import slu_kd_plugin

slu_kd_plugin.register()  # registers the plugin, allow-lists checkpoint types
from conftest import PLUGIN, error_message, run, tool
from slu_kd_plugin.cli import binarize, evaluate, featurize, fit_quantizer, package, predict, prepare
from slu_kd_plugin.checkpoints import CheckpointError
from test_quantize import fit_tiny_quantizer, make_corpus, synth_signals

SR = 16000
INTENTS = ["activate|lights|none", "decrease|heat|kitchen", "increase|volume|none"]
TEXTS = ["turn on the lights", "turn the heat down in the kitchen", "make it louder"]
TINY_BERT = ["--arch", "roberta_base", "--encoder-layers", "1", "--encoder-embed-dim", "16",
             "--encoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2"]
TINY_DS2 = ["--ds2-conv-channels", "2", "--ds2-lstm-layers", "1", "--ds2-lstm-hidden", "8"]
SLU = ["--task", "slu_finetuning", "--arch", "slu_ds2", "--criterion", "slu_cross_entropy",
       "--max-positions", "64", *TINY_DS2]


# ---------------------------------------------------------------- helpers
def write_wav(path, n, rate=SR, channels=1, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.random.default_rng(seed).uniform(-0.3, 0.3, (n, channels)).astype("float32")
    sf.write(str(path), data, rate)
    return path


def truncated_copy(src, dst):
    """The first half of ``src``: a copy or download cut short."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])
    return dst


def listing(d):
    """Every file under ``d`` (relative), so a test can say exactly what a run left."""
    d = str(d)
    return sorted(os.path.relpath(os.path.join(r, n), d) for r, _, names in os.walk(d) for n in names)


def fairseq_checkpoint(path, data, *args):
    """The checkpoint fairseq-train saves for ``DATA ARGS`` before its first update."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    argv = [str(data), "--cpu", "--optimizer", "adam", "--lr", "1e-3", *map(str, args)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    trainer = Trainer(cfg, task, model, task.build_criterion(cfg.criterion))
    trainer.consolidate_optimizer()  # what fairseq's save_checkpoint does first
    trainer.save_checkpoint(str(path), {"epoch": 1})
    return path


def build_slu(data, *args):
    """Build the SLU task and model as fairseq-train does (raising what it would raise)."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    argv = [str(data), *SLU, *map(str, args)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    return task, task.build_model(cfg.model)


def speech_bert(path, units_dir):
    return fairseq_checkpoint(path, units_dir, "--task", "masked_lm", "--criterion", "masked_lm",
                              *TINY_BERT, "--tokens-per-sample", "64")


def write_manifest_texts(root, split, n):
    """The .txt/.label/.ltr/.id files slu-kd-prepare writes beside {split}.tsv."""
    rows = [(TEXTS[i % 3], INTENTS[i % 3]) for i in range(n)]
    files = {"txt": [t for t, _ in rows], "label": [lab for _, lab in rows],
             "ltr": [" ".join("|" if c == " " else c for c in t.upper()) + " |" for t, _ in rows],
             "id": [f"u{i}" for i in range(n)]}
    for ext, lines in files.items():
        with open(os.path.join(root, f"{split}.{ext}"), "w") as f:
            f.write("".join(line + "\n" for line in lines))


def copy_manifests(src, dst):
    """A manifest dir (with units) to spoil without touching the shared one."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("wavs", "*.pt"))
    return dst


def binarize_args(manifests, dest, *extra):
    return [str(manifests), str(dest), "--splits", "train", "valid", "--spm-vocab-size", "30", *map(str, extra)]


@pytest.fixture
def keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # featurize and fit-quantizer set it process-wide


# ---------------------------------------------------------------- shared tiny pipeline
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Manifest dir: 7 wavs as train and valid, transcripts, intents, 12-unit k-means units."""
    root = str(tmp_path_factory.mktemp("manifests"))
    make_corpus(root)
    shutil.copy(os.path.join(root, "train.tsv"), os.path.join(root, "valid.tsv"))
    for split in ("train", "valid"):
        write_manifest_texts(root, split, 7)
    quantizer = os.path.join(root, "quantizer.pt")
    fit_tiny_quantizer(root, quantizer, k=12)
    threads = torch.get_num_threads()
    featurize.main([root, "--quantizer", quantizer, "--split", "train,valid", "--no-progress"])
    torch.set_num_threads(threads)  # the CLI sets it process-wide
    return root


@pytest.fixture(scope="module")
def data(corpus, tmp_path_factory):
    dest = tmp_path_factory.mktemp("data-bin") / "fsc"
    binarize.main(binarize_args(corpus, dest))
    return dest


@pytest.fixture(scope="module")
def ckpts(data, tmp_path_factory):
    """Checkpoints of each stage over ``data``: speech BERT, text teacher, SLU."""
    d = tmp_path_factory.mktemp("ckpts")
    bert = speech_bert(d / "speech_bert.pt", data / "units")
    teacher = fairseq_checkpoint(d / "teacher.pt", data, "--task", "sentence_prediction",
                                 "--criterion", "sentence_prediction", *TINY_BERT, "--max-positions", "64",
                                 "--num-classes", "3", "--init-token", "0", "--separator-token", "2")
    slu = fairseq_checkpoint(d / "slu.pt", data, *SLU, "--speech-bert-path", bert)
    return {"speech_bert": bert, "teacher": teacher, "slu": slu}


@pytest.fixture(scope="module")
def model_dir(corpus, data, ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "model"
    package.main([str(ckpts["slu"]), str(out), "--data", str(data),
                  "--quantizer", os.path.join(corpus, "quantizer.pt")])
    return out


def predict_lines(model_dir, paths, capsys):
    """(exit code, stdout lines, stderr error lines) of slu-kd-predict run on ``paths``."""
    with pytest.raises(SystemExit) as e:
        predict.main([str(model_dir), *map(str, paths)])
    out, err = capsys.readouterr()
    return e.value.code, out.splitlines(), [line for line in err.splitlines() if "error:" in line]


# ---------------------------------------------------------------- (1)-(4) audio
def bad_audio_corpus(root):
    """A manifest whose line 3 is ``bad.wav``, for the caller to break."""
    make_corpus(str(root), signals={"ok": synth_signals()["tone220"]}, extra=[("bad", synth_signals()["noise"])])
    return root / "wavs" / "bad.wav"


def assert_featurize_refuses(root, quantizer, message, tmp_path):
    out = tmp_path / "units"
    with pytest.raises(SystemExit, match=re.escape(f"slu-kd-featurize: error: {root / 'train.tsv'}:3: {message}")):
        featurize.main([str(root), "--quantizer", quantizer, "--split", "train", "--out", str(out), "--no-progress"])
    # what was done is kept under a name that is resumed, never read as the split's units
    assert not (out / "train.units").exists()
    assert set(listing(out)) <= {"dict.units.txt", "train.units.partial", "train.units.partial.json"}


def test_missing_or_unreadable_audio(corpus, model_dir, tmp_path, capsys, keep_torch_threads):
    """(1) Also: test_corpora.py::test_fsc_bad_audio_error_lists_every_file_and_writes_nothing
    (slu-kd-prepare), test_audio.py::test_bad_files_raise_audio_error_starting_with_path."""
    quantizer = os.path.join(corpus, "quantizer.pt")
    bad = bad_audio_corpus(tmp_path / "c")
    bad.unlink()
    assert_featurize_refuses(tmp_path / "c", quantizer, f"{bad}: file not found", tmp_path / "a")
    with pytest.raises(SystemExit, match=re.escape(f"{tmp_path / 'c' / 'train.tsv'}:3: {bad}: file not found")):
        fit_quantizer.main([str(tmp_path / "c"), "--n-clusters", "2", "--out", str(tmp_path / "q.pt"), "--no-progress"])
    assert not (tmp_path / "q.pt").exists() and not (tmp_path / "q.pt.tmp").exists()
    bad.write_bytes(b"RIFF, but not really a wav file" * 10)
    assert_featurize_refuses(tmp_path / "c", quantizer, f"{bad}: unreadable audio", tmp_path / "b")
    # slu-kd-predict names each bad file and still predicts the others
    good = tmp_path / "c" / "wavs" / "ok.wav"
    code, lines, errors = predict_lines(model_dir, [bad, good, tmp_path / "missing.wav"], capsys)
    assert code == 1 and len(lines) == 1 and str(good) in lines[0]
    assert errors[0].startswith(f"slu-kd-predict: error: {bad}: unreadable audio")
    assert errors[1] == f"slu-kd-predict: error: {tmp_path / 'missing.wav'}: file not found"


def test_zero_length_audio(corpus, model_dir, tmp_path, capsys, keep_torch_threads):
    """(2) Also: the empty file of test_corpora.py::test_fsc_bad_audio_error_lists_every_file_and_writes_nothing."""
    bad = bad_audio_corpus(tmp_path / "c")
    sf.write(str(bad), np.zeros((0, 1), "float32"), SR)
    assert_featurize_refuses(tmp_path / "c", os.path.join(corpus, "quantizer.pt"),
                             f"{bad}: empty audio (0 samples)", tmp_path)
    code, lines, errors = predict_lines(model_dir, [bad], capsys)
    assert code == 1 and lines == []
    assert errors == [f"slu-kd-predict: error: {bad}: empty audio (0 samples)"]


def test_audio_shorter_than_the_quantizer_receptive_field(corpus, model_dir, tmp_path, capsys, keep_torch_threads):
    """(3) Also: test_quantize.py::test_too_short_audio_names_file (both quantizer kinds),
    test_featurize.py::test_errors_name_file_and_manifest_line."""
    bad = bad_audio_corpus(tmp_path / "c")
    write_wav(bad, 399)  # the MFCC quantizer's 25 ms window is 400 samples
    message = f"{bad}: 399 samples (24.9 ms) is shorter than the mfcc_kmeans quantizer's minimum of 400 samples"
    assert_featurize_refuses(tmp_path / "c", os.path.join(corpus, "quantizer.pt"), message, tmp_path)
    code, lines, errors = predict_lines(model_dir, [bad], capsys)
    assert code == 1 and lines == [] and len(errors) == 1
    assert errors[0].startswith(f"slu-kd-predict: error: {message}")


def test_wrong_sample_rate_or_channels(model_dir, tmp_path, capsys):
    """(4) Resampled and downmixed by default, refused with --no-resample.  Also:
    test_audio.py::test_no_resample_refuses_other_rates, test_8k_stereo_is_averaged_and_resampled,
    test_corpora.py::test_no_resample_makes_8k_audio_bad."""
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    stereo_8k = write_wav(corpus / "a" / "8k.wav", 8000, rate=8000, channels=2)
    write_wav(corpus / "a" / "16k.wav", 16000)
    header = "path\ttranscript\tintent\tspeaker\n"
    for split, wav in (("train", "a/8k.wav"), ("valid", "a/16k.wav"), ("test", "a/16k.wav")):
        (corpus / f"{split}.tsv").write_text(header + f"{wav}\tturn on the lights\tactivate\ts_{split}\n")
    tsvs = [str(corpus / f"{s}.tsv") for s in ("train", "valid", "test")]
    assert prepare.main(["tsv", *tsvs, str(out), "--no-resample"]) == 1
    assert f"{stereo_8k}: sample rate 8000 Hz, expected 16000 Hz (resampling disabled)" in capsys.readouterr().err
    assert not out.exists()
    assert prepare.main(["tsv", *tsvs, str(out)]) == 0
    assert (out / "train.tsv").read_text().splitlines()[1] == "8k.wav\t16000"  # length after resampling
    predict.main([str(model_dir), str(stereo_8k)])  # exits only on failure
    assert f'{{"path": "{stereo_8k}", "intent": ' in capsys.readouterr().out


# ---------------------------------------------------------------- (5), (6) text inputs
def test_csv_missing_column_or_unknown_test_intent(corpus, tmp_path):
    """(5) slu-kd-prepare: test_corpora.py::test_fsc_missing_column_names_csv_and_column,
    test_fsc_unknown_test_intent_names_file_and_line, test_tsv_bad_rows_name_file_and_line,
    test_tsv_unknown_test_intent_and_missing_audio.  Here: the intent check of
    slu-kd-binarize, which runs before anything is written."""
    manifests, dest = copy_manifests(corpus, tmp_path / "m"), tmp_path / "data-bin"
    labels = (manifests / "valid.label").read_text().splitlines()
    labels[4] = "bring|shoes|none"
    (manifests / "valid.label").write_text("\n".join(labels) + "\n")
    with pytest.raises(SystemExit, match=re.escape(
            f"slu-kd-binarize: error: {manifests / 'valid.label'}:5: intent 'bring|shoes|none' does not "
            "occur in the training labels")):
        binarize.main(binarize_args(manifests, dest))
    label_dict = tmp_path / "labels.txt"  # a shared label dict (--label-dict) is checked the same way
    label_dict.write_text("".join(f"{label} 1\n" for label in INTENTS))
    with pytest.raises(SystemExit, match=re.escape(f"{manifests / 'valid.label'}:5: intent 'bring|shoes|none'")):
        binarize.main(binarize_args(manifests, dest, "--label-dict", label_dict))
    assert not dest.exists()


def test_units_file_with_tokens_not_in_the_dictionary(corpus, tmp_path, capsys):
    """(6) fairseq-preprocess would make such units <unk> without a word."""
    manifests, dest = copy_manifests(corpus, tmp_path / "m"), tmp_path / "data-bin"
    units = (manifests / "valid.units").read_text().splitlines()
    units[1] += " 12"  # a 13th unit: the 12-unit dictionary has 0..11
    (manifests / "valid.units").write_text("\n".join(units) + "\n")
    with pytest.raises(SystemExit, match=re.escape(
            f"slu-kd-binarize: error: {manifests / 'valid.units'}:2: unit '12' is not in "
            f"{manifests / 'dict.units.txt'} (12 units): the units were made with another quantizer")):
        binarize.main(binarize_args(manifests, dest))
    assert not dest.exists()
    # a vq-wav2vec dictionary cut to the units seen in training: unseen units become <unk>
    (manifests / "dict.units.txt").write_text("0-1 5\n0-2 3\n")
    for split in ("train", "valid"):
        (manifests / f"{split}.units").write_text("0-1 0-2\n" * 6 + "0-1 7-7 7-7 8-8\n")
    binarize.main(binarize_args(manifests, dest, "--streams", "units"))
    # tokens, not distinct units per line, and their share: what fairseq-preprocess made <unk>
    out = capsys.readouterr().out
    assert (f"{manifests / 'valid.units'}: 3 of 16 unit tokens (18.75%) become <unk>: 2 distinct "
            f"vq-wav2vec units not in {manifests / 'dict.units.txt'}") in out
    from fairseq.data import Dictionary, data_utils
    units_dict = Dictionary.load(str(dest / "units" / "dict.txt"))
    valid = data_utils.load_indexed_dataset(str(dest / "units" / "valid"), units_dict)
    assert sum(int((valid[i] == units_dict.unk()).sum()) for i in range(len(valid))) == 3
    assert listing(dest) == ["units/dict.txt", "units/train.bin", "units/train.idx",
                             "units/valid.bin", "units/valid.idx"]


# ---------------------------------------------------------------- (7)-(10) models
def test_teacher_label_dictionary_differs(data, ckpts, tmp_path):
    """(7) Also: test_labels.py (check_same_labels), test_stages.py::
    test_ft_kd_refuses_teacher_with_reordered_labels (fairseq-train, slow)."""
    teacher = tmp_path / "teacher" / "checkpoint_best.pt"
    teacher.parent.mkdir()
    shutil.copy(ckpts["teacher"], teacher)
    beside = teacher.parent / "label_dict.txt"  # where run.sh puts the teacher's label dict
    beside.write_text("".join(f"{label} 1\n" for label in INTENTS[::-1]))
    task, _ = build_slu(data, "--speech-bert-path", ckpts["speech_bert"], "--teacher-path", teacher)
    with pytest.raises(ValueError, match=re.escape(
            f"teacher labels ({teacher}; labels from {beside}) are ordered differently from the student's: "
            "class 0 is 'increase|volume|none' for the teacher but 'activate|lights|none' for the student")):
        task.load_dataset("train")  # FT-KD checks the teacher when it loads the training split
    # the run a user starts: fairseq-train, refused before it saves anything
    beside.write_text("".join(f"{label} 1\n" for label in INTENTS[:2] + ["bring|shoes|none"]))
    save_dir, log = tmp_path / "ft", tmp_path / "ft.log"
    rc = run([tool("fairseq-train"), data, "--user-dir", PLUGIN, "--cpu", *SLU, "--criterion", "slu_kd",
              "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "4", "--max-epoch", "1", "--num-workers", "0",
              "--speech-bert-path", ckpts["speech_bert"], "--teacher-path", teacher, "--save-dir", save_dir],
             log, check=False)
    assert rc != 0 and not list(save_dir.glob("*.pt")), listing(save_dir)
    assert (f"teacher labels ({teacher}; labels from {beside}) differ from the student's: only in student "
            "['increase|volume|none'], only in teacher ['bring|shoes|none']") in error_message(log)


def test_speech_bert_unit_dictionary_does_not_match_the_quantizer(corpus, data, ckpts, model_dir, tmp_path,
                                                                  capsys):
    """(8) A speech BERT trained on units of a 20-unit quantizer, given data of a 12-unit one:
    refused where the two first meet, fairseq-train's model build (PT-KD, AM-PT and SLU all
    load it the same way), naming both files and both sizes; slu-kd-package, which bundles
    quantizer + data dictionaries + model, refuses any pair that does not belong together."""
    other = tmp_path / "other_units"
    other.mkdir()
    (other / "dict.txt").write_text("".join(f"{i} 1\n" for i in range(20)))
    bert20 = speech_bert(tmp_path / "bert20.pt", other)
    save_dir = tmp_path / "am"
    rc = run([tool("fairseq-train"), data, "--user-dir", PLUGIN, "--cpu", "--task", "ctc_pretraining",
              "--arch", "ds2_ctc", "--criterion", "ctc", *TINY_DS2, "--max-positions", "64", "--optimizer", "adam",
              "--lr", "1e-3", "--batch-size", "4", "--max-epoch", "1", "--num-workers", "0",
              "--speech-bert-path", bert20, "--save-dir", save_dir], tmp_path / "am.log", check=False)
    message = error_message(tmp_path / "am.log")
    assert rc != 0 and not list(save_dir.glob("*.pt")), listing(save_dir)
    assert (f"{bert20} (speech BERT / text model checkpoint, task masked_lm): 25 token embeddings "
            f"(20 symbols + 5 special), but {data / 'units' / 'dict.txt'} has 17 (12 symbols + 5 special)") in message

    # slu-kd-package: each pair of quantizer, data dictionary and model is checked
    quantizer20 = tmp_path / "q20.pt"
    fit_tiny_quantizer(corpus, str(quantizer20), k=20)
    other_data = tmp_path / "other-data-bin"
    shutil.copytree(data / "label", other_data / "label")
    shutil.copytree(other, other_data / "units")
    for ckpt, data_bin, quantizer, message in [
        (ckpts["slu"], data, quantizer20,
         f"{quantizer20}: the mfcc_kmeans quantizer has 20 units and {data / 'units' / 'dict.txt'} has 12; "
         "8 do not match (e.g. '12' only in the quantizer): the units were made with another quantizer"),
        (ckpts["slu"], other_data, os.path.join(corpus, "quantizer.pt"),
         f"{ckpts['slu']}: 17 token embeddings (12 symbols + 5 special), but "
         f"{other_data / 'units' / 'dict.txt'} has 25 (20 symbols + 5 special)"),
    ]:
        out = tmp_path / "model"
        with pytest.raises(SystemExit):
            package.main([str(ckpt), str(out), "--data", str(data_bin), "--quantizer", str(quantizer)])
        assert message in capsys.readouterr().err
        assert not out.exists() and not [n for n in os.listdir(tmp_path) if n.startswith(".model")]
    # a model dir whose quantizer.pt was swapped: refused on loading, not predicted from
    swapped = tmp_path / "swapped"
    shutil.copytree(model_dir, swapped)
    shutil.copy(quantizer20, swapped / "quantizer.pt")
    with pytest.raises(SystemExit) as e:
        predict.main([str(swapped), os.path.join(corpus, "wavs", "tone220.wav")])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == ""
    assert f"{swapped / 'quantizer.pt'}: the mfcc_kmeans quantizer has 20 units and {swapped / 'units' / 'dict.txt'}" in err


def test_checkpoint_of_another_stage(corpus, data, ckpts, capsys):
    """(9) Each checkpoint option given another stage's checkpoint: the error names the
    file and what it is.  Also (fairseq-train, slow): test_stages.py::
    test_wrong_kind_of_checkpoint_is_named, test_predict.py::
    test_package_refuses_an_existing_dir_and_a_non_slu_checkpoint."""
    bert, teacher, slu = ckpts["speech_bert"], ckpts["teacher"], ckpts["slu"]
    with pytest.raises(CheckpointError, match=re.escape(
            f"{teacher} (text teacher checkpoint, task sentence_prediction): ")):
        build_slu(data, "--speech-bert-path", teacher)
    with pytest.raises(CheckpointError, match=re.escape(
            f"{bert}: --am-path expects an AM-PT (ds2_ctc) checkpoint, got 'roberta_base'")):
        build_slu(data, "--speech-bert-path", bert, "--am-path", bert)
    # an SLU checkpoint as the teacher (its labels are the data's, so only the kind is wrong)
    task, _ = build_slu(data, "--speech-bert-path", bert, "--teacher-path", slu, "--criterion", "slu_kd")
    with pytest.raises(CheckpointError, match=re.escape(
            f"{slu} (SLU checkpoint, task slu_finetuning): --teacher-path expects a text teacher")):
        task.load_dataset("train")
    for main, argv in [(evaluate.main, [str(data), "--path", str(teacher)]),
                       (package.main, [str(teacher), str(data.parent / "model"), "--data", str(data),
                                       "--quantizer", os.path.join(corpus, "quantizer.pt")])]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err + str(e.value.code)
        assert (f"{teacher} (text teacher checkpoint, task sentence_prediction): expected an SLU (slu_ds2) "
                "checkpoint with a cfg, got model 'roberta_base'") in err
    assert not (data.parent / "model").exists()


def test_checkpoint_of_another_stage_as_teacher(data, ckpts):
    """(9) A speech BERT given as --teacher-path: refused as what it is, before any
    label dictionary is looked for under its data dir."""
    bert = ckpts["speech_bert"]
    task, _ = build_slu(data, "--speech-bert-path", bert, "--teacher-path", bert, "--criterion", "slu_kd")
    with pytest.raises(CheckpointError, match=re.escape(f"{bert} (speech BERT / text model checkpoint")):
        task.load_dataset("train")


def test_truncated_checkpoint(corpus, data, ckpts, model_dir, tmp_path, capsys, keep_torch_threads):
    """(10) Also: test_checkpoint_safety.py::test_truncated_checkpoint_names_the_file (load_state)."""
    bert = truncated_copy(ckpts["speech_bert"], tmp_path / "bert.pt")
    with pytest.raises(CheckpointError, match=re.escape(f"{bert}: cannot load checkpoint")):
        build_slu(data, "--speech-bert-path", bert)
    slu = truncated_copy(ckpts["slu"], tmp_path / "slu.pt")
    with pytest.raises(SystemExit):
        package.main([str(slu), str(tmp_path / "model"), "--data", str(data),
                      "--quantizer", os.path.join(corpus, "quantizer.pt")])
    assert f"slu-kd-package: error: {slu}: cannot load checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()
    quantizer = truncated_copy(os.path.join(corpus, "quantizer.pt"), tmp_path / "q.pt")
    says = f"slu-kd-featurize: error: {quantizer}: cannot load quantizer: not a readable torch file"
    with pytest.raises(SystemExit, match=re.escape(says)):
        featurize.main([corpus, "--quantizer", str(quantizer), "--split", "train", "--out", str(tmp_path / "u")])
    assert not (tmp_path / "u").exists()
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    truncated_copy(model_dir / "model.pt", broken / "model.pt")
    with pytest.raises(SystemExit) as e:
        predict.main([str(broken), os.path.join(corpus, "wavs", "tone220.wav")])
    assert e.value.code == 2
    assert f"slu-kd-predict: error: {broken / 'model.pt'}: cannot load checkpoint" in capsys.readouterr().err
