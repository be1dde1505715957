"""The fairseq-train arguments of each benchmarked stage: the settings table's
(slu_kd_plugin/recipe/settings.py), with the profile the work dir's checkpoints were
trained with and the benchmark's paths.  Bench's own flags (epochs, no validation,
saving, batch multiple) are given after these, so they win (fairseq: last value wins)."""
from slu_kd_plugin.recipe import settings

from . import BenchmarkError
from .work import recorded_cfg

# the profiles a work dir may have been made with, the demo's first (corpus recipes'
# demo has the same sizes: its checkpoints are benchmarked with the demo's schedules)
CANDIDATES = (("demo (synthetic)", settings.profile("demo", "synthetic")),
              ("paper (synthetic)", settings.profile("paper", "synthetic")),
              *((name, p) for name, p in settings.PROFILES.items()), ("tests", settings.TESTS))
ROBERTA_BASE = dict(layers=12, dim=768, ffn=3072, heads=12)  # what a None size leaves
ROBERTA_KEYS = dict(layers="encoder_layers", dim="encoder_embed_dim", ffn="encoder_ffn_embed_dim",
                    heads="encoder_attention_heads", max_positions="max_positions")
DS2_KEYS = dict(conv_channels="ds2_conv_channels", lstm_layers="ds2_lstm_layers", lstm_hidden="ds2_lstm_hidden")


def text_vector_default():
    """speech_text_kd's --text-vector default (what a profile without one records)."""
    from slu_kd_plugin.tasks.speech_text_kd import SpeechTextKDConfig

    return SpeechTextKDConfig.text_vector


def label_count(data):
    with open(data / "label" / "dict.txt", encoding="utf-8") as f:
        return sum(not line.startswith("madeupword") for line in f)


def roberta_sizes(r):
    return {key: getattr(r, field) if getattr(r, field) is not None else ROBERTA_BASE[field]
            for field, key in ROBERTA_KEYS.items()}


def expected_sizes(p, fairseq_teacher):
    """{(stage, section, key): value} a work dir made with profile P records."""
    out = {}
    for stage, r in [("speech_bert", p.bert), ("text_model", p.text)] + ([("teacher", p.text)] if fairseq_teacher
                                                                        else []):
        out.update({(stage, "model", k): v for k, v in roberta_sizes(r).items()})
    out.update({("am_pt", "model", key): getattr(p.ds2, field) for field, key in DS2_KEYS.items()})
    out[("pt_kd", "task", "text_vector")] = p.text_vector or text_vector_default()
    for stage in ("pt_kd", "am_pt"):
        out[(stage, "task", "max_positions")] = p.bert.max_positions
    return out


def size_mismatches(p, cfg, fairseq_teacher):
    """'stage key: checkpoint X, profile Y' for every size P and the checkpoints disagree on."""
    return [f"{stage} {key}: checkpoint {cfg(stage)[section].get(key)}, profile {value}"
            for (stage, section, key), value in expected_sizes(p, fairseq_teacher).items()
            if cfg(stage)[section].get(key) != value]


def batch_flags(cfg):
    ds = cfg["dataset"]
    if ds.get("batch_size"):
        return ["--batch-size", str(ds["batch_size"])]
    return ["--max-tokens", str(ds["max_tokens"])]


def without(args, flag):
    """ARGS less FLAG and its value."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        else:
            out.append(a)
    return out


class StageFlags:
    """``stage_args(stage)``: (data dir, fairseq-train arguments) of a stage; ``ft_args``:
    FT-KD's, with the choices the ratios vary.  Needs ``args`` (run.py's options) and
    ``work`` (a work.Work)."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        self._cfg = {}
        self._profile = None

    def cfg(self, stage):
        if stage not in self._cfg:
            self._cfg[stage] = recorded_cfg(self.work.ckpt(stage))
        return self._cfg[stage]

    def hf_teacher(self):
        return self.cfg("teacher")["task"].get("_name") == "hf_text_classification"

    def profile(self):
        """The settings profile whose sizes WORK's checkpoints record; refused if none."""
        if self._profile is None:
            fairseq_teacher = not self.hf_teacher()
            for name, p in CANDIDATES:
                if not size_mismatches(p, self.cfg, fairseq_teacher) and (p.hf_teacher or fairseq_teacher):
                    self._profile = p
                    break
            else:
                name, p = CANDIDATES[0]
                listed = "\n  ".join(size_mismatches(p, self.cfg, fairseq_teacher))
                raise BenchmarkError(
                    f"the checkpoints of {self.work.root} were not trained with any profile of "
                    f"slu_kd_plugin/recipe/settings.py ({', '.join(n for n, _ in CANDIDATES)}); "
                    f"against {name}:\n  {listed}")
        return self._profile

    def subset(self):
        # --quick trains on the (smaller) valid split: a check of the plumbing
        return "valid" if self.args.quick else "train"

    def batched(self, stage, args):
        """ARGS, with the batch size the checkpoint records where the profile leaves it
        to the caller (the tests' profile)."""
        return args if {"--batch-size", "--max-tokens"} & set(args) else [*args, *batch_flags(self.cfg(stage))]

    def stage_args(self, stage):
        """(data dir, fairseq-train arguments) of a stage, as the settings table has it."""
        w, sub, p = self.work, self.subset(), self.profile()
        if stage == "speech_bert":
            return w.bert_units, self.batched(stage, settings.speech_bert(p, sub))
        if stage == "teacher":
            if self.hf_teacher():  # the demo's default teacher: MiniLM-L6 fine-tuned
                args = settings.hf_teacher(p, sub)
            else:
                args = settings.teacher(p, str(w.ckpt("text_model")), p.text.flags(), label_count(w.fsc), sub)
            return w.fsc, self.batched(stage, args)
        if stage == "pt_kd":
            return w.paired, self.batched(stage, settings.pt_kd(
                p, str(w.ckpt("speech_bert")), str(w.ckpt("text_model")), p.text_vector, p.bert.max_positions, sub))
        if stage == "am_pt":
            return w.paired, self.batched(stage, settings.am_pt(p, str(w.ckpt("pt_kd")), p.bert.max_positions, sub))
        if stage == "ft_kd":
            return w.fsc, self.ft_args()
        raise KeyError(stage)

    def ft_args(self, cache=True, teacher_logits="precompute", batching=None):
        """FT-KD as the demo grid's +AM-PT row runs it (PT-KD speech BERT, teacher, DS2
        from AM-PT, no data augmentation), with the three choices the ratios vary."""
        w, p = self.work, self.profile()
        method = ["--criterion", "slu_kd", "--teacher-path", str(w.ckpt("teacher")), "--am-path",
                  str(w.ckpt("am_pt")), "--teacher-logits", teacher_logits]
        args = without(settings.fine_tuning(p, p.ds2.flags(), str(w.ckpt("pt_kd")), p.bert.max_positions,
                                            self.subset(), method=method), "--batch-size")
        if not cache:
            args = [a for a in args if a != "--cache-speech-states"]
        elif "--cache-speech-states" not in args:
            args.append("--cache-speech-states")
        return args + (batching or ["--batch-size", str(self.args.ft_batch_size)])
