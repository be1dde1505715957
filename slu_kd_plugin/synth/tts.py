"""Text to a 16 kHz recording of one synthetic speaker, and a parallel renderer.

Everything random (rate/pitch jitter, speed perturbation, silences, noise, gain)
comes from a per-utterance seed, so a corpus is reproducible byte for byte, and a
file can be regenerated alone without replaying the whole corpus.
"""
import contextlib
import dataclasses
import json
import multiprocessing
import os
import subprocess
import tempfile
from typing import Dict, List, NamedTuple

import numpy as np
import soundfile as sf

from .voices import FLITE_VOICES, Speaker

SAMPLE_RATE = 16000
# Bump when a change to the generator changes the audio, so that re-running into an
# old corpus directory rebuilds it instead of mixing old and new files.
GENERATOR_VERSION = 1
STAMP = ".slu-kd-synth.json"
_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class Job(NamedTuple):
    path: str       # where the recording goes (.wav or .flac)
    text: str
    speaker: Speaker
    seed: int


def _engine_cmd(text: str, spk: Speaker, rate: int, pitch: int, out: str, text_file: str) -> List[str]:
    if spk.engine == "espeak-ng":
        return ["espeak-ng", "-v", f"{spk.voice}+{spk.variant}", "-s", str(rate),
                "-p", str(pitch), "-w", out, text]
    if spk.engine == "festival":
        # festival takes a duration stretch like flite; its voices have no simple F0
        # target, so pitch variety comes from the speed perturbation alone
        return ["text2wave", "-eval", f"(voice_{spk.voice})",
                "-eval", f"(Parameter.set 'Duration_Stretch {175 / rate:.3f})", text_file, "-o", out]
    # flite has no words-per-minute or 0..99 pitch: 175 wpm is espeak's default
    # rate, and pitch 50 is the voice's own F0, one octave per 100 steps.
    f0 = FLITE_VOICES[spk.voice] * 2 ** ((pitch - 50) / 100)
    return ["flite", "-voice", spk.voice, "--setf", f"duration_stretch={175 / rate:.3f}",
            "--setf", f"int_f0_target_mean={f0:.1f}", "-t", text, "-o", out]


def _run_engine(text: str, spk: Speaker, rng: np.random.Generator):
    """Speak ``text``; returns (float32 samples, sample rate) of the engine's output."""
    rate = int(round(spk.rate * rng.uniform(0.93, 1.07)))  # nobody says it twice alike
    pitch = int(np.clip(spk.pitch + rng.integers(-6, 7), 0, 99))
    with tempfile.TemporaryDirectory(prefix="slu-kd-tts-") as tmp:
        wav_path, text_path = os.path.join(tmp, "out.wav"), os.path.join(tmp, "text.txt")
        with open(text_path, "w") as f:
            f.write(text + "\n")
        cmd = _engine_cmd(text, spk, rate, pitch, wav_path, text_path)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(wav_path):
            raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
        wav, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    if wav.shape[0] == 0:
        raise RuntimeError(f"{spk.name} produced no audio for {text!r}")
    return wav.mean(axis=1), sr


def _resample_perturbed(wav: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Resample to 16 kHz and apply a mild speed perturbation in the same step.

    Reading the signal as if recorded at ``sr * factor`` speeds it up by ``factor``
    (tempo and pitch together, like Kaldi's speed perturbation).  The pretended rate
    is rounded to 100 Hz so the resampling kernel stays small.
    """
    import torch
    from torchaudio.functional import resample

    orig = int(round(sr * rng.uniform(0.92, 1.08) / 100.0)) * 100
    if orig == SAMPLE_RATE:
        return wav
    return resample(torch.from_numpy(wav), orig, SAMPLE_RATE).numpy()


def _coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f^alpha power spectrum (white 0, pink 1, brown 2)."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 2 else 1.0  # no infinite DC gain
    noise = np.fft.irfft(spec / freqs ** (alpha / 2), n)
    noise -= noise.mean()
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _dress(speech: np.ndarray, spk: Speaker, rng: np.random.Generator) -> np.ndarray:
    """Add leading/trailing silence, the speaker's room noise and recording gain."""
    power = float(np.mean(speech.astype(np.float64) ** 2)) + 1e-12
    lead, trail = (int(rng.uniform(0.05, 0.3) * SAMPLE_RATE) for _ in range(2))
    wav = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    snr_db = spk.snr_db + rng.uniform(-3, 3)
    wav = wav + _coloured_noise(len(wav), spk.noise, rng) * np.sqrt(power / 10 ** (snr_db / 10))
    peak = min(spk.gain * rng.uniform(0.8, 1.2), 0.98)
    return (wav * peak / (np.abs(wav).max() + 1e-12)).astype(np.float32)


@contextlib.contextmanager
def _one_torch_thread():
    # One thread per process: the pool already fills the cores, and a fixed thread
    # count keeps float results identical whichever way a corpus is generated.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synthesize(text: str, spk: Speaker, seed: int) -> np.ndarray:
    """``text`` spoken by ``spk``: float32 16 kHz mono, a function of ``seed``."""
    rng = np.random.default_rng(seed)
    raw, sr = _run_engine(text, spk, rng)
    with _one_torch_thread():
        speech = _resample_perturbed(raw, sr, rng)
    return _dress(speech, spk, rng)


def write_audio(path: str, wav: np.ndarray) -> None:
    """Write PCM16 (wav or flac by extension) so it only ever appears complete."""
    fmt = _FORMATS[os.path.splitext(path)[1].lower()]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    try:
        sf.write(tmp, wav, SAMPLE_RATE, subtype="PCM_16", format=fmt)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _render_one(job: Job) -> int:
    wav = synthesize(job.text, job.speaker, job.seed)
    write_audio(job.path, wav)
    return len(wav)


def render(jobs: List[Job], n_jobs: int = 2, skip_existing: bool = True,
           desc: str = "synth", progress: bool = True) -> Dict[str, int]:
    """Generate every job's file; returns {path: n_samples}.

    With ``skip_existing`` a file already there is kept: writes are atomic, so an
    existing file is complete, and generation is deterministic, so it is what this
    run would have written anyway (the caller decides whether that holds).
    """
    from tqdm import tqdm

    done = {j.path: sf.info(j.path).frames for j in jobs
            if skip_existing and os.path.exists(j.path)}
    todo = [j for j in jobs if j.path not in done]
    bar = tqdm(total=len(jobs), initial=len(done), desc=desc, unit="utt",
               disable=not progress)
    with bar, _pool(n_jobs) as pool:
        results = pool.imap(_render_one, todo, chunksize=4) if pool else map(_render_one, todo)
        for job, n in zip(todo, results):
            done[job.path] = n
            bar.update()
    return done


@contextlib.contextmanager
def _pool(n_jobs: int):
    if n_jobs <= 1:
        yield None
        return
    # fork: workers inherit the already-imported package instead of re-importing
    # fairseq (seconds each); safe because synthesize() pins torch to one thread.
    with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
        yield pool


def _stamp_data(cfg) -> dict:
    return {"generator": GENERATOR_VERSION, "config": type(cfg).__name__,
            **dataclasses.asdict(cfg)}


def write_stamp(root: str, cfg) -> None:
    """Record which settings the files under ``root`` were generated with."""
    from ..utils import atomic_write

    os.makedirs(root, exist_ok=True)
    with atomic_write(os.path.join(root, STAMP)) as f:
        json.dump(_stamp_data(cfg), f, indent=1, sort_keys=True)


def output_is_current(root: str, cfg, fresh_markers: List[str]) -> bool:
    """May files already under ``root`` be kept (True) or must all be rebuilt?

    Kept only when they were made with these very settings; a directory where none
    of ``fresh_markers`` exists yet is claimed for these settings at once.
    """
    path = os.path.join(root, STAMP)
    if os.path.exists(path):
        with open(path) as f:
            if json.load(f) == _stamp_data(cfg):
                return True
        os.remove(path)  # other settings: until every file is rebuilt, trust none
        return False
    if not any(os.path.exists(m) for m in fresh_markers):
        write_stamp(root, cfg)
        return True
    return False
