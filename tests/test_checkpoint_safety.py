"""Safe checkpoint loading: fairseq checkpoints (current and 2019-2020 formats) load with
torch's weights_only default once the plugin is imported; anything else pickled is refused."""
import argparse
import contextlib
import fractions
import os
import pickle
import re
import sys
import types

import pytest
import torch

import slu_kd_plugin

slu_kd_plugin.register()  # registers the allow-list
from fairseq import checkpoint_utils
from fairseq.data import Dictionary
from fairseq.logging import meters
from fairseq.models import build_model

from slu_kd_plugin.checkpoints import CheckpointError, load_state
from slu_kd_plugin.models.pretrained import DictionaryTask, load_roberta

TINY = dict(arch="roberta_base", encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
            encoder_attention_heads=2, max_positions=64, tokens_per_sample=64)


def training_checkpoint(tmp_path):
    """A checkpoint written by fairseq's own Trainer (what fairseq-train saves), for a
    tiny masked_lm RoBERTa, optimizer state and meters included."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    data = tmp_path / "data"
    data.mkdir()
    (data / "dict.txt").write_text("".join(f"{i}-{i + 1} 1\n" for i in range(20)))
    argv = [str(data), "--task", "masked_lm", "--criterion", "masked_lm", "--cpu", "--optimizer", "adam",
            "--lr", "1e-3", "--batch-size", "2"] + [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    trainer.optimizer.backward(sum(p.sum() for p in trainer.model.parameters()))
    trainer.optimizer.step()  # so the optimizer state holds moments
    trainer.consolidate_optimizer()  # as fairseq's save_checkpoint does first
    path = tmp_path / "checkpoint_last.pt"
    trainer.save_checkpoint(str(path), {"epoch": 1, "best": 3.5})
    return path


def save_legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


@contextlib.contextmanager
def pickled_as_old_fairseq_meters():
    """Pickle fairseq meters under their pre-0.10 module path ``fairseq.meters``."""
    alias = types.ModuleType("fairseq.meters")
    alias.AverageMeter = meters.AverageMeter
    sys.modules["fairseq.meters"] = alias
    meters.AverageMeter.__module__ = "fairseq.meters"
    try:
        yield
    finally:
        meters.AverageMeter.__module__ = "fairseq.logging.meters"
        del sys.modules["fairseq.meters"]


def legacy_state(model_weights, meter=None):
    args = argparse.Namespace(**TINY, task="masked_lm", criterion="masked_lm",
                              data="/checkpoint/someone/bert_kmeans/data-bin")  # no such dir, as bert_kmeans'
    return {"args": args, "model": model_weights,
            "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": 2.5}, "num_updates": 1000}],
            "extra_state": {"epoch": 3, "train_iterator": {"epoch": 3}, "train_meters": {"loss": meter}}}


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_fairseq_trainer_checkpoint_loads_safely(tmp_path):
    state = checkpoint_utils.load_checkpoint_to_cpu(str(training_checkpoint(tmp_path)))
    assert state["cfg"]["model"].arch == "roberta_base"
    assert state["extra_state"]["best"] == 3.5
    assert state["last_optimizer_state"]["state"], "no optimizer moments saved"


@pytest.mark.parametrize("legacy", [False, True])
def test_checkpoint_with_code_payload_is_refused(tmp_path, legacy):
    marker, path = tmp_path / "MARKER", tmp_path / "evil.pt"
    state = legacy_state({}, meters.AverageMeter())
    state["extra_state"]["payload"] = Payload(marker)
    (save_legacy if legacy else torch.save)(state, path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        checkpoint_utils.load_checkpoint_to_cpu(str(path))
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_state(str(path))
    assert not marker.exists()


def test_legacy_checkpoint_with_old_meter_module_loads(tmp_path):
    meter = meters.AverageMeter()
    meter.update(3.0, 2)
    path = tmp_path / "old.pt"
    with pickled_as_old_fairseq_meters():
        save_legacy(legacy_state({}, meter), path)
    assert b"fairseq.meters" in path.read_bytes()
    state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert state["extra_state"]["train_meters"]["loss"].avg == 3.0
    assert state["cfg"]["model"].arch == "roberta_base"


def unit_dict():
    d = Dictionary()
    for i in range(20):
        d.add_symbol(f"{i}-{i + 1}")
    d.add_symbol("<mask>")
    return d


def bert_kmeans_weights(model):
    """A 2019 RoBERTa state dict: ``decoder.*`` keys, fused q/k/v projections, fp16."""
    old = {"decoder." + k[len("encoder."):]: v.half() for k, v in model.state_dict().items()}
    for key in [k for k in old if ".self_attn.q_proj." in k]:
        base, kind = key.split(".q_proj.")
        old[f"{base}.in_proj_{kind}"] = torch.cat([old.pop(f"{base}.{p}_proj.{kind}") for p in "qkv"])
    return old


def test_bert_kmeans_style_checkpoint_gives_the_same_features(tmp_path):
    torch.manual_seed(0)
    d = unit_dict()
    original = build_model(argparse.Namespace(**TINY), DictionaryTask(d)).eval()
    path = tmp_path / "bert_kmeans.pt"
    with pickled_as_old_fairseq_meters():
        save_legacy(legacy_state(bert_kmeans_weights(original), meters.AverageMeter()), path)
    loaded, _ = load_roberta(str(path), d)
    tokens = torch.tensor([[0, 5, 6, 7, 8, 9, 2], [0, 12, 13, 2, 1, 1, 1]])
    with torch.no_grad():
        want, got = original(tokens, features_only=True)[0], loaded.eval()(tokens, features_only=True)[0]
    assert torch.allclose(got, want, atol=1e-2)


def test_dictionary_that_does_not_fit_the_checkpoint_names_the_file(tmp_path):
    d = unit_dict()
    path = tmp_path / "bert_kmeans.pt"
    model = build_model(argparse.Namespace(**TINY), DictionaryTask(d))
    save_legacy(legacy_state(bert_kmeans_weights(model)), path)
    d.add_symbol("extra")
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_roberta(str(path), d)


def test_truncated_checkpoint_names_the_file(tmp_path):
    good = training_checkpoint(tmp_path)
    path = tmp_path / "truncated.pt"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_state(str(path))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.pt"):
        load_state(str(tmp_path / "nothing.pt"))


@pytest.mark.slow
def test_every_stage_checkpoint_of_the_pipeline_loads(trained):
    from conftest import STAGE_ORDER

    for stage in STAGE_ORDER:
        for which in ("best", "last"):
            state = checkpoint_utils.load_checkpoint_to_cpu(str(trained.ckpt(stage, which)))
            assert state["model"], f"{stage} checkpoint_{which}.pt has no weights"


def not_checkpoints(tmp_path):
    """(file, what its error must say) for files a user may give as a checkpoint by mistake."""
    notes = tmp_path / "notes.txt"
    notes.write_text("remember to evaluate the da run\n")
    good = training_checkpoint(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}, "note": fractions.Fraction(1, 3)}, foreign)
    marker, evil = tmp_path / "MARKER", tmp_path / "evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"model": {}, "payload": Payload(marker)}, f, protocol=2)
    return marker, [
        (notes, "cannot load checkpoint: not a readable torch file"),
        (truncated, "cannot load checkpoint: not a readable torch file (a damaged zip archive"),
        (foreign, "cannot load checkpoint: refused by torch's safe loading: it pickles fractions.Fraction"),
        (evil, "cannot load checkpoint: refused by torch's safe loading: it pickles posix.system"),
    ]


def test_cli_says_in_one_line_what_a_non_checkpoint_is_not(tmp_path):
    """slu-kd-evaluate (the real console script) on a text file, a truncated .pt and
    pickles of disallowed globals: one error line naming the file, and never torch's
    advice to re-run with weights_only=False."""
    import subprocess

    from conftest import ENV, tool

    marker, cases = not_checkpoints(tmp_path)
    for path, says in cases:
        out = subprocess.run([tool("slu-kd-evaluate"), str(tmp_path / "data-bin"), "--path", str(path)],
                             capture_output=True, text=True, env=ENV, timeout=300)
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines == [lines[-1]] and lines[0].startswith(f"slu-kd-evaluate: error: {path}: {says}"), out.stderr
        assert "weights_only=False" not in out.stderr and "weights_only` set to `False" not in out.stderr
    assert not marker.exists()
