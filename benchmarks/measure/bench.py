"""Bench: what every section of benchmarks/run.py uses (subprocess calls, the training
runs and their flags, manifest subsets)."""
import os
from pathlib import Path

from . import PLUGIN
from .process import run_timed, tool
from .stages import StageFlags
from .training import train_result
from .work import work_of


class Bench(StageFlags):
    """The state one benchmark run shares between its sections: the scratch dir, the
    environment and record of every subprocess, and the FT-KD run the ratios and the
    inference section reuse."""

    def __init__(self, args):
        super().__init__(args, work_of(args))
        self.scratch = Path(args.scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                        PYTHONUNBUFFERED="1")  # unbuffered: lines are timed as they are written
        self.runs = []
        self.ft_checkpoint = None
        self.results = {}

    def call(self, name, argv):
        log = self.scratch / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"  {name} ...", end="", flush=True)
        run = run_timed(name, argv, log, self.env)
        print(f" {run.wall_s:.1f} s", flush=True)
        self.runs.append(run)
        return run

    def manifest_subset(self, split, n, out_dir):
        """The first ``n`` utterances of manifests/fsc/{split}.tsv as out_dir/bench.tsv."""
        with open(self.work.manifests / f"{split}.tsv", encoding="utf-8") as f:
            lines = f.read().splitlines()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.tsv").write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
        return out_dir

    def common_flags(self, save_dir, save=False):
        out = ["--user-dir", PLUGIN, "--num-workers", "0", "--optimizer", "adam",
               "--log-format", "json", "--log-interval", "50", "--seed", "1",
               "--max-epoch", self.args.epochs, "--disable-validation", "--required-batch-size-multiple", "1",
               "--save-dir", save_dir, "--no-epoch-checkpoints"]
        # a checkpoint only where one is used (FT-KD, for the inference section); the
        # other FT-KD runs save alike so the ratios compare like with like
        out += ["--save-interval", self.args.epochs] if save else ["--no-save"]
        return out + (["--cpu"] if self.args.device == "cpu" else [])

    def train(self, stage, variant="default", stage_flags=None, data=None):
        if stage_flags is None:
            data, stage_flags = self.stage_args(stage)
        name = f"train_{stage}" + ("" if variant == "default" else f"_{variant}")
        save_dir = self.scratch / "checkpoints" / name
        # the benchmark's flags last: they override the stage's (epochs, validation, saving)
        run = self.call(name, [tool("fairseq-train"), data, *stage_flags,
                               *self.common_flags(save_dir, save=stage == "ft_kd")])
        if stage == "ft_kd" and variant == "default":
            self.ft_checkpoint = save_dir / "checkpoint_last.pt"
        return train_result(run, stage, variant, stage_flags)

    def ft_base(self):
        """The FT-KD stage run, also the baseline of every ratio (run once)."""
        if "ft_base" not in self.results:
            self.results["ft_base"] = self.train("ft_kd")
        return self.results["ft_base"]
