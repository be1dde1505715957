"""Reading audio the one way every stage agrees on: 1-D float32, 16 kHz, mono.

I/O goes through ``soundfile`` (``torchaudio.load`` needs torchcodec since
torchaudio 2.9); resampling through ``torchaudio.functional.resample``.  Every
failure is an :class:`AudioError` whose message starts with the offending path, so
a bad file among thousands can be found from the message alone.
"""
import math
import os

import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file that cannot be used as audio; the message starts with its path."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _info(path):
    """``soundfile.info`` with missing/unreadable/empty files turned into AudioError."""
    if not os.path.isfile(path):
        raise AudioError(path, "file not found")
    try:
        info = sf.info(path)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(path, f"unreadable audio ({e})") from None
    if info.frames <= 0:
        raise AudioError(path, "empty audio (0 samples)")
    return info


def _check_rate(path, sample_rate, resample):
    if sample_rate != SAMPLE_RATE and not resample:
        raise AudioError(
            path, f"sample rate {sample_rate} Hz, expected {SAMPLE_RATE} Hz (resampling disabled)"
        )


def resampled_length(n_samples, orig_rate, new_rate=SAMPLE_RATE):
    """Length ``torchaudio.functional.resample`` gives for ``n_samples`` at ``orig_rate``.

    Mirrors torchaudio's own formula (including its float32 ``ceil``), so a manifest
    written from headers alone agrees sample for sample with :func:`read_audio`.
    """
    if orig_rate == new_rate:
        return int(n_samples)
    gcd = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // gcd, int(new_rate) // gcd
    return int(torch.ceil(torch.as_tensor(new * n_samples / orig)).long())


def audio_num_samples(path, resample=True):
    """Number of samples ``read_audio(path, resample)`` would return, from the header only.

    Cheap (no decoding), which matters when checking tens of thousands of files.
    The count is the one *after* resampling to 16 kHz, as manifests need.
    """
    path = os.fspath(path)
    info = _info(path)
    _check_rate(path, info.samplerate, resample)
    return resampled_length(info.frames, info.samplerate)


def read_audio(path, resample=True):
    """Load ``path`` as a 1-D float32 tensor at 16 kHz, channels averaged.

    Files at another rate are resampled, or refused with AudioError when
    ``resample=False`` (for callers that must not silently change the signal).
    """
    path = os.fspath(path)
    info = _info(path)
    _check_rate(path, info.samplerate, resample)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(path, f"unreadable audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty audio (0 samples)")
    wav = torch.from_numpy(data).mean(dim=1)
    if rate != SAMPLE_RATE:
        wav = AF.resample(wav, rate, SAMPLE_RATE)
    return wav.contiguous()
