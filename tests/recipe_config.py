"""What fairseq-train was really given in a recipe run, against the settings table.

fairseq-train logs its whole config (one dict, per group) near the top of train.log;
``logged_config`` reads it back, ``table_config`` parses the table's arguments for the
same stage with fairseq's own parser, and ``config_drift`` names every option whose
value differs."""
import math
from pathlib import Path

from slu_kd_plugin.recipe import settings

# what stages.sh's train() gives every stage (device, paths and logging aside)
TRAIN_COMMON = ["--optimizer", "adam", "--no-epoch-checkpoints", "--log-format", "simple", "--log-interval", "50",
                "--num-workers", "0"]
PATHS = ("data", "save_dir", "tensorboard_logdir", "user_dir", "cpu")  # given by train() per run


class _Names(dict):
    def __missing__(self, name):  # Namespace(sample_break_mode=eos, ...): the choice's name
        return name


def logged_config(log):
    """{option: value} of the config fairseq-train logged in ``log`` (groups merged)."""
    marker = "{'_name': None, 'common': "
    with open(log, errors="replace") as f:
        line = next(line for line in f if marker in line)
    # a dict's repr; a legacy (argparse) model logs a Namespace, whose choice values show bare
    cfg = eval(line[line.index(marker):], {"__builtins__": {}}, _Names(Namespace=dict, inf=math.inf, nan=math.nan))
    flat = {}
    for group in cfg.values():
        if isinstance(group, dict):
            for key, value in group.items():
                flat.setdefault(key, value)
    return flat


def table_config(args, logged):
    """{option: value} fairseq parses from the table's ARGS, paths as the run had them."""
    from fairseq import options
    argv = [logged["data"], "--user-dir", logged["user_dir"], "--save-dir", logged["save_dir"],
            *TRAIN_COMMON, *(["--cpu"] if logged.get("cpu") else []), *[str(a) for a in args]]
    return vars(options.parse_args_and_arch(options.get_training_parser(), argv))


def config_drift(log, args):
    """{option: (table, logged)} for every option the two disagree on."""
    logged = logged_config(log)
    table = table_config(args, logged)
    return {k: (v, logged[k]) for k, v in table.items()
            if k in logged and k not in PATHS and k != "_name" and _plain(v) != _plain(logged[k])}


def _plain(value):
    """Tuples as the logged config writes them: lists."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def recipe_stage_args(stage, assets, num_classes=None, subset="train", p=None):
    """The table's arguments of a corpus recipe's stage, with the run's recorded assets."""
    a = assets
    if stage == "speech_bert":
        return settings.speech_bert(p, subset)
    if stage == "text_model":
        return settings.text_model(p, subset)
    if stage == "teacher":
        return settings.teacher(p, a["TEXT_MODEL"], a["TEXT_MODEL_ARCH"], num_classes, subset)
    if stage == "pt_kd":
        return settings.pt_kd(p, a["SPEECH_BERT"], a["TEXT_MODEL"], a["TEXT_MODEL_VECTOR"], a["UNITS_MAX_POS"], subset)
    if stage == "am_pt":
        return settings.am_pt(p, a["PT_KD"], a["UNITS_MAX_POS"], subset)
    if stage == "slu":
        teacher = str(Path(a["WORK"]) / "checkpoints" / "teacher" / "checkpoint_best.pt")
        # no pairs: the corpus recipes' FT-KD is on the SLU split only (kd_unlabeled off)
        return settings.fine_tuning(p, a["AM_DS2_ARCH"], a["PT_KD"], a["UNITS_MAX_POS"], subset,
                                    method=settings.full_method(p, teacher, a["AM_PT"], "", p.augment))
    raise KeyError(stage)
