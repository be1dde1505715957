"""Speech quantizers: 16 kHz audio -> a sequence of discrete unit tokens.

Three kinds, all opened with :func:`load_quantizer`:

* phone units of CMU's pretrained, speaker-independent en-us acoustic model
  (``pocketsphinx_phones``), which installs from PyPI: the offline default;
* our own MFCC + k-means quantizer (``mfcc_kmeans``), fitted offline here by
  ``slu-kd-fit-quantizer`` on the training voices;
* a fairseq vq-wav2vec checkpoint (``vq_wav2vec``), the paper's quantizer, whose
  ``i-j`` tokens are the ones fairseq's ``bert_kmeans`` dictionary uses.

Every file is opened with torch's safe loading (``weights_only=True``) by
:mod:`slu_kd_plugin.checkpoints`, which allow-lists the fairseq types a legitimate
checkpoint pickles and refuses anything else.
"""
import os

import torch

from .. import checkpoints


class QuantizerError(ValueError):
    """A quantizer file or an input it cannot handle; the message names the file."""


class UnsafeCheckpointError(QuantizerError):
    """torch's safe loading refused the file: it pickles objects we do not allow."""


def merge_consecutive(units):
    """Collapse runs of identical units (``a a b b b a`` -> ``a b a``)."""
    return [u for i, u in enumerate(units) if i == 0 or u != units[i - 1]]


class Quantizer:
    """Base class. Subclasses set ``kind``, ``min_samples``, ``frame_shift_ms`` and
    implement :meth:`frame_units` (one token per frame) and :meth:`symbols`."""

    kind = "base"
    min_samples = 1
    frame_shift_ms = 10.0
    merge_repeats = False
    path = None  # the file it was loaded from (featurization fingerprints it)

    def frame_units(self, wav):
        raise NotImplementedError

    def symbols(self):
        """Every token :meth:`encode` can emit, in a stable order."""
        raise NotImplementedError

    def encode(self, wav, name=None):
        """Tokens for a 1-D float 16 kHz waveform. ``name`` (the audio file) is only
        used in error messages, so a bad utterance can be found."""
        self.check_length(wav, name)
        units = self.frame_units(wav)
        return merge_consecutive(units) if self.merge_repeats else units

    def check_length(self, wav, name=None):
        if wav.dim() != 1:
            raise QuantizerError(f"{name or 'audio'}: expected 1-D audio, got shape {tuple(wav.shape)}")
        if wav.numel() < self.min_samples:
            raise QuantizerError(
                f"{name or 'audio'}: {wav.numel()} samples ({wav.numel() / 16:.1f} ms) is shorter "
                f"than the {self.kind} quantizer's minimum of {self.min_samples} samples "
                f"({self.min_samples / 16:.1f} ms)"
            )

    def save(self, path):
        """Write :meth:`state_dict` (the kinds slu-kd makes itself) so the file only ever
        appears complete."""
        from ..utils import atomic_save_bytes

        atomic_save_bytes(path, lambda tmp: torch.save(self.state_dict(), tmp))
        self.path = path

    @classmethod
    def check_version(cls, state, path, version):
        if state.get("version") != version:
            raise QuantizerError(f"{path}: {cls.kind} version {state.get('version')}, expected {version}")

    def describe(self):
        return (
            f"{self.kind} quantizer from {self.path}: {len(self.symbols())} symbols, "
            f"{self.frame_shift_ms:g} ms frames, merge_repeats={self.merge_repeats}"
        )


def is_padding_symbol(symbol):
    """fairseq's dictionaries pad to a multiple of 8 with ``madeupwordNNNN`` entries
    (fairseq-preprocess' default; bert_kmeans' and roberta.base's dict.txt end with them):
    they are no units."""
    return symbol.startswith("madeupword")


def check_unit_dictionary(quantizer, dictionary, dict_path):
    """Refuse a unit dictionary (a fairseq Dictionary read from ``dict_path``) made with
    another quantizer.

    The dictionary may not hold a unit the quantizer cannot emit, and must hold every unit
    it can emit -- except for vq-wav2vec, whose 320 x 320 possible pairs recipes cut down
    to the units seen in training (unseen ones become ``<unk>``, in training as here).
    """
    symbols = [s for s in dictionary.symbols[dictionary.nspecial:]
               if s != "<mask>" and not is_padding_symbol(s)]
    emitted, known = quantizer.symbols(), set(symbols)
    foreign = sorted(known - set(emitted))
    missing = [s for s in emitted if s not in known] if quantizer.kind != "vq_wav2vec" else []
    if foreign or missing:
        example = f"{foreign[0]!r} only in the dictionary" if foreign else f"{missing[0]!r} only in the quantizer"
        raise QuantizerError(
            f"{quantizer.path}: the {quantizer.kind} quantizer has {len(emitted)} units and {dict_path} "
            f"has {len(symbols)}; {len(foreign) + len(missing)} do not match (e.g. {example}): "
            "the units were made with another quantizer"
        )


def safe_torch_load(path):
    """A quantizer file read by :func:`slu_kd_plugin.checkpoints.torch_load`, its errors
    as :class:`QuantizerError` (what quantizer users catch)."""
    try:
        return checkpoints.torch_load(path, "quantizer")
    except checkpoints.UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(str(e)) from None
    except checkpoints.CheckpointError as e:
        raise QuantizerError(str(e)) from None


def load_quantizer(path, device="cpu", merge_repeats=None):
    """Open our own quantizer file or a fairseq vq-wav2vec checkpoint.

    ``merge_repeats`` overrides the file's default (True for MFCC k-means,
    False for vq-wav2vec, whose frame-level tokens bert_kmeans was trained on).
    """
    path = os.fspath(path)
    state = safe_torch_load(path)
    if isinstance(state, dict) and "kind" in state:
        from .mfcc_kmeans import MfccKmeansQuantizer
        from .pocketsphinx_phones import PocketsphinxPhoneQuantizer

        kinds = {cls.kind: cls for cls in (MfccKmeansQuantizer, PocketsphinxPhoneQuantizer)}
        if state["kind"] not in kinds:
            raise QuantizerError(f"{path}: unknown quantizer kind {state['kind']!r}")
        q = kinds[state["kind"]].from_state(state, path)
    elif isinstance(state, dict) and "model" in state and ("args" in state or "cfg" in state):
        from .vq_wav2vec import VqWav2VecQuantizer

        q = VqWav2VecQuantizer.from_checkpoint_state(state, path, device=device)
    else:
        raise QuantizerError(
            f"{path}: neither a slu-kd quantizer file (no 'kind') nor a fairseq checkpoint "
            f"('model' with 'args' or 'cfg')"
        )
    if merge_repeats is not None:
        q.merge_repeats = bool(merge_repeats)
    return q


__all__ = [
    "Quantizer",
    "QuantizerError",
    "UnsafeCheckpointError",
    "check_unit_dictionary",
    "is_padding_symbol",
    "load_quantizer",
    "merge_consecutive",
    "safe_torch_load",
]
