"""What a user with the published checkpoints (vq-wav2vec_kmeans.pt, bert_kmeans,
roberta.base) hits before any long work: every given asset is resolved and checked at
the start of a recipe, the text teacher takes the text model's own sizes, and GPT-2 BPE
lower-casing is an option.  Small checkpoints in the published formats: tests/published.py."""
import subprocess
import sys

import pytest

from conftest import ENV, REPO
from published import make_bert_kmeans, make_legacy_vq_wav2vec, make_text_model

TEXTS = ["Turn on the lights in the kitchen", "Switch off the music", "Bring me the newspaper",
         "Increase the volume please", "Change the language to German", "turn the heat up in the bedroom"]


def recipe(name, *args):
    return subprocess.run(["bash", str(REPO / "examples" / name / "run.sh"), *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=300)


def check_assets(*args):
    return subprocess.run([sys.executable, "-m", "slu_kd_plugin.cli.check_assets", *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=300)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """roberta.base (its GPT-2 files elsewhere, as fairseq serves them), vq-wav2vec, bert_kmeans."""
    root = tmp_path_factory.mktemp("published")
    text = make_text_model(root / "roberta.base", TEXTS, gpt2_dir=root / "gpt2_bpe", encoder_layers=3,
                           encoder_embed_dim=48, encoder_ffn_embed_dim=96, encoder_attention_heads=3)
    vq = root / "vq-wav2vec_kmeans.pt"
    make_legacy_vq_wav2vec(vq)
    from slu_kd_plugin.quantize import load_quantizer

    symbols = load_quantizer(str(vq)).symbols()[:41]
    bert = make_bert_kmeans(root / "bert_kmeans", symbols)
    return {"root": root, "text": text, "vq": vq, "bert": bert}


def test_missing_gpt2_files_stop_the_recipe_before_any_work(published, tmp_path):
    """The default looks beside model.pt, where roberta.base's archive has no GPT-2 files."""
    (tmp_path / "LibriSpeech").mkdir()
    res = recipe("librispeech", tmp_path / "LibriSpeech", tmp_path / "work", "--text-model",
                 published["root"] / "roberta.base", "--profile", "debug")
    assert res.returncode == 2, res.stderr
    assert f"{published['root'] / 'roberta.base' / 'encoder.json'}: GPT-2 BPE file not found" in res.stderr
    assert "https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe/" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "work" / "manifests").exists()


def test_bert_kmeans_dict_with_padding_passes_and_a_foreign_one_is_refused(published, tmp_path):
    assert "madeupword0000 0" in (published["root"] / "bert_kmeans" / "dict.txt").read_text()
    text_model, encoder_json, vocab_bpe = published["text"]
    gpt2 = ["--gpt2-encoder-json", encoder_json, "--gpt2-vocab-bpe", vocab_bpe]
    ok = check_assets("--vq-wav2vec", published["vq"], "--speech-bert", published["bert"],
                      "--text-model", text_model, *gpt2)
    assert ok.returncode == 0, ok.stderr
    # a unit dictionary of another quantizer: named at the start, with the text model's problem too
    other = tmp_path / "bert_other"
    other.mkdir()
    (other / "model.pt").symlink_to(published["bert"])
    lines = (published["root"] / "bert_kmeans" / "dict.txt").read_text().splitlines()
    (other / "dict.txt").write_text("\n".join(["100-3 9"] + lines[1:]) + "\n")
    bad_json = tmp_path / "encoder.json"
    bad_json.write_text("not json")
    res = check_assets("--vq-wav2vec", published["vq"], "--speech-bert", other / "model.pt",
                       "--text-model", text_model, "--gpt2-encoder-json", bad_json, "--gpt2-vocab-bpe", vocab_bpe)
    assert res.returncode == 2
    assert f"{other / 'dict.txt'} has 41; 1 do not match (e.g. '100-3' only in the dictionary)" in res.stderr
    assert f"{bad_json}: not a GPT-2 encoder.json" in res.stderr


def test_text_teacher_takes_the_text_model_sizes(published, tmp_path):
    """Not roberta_base's 12 x 768: the recipe records the checkpoint's own sizes."""
    text_model, encoder_json, vocab_bpe = published["text"]
    (tmp_path / "LibriSpeech").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "assets.env").write_text("TEXT_ENCODER=gpt2\n")  # as stage 3 records it
    res = recipe("librispeech", tmp_path / "LibriSpeech", work, "--stage", "5", "--stop-stage", "5",
                 "--text-model", text_model, "--gpt2-encoder-json", encoder_json, "--gpt2-vocab-bpe", vocab_bpe)
    assert res.returncode == 0, res.stderr
    assert ("TEXT_MODEL_ARCH=--encoder-layers\\ 3\\ --encoder-embed-dim\\ 48\\ --encoder-ffn-embed-dim\\ 96"
            "\\ --encoder-attention-heads\\ 3\\ --max-positions\\ 128") in (work / "assets.env").read_text()


def test_gpt2_lower_casing_is_an_option(published, tmp_path):
    from slu_kd_plugin.cli import binarize

    text_model, encoder_json, vocab_bpe = published["text"]
    m = tmp_path / "m"
    m.mkdir()
    (m / "train.txt").write_text("Turn ON the Lights\n")
    ids = {}
    for case in ("lower", "keep"):
        dest = tmp_path / case
        binarize.main([str(m), str(dest), "--splits", "train", "--streams", "input0", "--text-encoder", "gpt2",
                       "--gpt2-encoder-json", str(encoder_json), "--gpt2-vocab-bpe", str(vocab_bpe),
                       "--text-dict", str(text_model.parent / "dict.txt"), "--text-case", case])
        from fairseq.data import Dictionary, data_utils

        d = Dictionary.load(str(dest / "input0" / "dict.txt"))
        ids[case] = d.string(data_utils.load_indexed_dataset(str(dest / "input0" / "train"), d)[0])
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    bpe = get_encoder(str(encoder_json), str(vocab_bpe))
    assert ids["lower"] == " ".join(map(str, bpe.encode("turn on the lights")))
    assert ids["keep"] == " ".join(map(str, bpe.encode("Turn ON the Lights")))


def test_pretrained_dir_whose_files_are_gone_is_refused_at_the_start(tmp_path):
    (tmp_path / "fsc" / "data").mkdir(parents=True)
    (tmp_path / "fsc" / "data" / "train_data.csv").write_text("path,speakerId,transcription,action,object,location\n")
    pre = tmp_path / "ls"
    pre.mkdir()
    (pre / "assets.env").write_text(f"QUANTIZER={tmp_path / 'gone.pt'}\nTEXT_ENCODER=gpt2\n")
    res = recipe("fsc", tmp_path / "fsc", tmp_path / "work", "--pretrained-dir", pre)
    assert res.returncode == 2
    assert f"QUANTIZER is '{tmp_path / 'gone.pt'}': no such file" in res.stderr
    assert "records no GPT2_ENCODER_JSON" in res.stderr and not (tmp_path / "work" / "manifests").exists()
