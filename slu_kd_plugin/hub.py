"""Use a trained SLU model from Python: audio in, intent out (fairseq hub style).

    from slu_kd_plugin.hub import SLUModel
    slu = SLUModel.from_pretrained("model_dir")            # written by slu-kd-package
    slu.predict("turn_on_the_lights.wav")
    # {"intent": "activate|lights|none", "slots": {"action": "activate", ...}, "probability": 0.97}

A model directory mimics a data-bin (``units/dict.txt``, ``label/dict.txt``), so the
checkpoint is restored by fairseq's own ``load_model_ensemble_and_task`` with the task's
data pointed at it, and units are numbered exactly as ``fairseq-preprocess`` numbered
them in training: ``<s>`` + units + ``</s>``, cut at the task's ``max_positions``.
"""
import json
import os

import torch
import torch.nn as nn

FORMAT_VERSION = 1
CONFIG = "config.json"
CHECKPOINT = "model.pt"
QUANTIZER = "quantizer.pt"
LABELS = "labels.json"
UNIT_DICT = os.path.join("units", "dict.txt")
LABEL_DICT = os.path.join("label", "dict.txt")
REQUIRED_FILES = (CONFIG, CHECKPOINT, QUANTIZER, UNIT_DICT, LABEL_DICT)


class ModelDirError(ValueError):
    """A model directory that is incomplete or not one slu-kd-package wrote."""


def read_config(model_dir):
    """``config.json`` of a model directory, after checking every required file exists."""
    missing = [f for f in REQUIRED_FILES if not os.path.isfile(os.path.join(model_dir, f))]
    if missing:
        raise ModelDirError(f"{model_dir}: not a slu-kd model directory (missing {', '.join(missing)}); "
                            "write one with slu-kd-package")
    path = os.path.join(model_dir, CONFIG)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path}: format_version {config.get('format_version')!r}, "
                            f"this slu-kd reads {FORMAT_VERSION}")
    return config


class UnitsToProbs(nn.Module):
    """units (B, T) LongTensor, right-padded -> intent probabilities (B, n_classes).

    The one forward both eager prediction and the TorchScript export run, so they
    cannot drift apart.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, units):
        return torch.softmax(self.model(units)["logits"].float(), dim=-1)


def load_slu(path, data):
    """(eval-mode slu_ds2 model, task) of SLU checkpoint ``path``, its task reading the
    dictionaries of data-bin (or model directory) ``data``; a model needs no teacher."""
    import slu_kd_plugin
    slu_kd_plugin.register()  # registers the plugin, allow-lists checkpoint types
    from fairseq import checkpoint_utils
    from fairseq.dataclass.utils import overwrite_args_by_name

    from .checkpoints import check_slu, load_state
    from .tasks.slu_finetuning import TRAINING_ONLY

    # another stage's checkpoint, or a data-bin of other dictionaries, fails in fairseq's
    # loader with a message naming neither file: refuse both here
    state = check_slu(load_state(path), path)
    check_fits_data(state, path, data)
    overwrite_args_by_name(state["cfg"], {**TRAINING_ONLY, "data": data})
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([path], state=state)
    return models[0].eval(), task


def check_fits_data(state, path, data):
    """The checkpoint's speech BERT and classifier must fit DATA's unit and label
    dictionaries (fairseq's loader would fail deep in load_state_dict, naming neither
    file); returns the label names."""
    from .data.binarized import load_dict
    from .data.labels import label_symbols, load_label_dict
    from .models.pretrained import check_vocab

    check_vocab(state["model"], load_dict(data, "units"), path)
    labels_path = os.path.join(data, LABEL_DICT)
    labels = label_symbols(load_label_dict(labels_path))
    n = state["model"]["classifier.weight"].shape[0]
    if n != len(labels):
        raise ValueError(f"{path}: the model predicts {n} classes but {labels_path} has {len(labels)}: "
                         "--data is not the data-bin this model was trained on")
    return labels


def load_fairseq_model(model_dir):
    """(eval-mode slu_ds2 model, task) restored by fairseq from a model directory."""
    from .checkpoints import CheckpointError

    path = os.path.join(model_dir, CHECKPOINT)
    try:
        return load_slu(path, os.path.abspath(model_dir))
    except CheckpointError as e:  # names the file and what it is not
        raise ModelDirError(str(e)) from None
    except Exception as e:
        raise ModelDirError(f"{path}: cannot restore the model ({type(e).__name__}: {e})") from e


class SLUModel(nn.Module):
    """Quantizer + unit dictionary + SLU model + label names, ready to predict."""

    def __init__(self, model, task, quantizer, config, label_info=None):
        super().__init__()
        from .data.labels import label_symbols

        self.task, self.quantizer, self.config = task, quantizer, config
        self.labels = label_symbols(task.label_dict)
        self.label_info = label_info or {}
        self.scorer = UnitsToProbs(model)
        self.onnx = None  # an OnnxScorer that replaces the eager scorer (use_onnx)
        self.max_positions = task.cfg.max_positions
        self.eval()

    @classmethod
    def from_pretrained(cls, model_dir, device="cpu", onnx=None):
        """``onnx``: a file ``slu-kd-export --format onnx`` wrote from this model directory;
        probabilities then come from ONNX Runtime (see :meth:`use_onnx`)."""
        slu = cls._load(model_dir, device)
        return slu.use_onnx(onnx) if onnx else slu

    @classmethod
    def _load(cls, model_dir, device):
        from .quantize import QuantizerError, check_unit_dictionary, load_quantizer

        model_dir = os.fspath(model_dir)
        config = read_config(model_dir)
        model, task = load_fairseq_model(model_dir)
        try:
            quantizer = load_quantizer(os.path.join(model_dir, QUANTIZER), device=str(device),
                                       merge_repeats=config.get("merge_repeats"))
            # a quantizer.pt swapped in by hand would give units the model never saw
            check_unit_dictionary(quantizer, task.source_dictionary, os.path.join(model_dir, UNIT_DICT))
        except QuantizerError as e:
            raise ModelDirError(str(e)) from None
        label_info = None
        if os.path.isfile(os.path.join(model_dir, LABELS)):
            with open(os.path.join(model_dir, LABELS), encoding="utf-8") as f:
                label_info = json.load(f)
        return cls(model, task, quantizer, config, label_info).to(device)

    def use_onnx(self, path, threads=None):
        """Score with an exported ONNX file (ONNX Runtime, CPU) instead of the eager model;
        quantizer and dictionaries stay this directory's. Refused when the file's labels
        are not this model's."""
        from .onnx_scorer import OnnxScorer

        scorer = OnnxScorer(path, threads)
        if scorer.labels() != self.labels:
            raise ModelDirError(f"{path}: its labels are not those of this model directory; "
                                "export it again from this directory")
        self.onnx = scorer
        return self

    @property
    def device(self):
        return next(self.scorer.parameters()).device

    @property
    def unit_dict(self):
        return self.task.source_dictionary

    def waveform(self, audio, sample_rate=None):
        """A path (any rate / channel count soundfile reads) or a waveform -> 1-D 16 kHz float."""
        from .audio import read_audio

        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise ValueError(f"{audio}: sample_rate is read from the file; pass it only with a waveform")
            return read_audio(audio)
        return to_mono_16k(audio, sample_rate)

    def units(self, audio, sample_rate=None):
        """(T,) LongTensor of unit ids laid out as in training: ``<s>`` units ``</s>``."""
        wav = self.waveform(audio, sample_rate)
        name = os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else "waveform"
        tokens = self.quantizer.encode(wav.cpu(), name=name)
        # fairseq-preprocess wrote each line as encode_line(...) + </s>; unknowns -> <unk>
        ids = self.unit_dict.encode_line(" ".join(tokens), add_if_not_exist=False, append_eos=True).long()
        # tasks.common.encoder_input: truncate to max_positions - 1, then prepend <s>
        ids = ids[: self.max_positions - 1]
        return torch.cat([ids.new_tensor([self.unit_dict.bos()]), ids])

    @torch.no_grad()
    def probabilities(self, unit_seqs):
        """(B, n_classes) intent probabilities for a list of unit-id tensors."""
        from fairseq.data import data_utils

        batch = data_utils.collate_tokens(list(unit_seqs), self.unit_dict.pad())  # right padding
        if self.onnx is not None:
            return self.onnx(batch)
        return self.scorer(batch.to(self.device)).cpu()

    def predict(self, audio, sample_rate=None):
        """{"intent", "slots" (when the labels have slots), "probability"} for one utterance."""
        return self.predict_batch([audio], sample_rate)[0]

    def predict_batch(self, audios, sample_rate=None, batch_size=16):
        """:meth:`predict` for many utterances, ``batch_size`` at a time, in order."""
        audios, results = list(audios), []
        for start in range(0, len(audios), batch_size):
            chunk = audios[start:start + batch_size]
            probs = self.probabilities([self.units(a, sample_rate) for a in chunk])
            results += [self.describe(row) for row in probs]
        return results

    def describe(self, probs):
        """Probability row -> the prediction dict."""
        p, index = probs.max(-1)
        token = self.labels[int(index)]
        result = {"intent": token}
        slots = self.slots_of(token)
        if slots:
            result["slots"] = slots
        result["probability"] = float(p)
        return result

    def slots_of(self, token):
        """Slot values as the corpus wrote them (labels.json), else decoded from the token."""
        info = self.label_info.get(token)
        if info is not None:
            return {k: v for k, v in info.items() if k != "intent"} or None
        from .corpora.labels import decode_intent

        names = self.config.get("slot_names") or []
        values = decode_intent(token, self.config.get("label_separator", "|"))
        return dict(zip(names, values)) if names and len(values) == len(names) else None


def to_mono_16k(wav, sample_rate):
    """A waveform (T,) or (channels, T), tensor or numpy, at ``sample_rate`` (default
    16 kHz) -> 1-D float32 at 16 kHz, channels averaged (as ``read_audio`` does)."""
    import torchaudio.functional as AF

    from .audio import SAMPLE_RATE

    wav = torch.as_tensor(wav).float()
    if wav.dim() == 2:
        if wav.size(0) > wav.size(1):  # soundfile's (T, C) would silently average time
            raise ValueError(f"waveform of shape {tuple(wav.shape)} looks like (time, channels); "
                             "pass (channels, time)")
        wav = wav.mean(dim=0)
    if wav.dim() != 1 or wav.numel() == 0:
        raise ValueError(f"expected a non-empty 1-D or (channels, time) waveform, got shape {tuple(wav.shape)}")
    rate = SAMPLE_RATE if sample_rate is None else int(sample_rate)
    if rate != SAMPLE_RATE:
        wav = AF.resample(wav, rate, SAMPLE_RATE)
    return wav.contiguous()
