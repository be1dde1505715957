"""The fairseq-train flags of each stage, model and batch sizes as the work dir's
checkpoints record them: the one place that says what each benchmarked stage runs."""
from .work import recorded_cfg


def flags(values, keys):
    """``--key value`` for each key whose value is set (underscores become dashes)."""
    out = []
    for key in keys:
        value = values.get(key)
        if value is not None:
            out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def batch_flags(cfg):
    ds = cfg["dataset"]
    if ds.get("batch_size"):
        return ["--batch-size", str(ds["batch_size"])]
    return ["--max-tokens", str(ds["max_tokens"])]


def lr_of(cfg):
    lr = cfg["optimization"].get("lr") or [1e-3]
    return str(lr[0] if isinstance(lr, (list, tuple)) else lr)


ROBERTA_KEYS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                "encoder_attention_heads", "max_positions")
DS2_KEYS = ("ds2_conv_channels", "ds2_lstm_layers", "ds2_lstm_hidden")


def label_count(data):
    with open(data / "label" / "dict.txt", encoding="utf-8") as f:
        return sum(not line.startswith("madeupword") for line in f)


class StageFlags:
    """``stage_args(stage)``: (data dir, fairseq-train flags) of a stage; ``ft_args``:
    FT-KD's, with the choices the ratios vary.  Needs ``args`` (run.py's options) and
    ``work`` (a work.Work)."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        self._cfg = {}

    def cfg(self, stage):
        if stage not in self._cfg:
            self._cfg[stage] = recorded_cfg(self.work.ckpt(stage))
        return self._cfg[stage]

    def subset(self):
        # --quick trains on the (smaller) valid split: a check of the plumbing
        return "valid" if self.args.quick else "train"

    def stage_args(self, stage):
        """(data dir, fairseq-train flags) of a stage, sizes as WORK's checkpoints record."""
        w, sub = self.work, self.subset()
        if stage == "speech_bert":
            c = self.cfg("speech_bert")
            return w.bert_units, [
                "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta_base",
                *flags(c["model"], ROBERTA_KEYS), *flags(c["task"], ("tokens_per_sample", "sample_break_mode",
                                                                    "mask_prob")),
                *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "teacher" and self.cfg("teacher")["task"].get("_name") == "hf_text_classification":
            # the demo's default teacher: a Hugging Face encoder fine-tuned from its pretrained weights
            c = self.cfg("teacher")
            frozen = ["--freeze-embeddings"] if c["model"].get("freeze_embeddings") else []
            return w.fsc, [
                "--task", "hf_text_classification", "--arch", "hf_text_classifier", "--criterion",
                "slu_cross_entropy", *frozen, *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "teacher":
            c = self.cfg("teacher")
            return w.fsc, [
                "--task", "sentence_prediction", "--criterion", "sentence_prediction", "--arch", "roberta_base",
                *flags(c["model"], ROBERTA_KEYS), "--restore-file", w.ckpt("text_model"), "--reset-optimizer",
                "--reset-dataloader", "--reset-meters", "--num-classes", label_count(w.fsc),
                "--init-token", "0", "--separator-token", "2", *batch_flags(c), "--lr", lr_of(c),
                "--train-subset", sub]
        if stage == "pt_kd":
            c = self.cfg("pt_kd")
            return w.paired, [
                "--task", "speech_text_kd", "--arch", "speech_bert_kd", "--criterion", "speech_text_kd",
                "--speech-bert-path", w.ckpt("speech_bert"), "--text-model-path", w.ckpt("text_model"),
                *flags(c["task"], ("text_vector", "max_positions")), *flags(c["criterion"], ("kd_distance",)),
                *batch_flags(c), "--lr", lr_of(c), "--train-subset", sub]
        if stage == "am_pt":
            c = self.cfg("am_pt")
            cache = ["--cache-speech-states"] if c["task"].get("cache_speech_states") else []
            return w.paired, [
                "--task", "ctc_pretraining", "--arch", "ds2_ctc", "--criterion", "ctc", "--zero-infinity",
                "--post-process", "letter", "--speech-bert-path", w.ckpt("pt_kd"), *flags(c["model"], DS2_KEYS),
                *cache, *flags(c["task"], ("max_positions",)), *batch_flags(c), "--lr", lr_of(c),
                "--train-subset", sub]
        if stage == "ft_kd":
            return w.fsc, self.ft_args()
        raise KeyError(stage)

    def ft_args(self, cache=True, teacher_logits="precompute", batching=None):
        """FT-KD as the demo grid's +AM-PT row runs it (PT-KD speech BERT, teacher, DS2
        from AM-PT, no data augmentation), with the three choices the ratios vary."""
        w, am = self.work, self.cfg("am_pt")
        batching = batching or ["--batch-size", str(self.args.ft_batch_size)]
        return ["--task", "slu_finetuning", "--arch", "slu_ds2", *flags(am["model"], DS2_KEYS),
                "--speech-bert-path", w.ckpt("pt_kd"), "--criterion", "slu_kd", "--teacher-path", w.ckpt("teacher"),
                "--am-path", w.ckpt("am_pt"), "--teacher-logits", teacher_logits,
                *(["--cache-speech-states"] if cache else []), *flags(am["task"], ("max_positions",)),
                *batching, "--train-subset", self.subset(), "--lr", "1e-3", "--lr-scheduler", "fixed",
                "--force-anneal", "1", "--lr-shrink", "0.952", "--weight-decay", "0.01"]
