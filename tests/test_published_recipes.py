"""The whole path of a user with the published checkpoints, on small ones in the same
formats (tests/published.py): examples/librispeech/run.sh with --vq-wav2vec,
--speech-bert and --text-model (GPT-2 files given apart, as fairseq serves them), then
examples/fsc/run.sh --pretrained-dir, then slu-kd-package, slu-kd-predict, slu-kd-export
and fairseq-validate of the packaged model.  Dictionaries are fairseq-preprocess' own,
padding entries included; the text model is not roberta_base-sized."""
import json
import subprocess
import time

import pytest

from conftest import ENV, PLUGIN, REPO, tool
from published import make_bert_kmeans, make_legacy_vq_wav2vec, make_text_model
from test_published_formats import TEXTS
from test_recipes import ACCURACY_LINE

pytestmark = pytest.mark.slow


def sh(args, log, timeout=900):
    t0 = time.time()
    with open(log, "w") as f:
        code = subprocess.run([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT, env=ENV,
                              cwd=str(REPO), timeout=timeout).returncode
    lines = [line for line in open(log, errors="replace").read().splitlines() if line.strip()]
    assert code == 0, f"{args[0]} exited {code}; end of {log}:\n" + "\n".join(lines[-30:])
    return lines, time.time() - t0


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    r = tmp_path_factory.mktemp("published_walk")
    synth = [subprocess.Popen([tool("slu-kd-synth"), *map(str, a), "--jobs", "1", "--quiet"], env=ENV)
             for a in (["librispeech", r / "LibriSpeech", "--utterances", "30", "--seed", "2"],
                       ["fsc", r / "fsc", "--speakers", "4", "--utts-per-speaker", "8", "--valid-speakers", "1",
                        "--test-speakers", "1", "--seed", "1"])]
    vq = r / "published" / "vq-wav2vec_kmeans.pt"
    vq.parent.mkdir()
    make_legacy_vq_wav2vec(vq, seed=3)
    from slu_kd_plugin.quantize import load_quantizer

    make_bert_kmeans(r / "published" / "bert_kmeans", load_quantizer(str(vq)).symbols()[:50], seed=1,
                     encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2)
    text, encoder_json, vocab_bpe = make_text_model(
        r / "published" / "roberta.base", TEXTS, gpt2_dir=r / "published" / "gpt2_bpe", seed=2,
        encoder_layers=3, encoder_embed_dim=48, encoder_ffn_embed_dim=96, encoder_attention_heads=3)
    for p in synth:
        assert p.wait(timeout=300) == 0
    times, out = {}, {"root": r}
    out["ls"], times["librispeech"] = sh(
        [REPO / "examples/librispeech/run.sh", r / "LibriSpeech", r / "work_ls", "--profile", "debug",
         "--vq-wav2vec", vq, "--speech-bert", r / "published" / "bert_kmeans", "--text-model", text.parent,
         "--gpt2-encoder-json", encoder_json, "--gpt2-vocab-bpe", vocab_bpe], r / "ls.log")
    out["fsc"], times["fsc"] = sh([REPO / "examples/fsc/run.sh", r / "fsc", r / "work_fsc", "--profile", "debug",
                                   "--pretrained-dir", r / "work_ls", "--allow-unseen-labels"], r / "fsc.log")
    fsc = r / "work_fsc"
    out["package"], times["package"] = sh(
        [tool("slu-kd-package"), fsc / "checkpoints/slu/checkpoint_best.pt", r / "model", "--data", fsc / "data-bin",
         "--quantizer", vq, "--manifest-dir", fsc / "manifests"], r / "package.log")
    wav = open(fsc / "manifests" / "test.tsv").read().splitlines()
    out["wav"] = f"{wav[0]}/{wav[1].split(chr(9))[0]}"
    out["predict"], times["predict"] = sh([tool("slu-kd-predict"), r / "model", out["wav"]], r / "predict.log")
    out["export"], times["export"] = sh([tool("slu-kd-export"), r / "model", r / "model.ts.pt"], r / "export.log")
    out["validate"], times["validate"] = sh(
        [tool("fairseq-validate"), fsc / "data-bin", "--user-dir", PLUGIN, "--task", "slu_finetuning", "--cpu",
         "--path", r / "model" / "model.pt", "--valid-subset", "test", "--batch-size", "8"], r / "validate.log")
    print("\npublished-format walk, wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return out


def test_librispeech_recipe_uses_the_given_checkpoints(walk):
    r = walk["root"]
    assets = (r / "work_ls" / "assets.env").read_text()
    assert "QUANTIZER_KIND=vq-wav2vec" in assets and "TEXT_ENCODER=gpt2" in assets
    assert "TEXT_MODEL_ARCH=--encoder-layers\\ 3\\ --encoder-embed-dim\\ 48" in assets
    assert (r / "work_ls" / "data-bin" / "units" / "dict.txt").read_text() == \
        (r / "published" / "bert_kmeans" / "dict.txt").read_text()  # madeupword padding and all
    assert any("become <unk>" in line and "unit tokens" in line for line in walk["ls"])


def test_fsc_recipe_trains_a_teacher_at_the_text_model_size(walk):
    assert ACCURACY_LINE.match(walk["fsc"][-1]), walk["fsc"][-5:]
    log = (walk["root"] / "work_fsc" / "checkpoints" / "teacher" / "train.log").read_text()
    assert "'encoder_layers': 3" in log or "encoder_layers=3" in log


def test_packaged_model_predicts_exports_and_validates(walk):
    r = walk["root"]
    assert "total:" in walk["package"][-1]
    prediction = json.loads(walk["predict"][-1])
    assert set(prediction) >= {"intent", "probability"}
    assert (r / "model.ts.pt").is_file()
    assert any("| test |" in line and "accuracy" in line for line in walk["validate"]), walk["validate"][-5:]
