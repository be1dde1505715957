"""The settings table as yaml for fairseq-hydra-train (slu_kd_plugin/config/STAGE.yaml).

Each file is one stage of a profile (the paper's, by default) as the recipes run it:
the stage's fairseq-train arguments are parsed by fairseq itself and every value that
differs from fairseq's default is written under its config group; paths are ``???``
(required on the command line).  ``tests/test_settings.py`` checks that the committed
files are this rendering.
"""
import os
from argparse import Namespace

from . import settings as S

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config")
MISSING = "???"
NUM_CLASSES = 999_999  # stands for the corpus' label count (task.num_classes: ???)
NAMED = ("task", "model", "criterion", "optimizer", "lr_scheduler")  # groups chosen by name
DERIVED = ("batch_size_valid",)  # fairseq fills it in from batch_size
# what train() in examples/common/stages.sh gives every stage (device and paths aside)
COMMON = ["--optimizer", "adam", "--no-epoch-checkpoints", "--log-format", "simple", "--log-interval", "50",
          "--num-workers", "0"]
HEADERS = {
    "teacher": "Text teacher: fairseq's own sentence_prediction on the SLU transcripts (DATA/input0 +\n"
               "DATA/label), from a pretrained RoBERTa (checkpoint.restore_file: roberta.base/model.pt).\n"
               "Copy DATA/label/dict.txt to SAVE_DIR/label_dict.txt so FT-KD can check the label order.",
    "pt_kd": "PT-KD: continue pretraining the speech BERT (masked LM on span-masked units) while\n"
             "matching its <s> vector to a frozen text RoBERTa's (task.data: units/ + input0/ of a\n"
             "paired corpus).",
    "am_pt": "AM-PT: DeepSpeech2 block over the frozen (PT-KD) speech BERT, CTC on characters\n"
             "(task.data: units/ + ltr/).  The paper used SGD (Nesterov 0.9, wd 1e-5, lr / 1.05 per\n"
             "epoch); the recipes use Adam, as here.",
    "ft_kd": "SLU fine-tuning with FT-KD, AM-PT initialization and data augmentation (the paper's\n"
             "full system).  The DS2 sizes must equal those of the AM-PT run (am_pt.yaml).",
}


def stage_args(p, stage):
    """(data, arguments) of STAGE in profile P, paths as MISSING."""
    m = MISSING
    if stage == "teacher":
        return m, S.teacher(p, m, p.text.flags(), NUM_CLASSES, "train")
    if stage == "pt_kd":
        return m, S.pt_kd(p, m, m, p.text_vector, p.bert.max_positions, "train")
    if stage == "am_pt":
        return m, S.am_pt(p, m, p.bert.max_positions, "train")
    if stage == "ft_kd":
        return m, S.fine_tuning(p, p.ds2.flags(), m, p.bert.max_positions, "train",
                                method=S.full_method(p, m, m, m, p.augment))
    raise KeyError(f"no yaml for stage '{stage}' ({', '.join(HEADERS)})")


def _parse(argv):
    from fairseq import options

    from .. import register

    register()  # --user-dir registers nothing when the plugin was imported before fairseq
    return options.parse_args_and_arch(options.get_training_parser(), argv)


def _groups(ns):
    """{group: {key: value}} of a parsed Namespace, as fairseq's hydra config groups it."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf
    cfg = convert_namespace_to_omegaconf(ns)
    out = {name: OmegaConf.to_container(cfg[name]) for name in cfg if OmegaConf.is_config(cfg[name])}
    others = {k for g in out.values() for k in g}
    for name in cfg:  # a legacy (argparse) model: the options no config group has
        if isinstance(cfg[name], Namespace):
            out[name] = {"_name": ns.arch} | {k: v for k, v in vars(cfg[name]).items() if k not in others}
    return out


def config(p, stage):
    """{group: {key: value}}: what STAGE sets beyond fairseq's defaults."""
    data, args = stage_args(p, stage)
    user_dir = os.path.dirname(CONFIG_DIR)
    given = _groups(_parse([data, "--user-dir", user_dir, *COMMON, *args]))
    names = {k: args[args.index(k) + 1] for k in ("--task", "--arch", "--criterion")}
    default = _groups(_parse([data, "--user-dir", user_dir, "--optimizer", "adam",
                              *[a for kv in names.items() for a in kv]]))
    out, lr = {}, given["optimization"]["lr"]
    for group, values in given.items():
        base = default.get(group, {})
        diff = {k: v for k, v in values.items() if k not in ("_name", *DERIVED) and (k not in base or base[k] != v or v == MISSING)
                and not (k == "lr" and group != "optimization" and v == lr)}  # copies of optimization.lr
        if diff or (values.get("_name") and group in NAMED):
            out[group] = ({"_name": values["_name"]} if values.get("_name") else {}) | diff
    out.setdefault("common", {})["user_dir"] = MISSING
    if stage == "teacher":
        out["task"]["num_classes"] = MISSING
    out["task"]["data"] = MISSING
    out.get("model", {}).pop("data", None)
    return out


def _yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def render(p, stage):
    lines = ["# @package _group_"]
    lines += [f"# {line}" for line in HEADERS[stage].split("\n")]
    lines += [f"# Rendered from slu_kd_plugin/recipe/settings.py (profile {p.name}); edit the table, then",
              f"#   python -m slu_kd_plugin.cli.profile {p.name} --write-yaml",
              f"#   fairseq-hydra-train --config-dir slu_kd_plugin/config --config-name {stage} \\",
              "#     common.user_dir=$PWD/slu_kd_plugin task.data=DATA ... (every ??? value)"]
    for group, values in config(p, stage).items():
        lines.append(f"{group}:")
        lines += [f"  {k}: {_yaml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_all(p):
    from ..utils import atomic_write
    paths = []
    for stage in HEADERS:
        path = os.path.join(CONFIG_DIR, f"{stage}.yaml")
        with atomic_write(path) as f:
            f.write(render(p, stage))
        paths.append(path)
    return paths
