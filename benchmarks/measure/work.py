"""The inputs the benchmark reads from a finished demo work dir (read only)."""
import argparse
from dataclasses import dataclass
from pathlib import Path

from . import BenchmarkError


@dataclass
class Work:
    """The inputs the benchmark reads from a finished demo work dir."""

    root: Path
    teacher_override: Path = None

    @property
    def fsc(self):
        return self.root / "data-bin" / "fsc"

    @property
    def paired(self):
        return self.root / "data-bin" / "paired"

    @property
    def bert_units(self):
        # the demo pretrains the speech BERT on data-bin/bert (paired + command audio);
        # the recipes and the test pipeline on the paired corpus' units
        bert = self.root / "data-bin" / "bert" / "units"
        return bert if bert.is_dir() else self.paired / "units"

    @property
    def manifests(self):
        return self.root / "manifests" / "fsc"

    @property
    def quantizer(self):
        return self.root / "quantizer.pt"

    def ckpt(self, stage):
        if stage == "teacher":
            if self.teacher_override:
                return self.teacher_override
            # the demo has one teacher per training subset, the recipes one "teacher"
            for name in ("teacher_train", "teacher"):
                if (self.root / "checkpoints" / name / "checkpoint_best.pt").is_file():
                    return self.root / "checkpoints" / name / "checkpoint_best.pt"
            return self.root / "checkpoints" / "teacher_train" / "checkpoint_best.pt"
        return self.root / "checkpoints" / stage / "checkpoint_best.pt"

    def missing(self):
        needed = [self.fsc / "units", self.fsc / "input0", self.fsc / "label", self.paired / "units",
                  self.paired / "input0", self.paired / "ltr", self.manifests / "test.tsv", self.quantizer]
        needed += [self.ckpt(s) for s in ("speech_bert", "text_model", "teacher", "pt_kd", "am_pt")]
        return [p for p in needed if not p.exists()]

    def check(self):
        missing = self.missing()
        if missing:
            listed = "\n  ".join(str(p) for p in missing)
            raise BenchmarkError(
                f"{self.root} is not a finished demo work dir; missing:\n  {listed}\n"
                f"make one with:  examples/synthetic/run.sh {self.root} --stop-stage 8")


def work_of(args):
    return Work(Path(args.work).resolve(), Path(args.teacher).resolve() if args.teacher else None)


def recorded_cfg(path):
    """{section: dict} of the config a fairseq checkpoint was trained with."""
    import torch

    import slu_kd_plugin

    slu_kd_plugin.register()  # allow-lists the types fairseq checkpoints pickle
    try:  # mmap: only the config is needed, not gigabytes of weights
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    cfg = state.get("cfg") or {}
    sections = {}
    for name in ("model", "task", "dataset", "optimization", "criterion"):
        value = cfg.get(name) or {}
        sections[name] = dict(vars(value) if isinstance(value, argparse.Namespace) else value)
    return sections
