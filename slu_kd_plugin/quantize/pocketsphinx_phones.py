"""Speaker-independent phone units from CMU's pretrained en-us acoustic model.

MFCC k-means units fitted on a few voices learn those voices: a new speaker gets
other units for the same words.  The ``pocketsphinx`` wheel ships a continuous
acoustic model trained on many human speakers, a pronouncing dictionary and a phone
language model; all-phone decoding with it turns any voice into phone segments on
10 ms frames.  This quantizer writes each segment as one phone token per
``frame_ms`` of its duration (durations kept, as vq-wav2vec's frame-level tokens
keep them: merged to one token per phone, the same phones lost half the accuracy).

Decoding uses pocketsphinx's generic phone LM at its usual weight (a trigram over
the training transcripts' phones, tried on a few voices, decoded no better and broke
down at higher weights).

Decoding is deterministic (batch CMN per utterance, no state carried between
utterances), so shards and resumed runs give the same tokens.
"""
import functools
import hashlib
import os

import torch

from ..utils import atomic_save_bytes
from . import Quantizer, QuantizerError

KIND = "pocketsphinx_phones"
VERSION = 1
SAMPLE_RATE = 16000


def _package():
    try:
        import pocketsphinx
    except ImportError:
        raise QuantizerError("the pocketsphinx quantizer needs the pocketsphinx package "
                             "(pip install pocketsphinx; scripts/setup.sh installs it)") from None
    return pocketsphinx


def model_dir():
    return os.path.join(_package().get_model_path(), "en-us")


def acoustic_model_fingerprint():
    """sha1 of the acoustic model's mdef and means: a quantizer file refuses another model."""
    h = hashlib.sha1()
    for name in ("mdef", "means"):
        with open(os.path.join(model_dir(), "en-us", name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def phone_set():
    """The phones decoding can emit: those of the shipped dictionary and the fillers of
    the acoustic model's noise dictionary (SIL, +NSN+, +SPN+), sorted."""
    phones = {p for pron in read_pronunciations().values() for p in pron}
    with open(os.path.join(model_dir(), "en-us", "noisedict"), encoding="utf-8") as f:
        phones.update(line.split()[1] for line in f if len(line.split()) == 2)
    return sorted(phones)


@functools.lru_cache(maxsize=1)
def read_pronunciations():
    """word -> first pronunciation (list of phones) of the shipped CMU dictionary."""
    prons = {}
    with open(os.path.join(model_dir(), "cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            if "(" not in word:
                prons.setdefault(word, phones)
    return prons


# ------------------------------------------------------------------ quantizer


class PocketsphinxPhoneQuantizer(Quantizer):
    kind = KIND
    merge_repeats = False

    def __init__(self, frame_ms=30, lw=2.0, info=None, path=None, fingerprint=None):
        if frame_ms < 10 or frame_ms % 10:
            raise QuantizerError(f"frame_ms must be a multiple of 10 ms, not {frame_ms}")
        self.frame_ms, self.lw = int(frame_ms), float(lw)
        self.info, self.path = dict(info or {}), path
        self.fingerprint = fingerprint or acoustic_model_fingerprint()
        self.min_samples = 400  # one 25 ms analysis window
        self.frame_shift_ms = float(frame_ms)
        self._decoder = None

    def _make_decoder(self):
        ps = _package()
        if self.fingerprint != acoustic_model_fingerprint():
            raise QuantizerError(f"{self.path}: made with another pocketsphinx acoustic model "
                                 f"({self.fingerprint}, installed {acoustic_model_fingerprint()})")
        cfg = ps.Config(hmm=os.path.join(model_dir(), "en-us"),
                        allphone=os.path.join(model_dir(), "en-us-phone.lm.bin"), lw=self.lw,
                        beam=1e-20, pbeam=1e-20, loglevel="FATAL")
        return ps.Decoder(cfg)

    def segments(self, wav):
        """[(phone, n_10ms_frames)] of a 1-D float 16 kHz waveform."""
        if self._decoder is None:
            self._decoder = self._make_decoder()
        pcm = (wav.float().clamp(-1, 1) * 32767).to(torch.int16).numpy().tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        return [(s.word, s.end_frame - s.start_frame + 1) for s in d.seg()]

    def frame_units(self, wav):
        per = self.frame_ms // 10
        units = []
        for phone, frames in self.segments(wav):
            units += [phone] * max(1, round(frames / per))
        return units or ["SIL"]

    def symbols(self):
        return phone_set()

    def state_dict(self):
        return {"kind": KIND, "version": VERSION, "frame_ms": self.frame_ms, "lw": self.lw,
                "fingerprint": self.fingerprint, "info": self.info}

    def save(self, path):
        atomic_save_bytes(path, lambda tmp: torch.save(self.state_dict(), tmp))
        self.path = path

    @classmethod
    def from_state(cls, state, path=None):
        if state.get("version") != VERSION:
            raise QuantizerError(f"{path}: {KIND} version {state.get('version')}, expected {VERSION}")
        try:
            return cls(state["frame_ms"], state["lw"], state.get("info"), path, state["fingerprint"])
        except KeyError as e:
            raise QuantizerError(f"{path}: malformed {KIND} file (no {e})") from None

    def describe(self):
        return super().describe() + f", pocketsphinx en-us all-phone decoding, lw={self.lw:g}"
