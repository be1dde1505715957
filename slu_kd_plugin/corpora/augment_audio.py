"""Perturbed copies of a manifest split's audio, as extra training utterances.

``augment_split`` reads ``MANIFEST_DIR/{split}.tsv/.txt/.ltr/.id`` (+ ``.label``,
``.spk``), writes perturbed 16 kHz PCM16 copies of every utterance and a new split
(``{split}_aug``) with the originals followed by the copies, every line-aligned file
of it.  Perturbations (all on 16 kHz float audio):

* ``speed``: Kaldi-style speed perturbation -- resampling, tempo and pitch change
  together, length ``n / factor``.
* ``pitch``: pitch (and formants with it) moved by N semitones, length kept:
  phase-vocoder time stretch, then resampling back to the original length.
* ``vtlp``: vocal-tract-length (formant) warp, pitch and length kept: the cepstral
  spectral envelope of every STFT frame is stretched along frequency by the factor
  while the harmonics (excitation) stay where they are.
* ``noise``: white or pink noise at an SNR drawn from a range.
* ``reverb``: convolution with a synthetic exponentially decaying noise impulse
  response of an RT60 drawn from a range.

Every random draw comes from a generator seeded by (seed, utterance id, copy name),
so the output is byte-identical for a seed whatever ``jobs`` is, and a rerun can
keep any file already there: wav files are written atomically, under a directory
named after a hash of the settings, so files of other settings are never reused.
"""
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from ..audio import SAMPLE_RATE, AudioError, audio_num_samples, read_audio
from ..utils import atomic_save_bytes, atomic_write

logger = logging.getLogger(__name__)

# Bump when a change to the code changes the audio it writes: old files are then not reused.
ALGO_VERSION = 1
TEXT_EXTS = ("txt", "ltr", "id")  # required beside {split}.tsv
OPTIONAL_EXTS = ("label", "spk")  # copied when the source split has them
EFFECT_ORDER = ("speed", "vtlp", "pitch", "reverb", "noise")
NOISE_COLORS = ("white", "pink")
# --preset NAME -> the values it stands for (what examples/*/run.sh --augment-audio uses)
PRESETS = {
    "speed": {"speed": (0.9, 1.1)},
    "pitch": {"pitch": (-2.0, 2.0)},
    "vtlp": {"vtlp": (0.9, 1.1)},
    "noise": {"noise_snr": (10.0, 30.0)},
    "reverb": {"reverb_rt60": (0.2, 0.6)},
}
N_FFT, HOP = 512, 128
LIFTER = 30  # cepstral coefficients kept for the envelope: 1.9 ms, below any F0 period


class AugmentError(ValueError):
    """Problems with an augmentation input, all listed (each names file and line)."""

    def __init__(self, summary, problems=()):
        self.problems = list(problems)
        super().__init__("\n".join([summary] + [f"  {p}" for p in self.problems]))


@dataclass(frozen=True)
class AugmentConfig:
    speed: tuple = ()  # one copy per factor (Kaldi: 0.9, 1.1)
    pitch: tuple = ()  # one copy per shift in semitones
    vtlp: tuple = ()  # one copy per formant warp factor (>1: shorter vocal tract)
    noise_snr: Optional[tuple] = None  # (low, high) dB; copies_per_utt noisy copies
    noise_colors: tuple = NOISE_COLORS
    reverb_rt60: Optional[tuple] = None  # (low, high) s; copies_per_utt reverberant copies
    copies_per_utt: int = 1
    combine: bool = False  # copies_per_utt copies each applying every effect, values drawn
    seed: int = 1

    def check(self):
        problems = []
        problems += [f"speed factor {f} outside [0.5, 2]" for f in self.speed if not 0.5 <= f <= 2]
        problems += [f"pitch shift {s} outside [-12, 12] semitones" for s in self.pitch if abs(s) > 12]
        problems += [f"vtlp factor {f} outside [0.7, 1.4]" for f in self.vtlp if not 0.7 <= f <= 1.4]
        for name, rng, lo_ok in (("noise SNR", self.noise_snr, -20), ("reverb RT60", self.reverb_rt60, 0.05)):
            if rng is not None and not (len(rng) == 2 and lo_ok <= rng[0] <= rng[1]):
                problems.append(f"{name} range {rng} is not LOW:HIGH with {lo_ok} <= LOW <= HIGH")
        if self.reverb_rt60 is not None and self.reverb_rt60[1] > 3:
            problems.append(f"reverb RT60 {self.reverb_rt60[1]} s is over 3 s")
        problems += [f"unknown noise colour {c!r} (white, pink)" for c in self.noise_colors
                     if c not in NOISE_COLORS]
        if not self.noise_colors:
            problems.append("no noise colour given")
        if self.copies_per_utt < 1:
            problems.append(f"copies per utterance must be >= 1, not {self.copies_per_utt}")
        if not copy_plan(self):
            problems.append("no perturbation asked for (speed, pitch, vtlp, noise or reverb)")
        if problems:
            raise AugmentError("invalid augmentation settings", problems)
        return self

    def digest(self):
        """Short hash of everything that decides the audio written (not jobs/progress)."""
        blob = json.dumps([ALGO_VERSION, dataclasses.asdict(self)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def config_from_presets(names, **overrides):
    """AugmentConfig of a comma list of :data:`PRESETS` names (``none``: nothing)."""
    values = {}
    for name in [n for n in names.split(",") if n and n != "none"]:
        if name not in PRESETS:
            raise AugmentError(f"unknown augmentation {name!r}: {', '.join(PRESETS)} or none")
        values.update(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return AugmentConfig(**values)


@dataclass(frozen=True)
class CopySpec:
    """One copy of every utterance: id suffix and (effect, value) steps; value None = drawn."""

    name: str
    steps: tuple


def _fmt(x):
    return f"{x:g}"


def copy_plan(cfg):
    """The copies each utterance gets, in output order."""
    if cfg.combine:
        steps = tuple((e, None) for e in EFFECT_ORDER if _enabled(cfg, e))
        return [CopySpec(f"mix{i}", steps) for i in range(1, cfg.copies_per_utt + 1)] if steps else []
    plan = [CopySpec(f"sp{_fmt(f)}", (("speed", f),)) for f in cfg.speed if f != 1.0]
    plan += [CopySpec(f"vt{_fmt(f)}", (("vtlp", f),)) for f in cfg.vtlp if f != 1.0]
    plan += [CopySpec(f"ps{_fmt(s)}", (("pitch", s),)) for s in cfg.pitch if s != 0]
    for effect, tag in (("reverb", "rev"), ("noise", "noise")):
        if _enabled(cfg, effect):
            plan += [CopySpec(f"{tag}{i}", ((effect, None),)) for i in range(1, cfg.copies_per_utt + 1)]
    return plan


def _enabled(cfg, effect):
    return {"speed": bool(cfg.speed), "vtlp": bool(cfg.vtlp), "pitch": bool(cfg.pitch),
            "reverb": cfg.reverb_rt60 is not None, "noise": cfg.noise_snr is not None}[effect]


# ---------------------------------------------------------------------------- effects

def speed_perturb(wav, factor):
    """Kaldi/sox ``speed``: play ``factor`` times faster (pitch up with it), n/factor samples."""
    ratio = Fraction(factor).limit_denominator(100)  # small ratio -> small resampling kernel
    return AF.resample(wav, ratio.numerator, ratio.denominator)


def _stft(wav):
    return torch.stft(wav, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def _istft(spec, length):
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)


def pitch_shift(wav, semitones):
    """Pitch (and formants) up by ``semitones``, same length: stretch time by the pitch
    factor with a phase vocoder, then resample back to the original length."""
    n = wav.numel()
    ratio = Fraction(2 ** (semitones / 12)).limit_denominator(64)  # exact factor, cheap kernel
    spec = _stft(wav)
    advance = torch.linspace(0, math.pi * HOP, spec.shape[-2])[..., None]
    stretched = AF.phase_vocoder(spec, float(1 / ratio), advance)
    longer = _istft(stretched, round(n * float(ratio)))
    out = AF.resample(longer, ratio.numerator, ratio.denominator)
    return _fit_length(out, n)


def _fit_length(wav, n):
    return wav[:n] if wav.numel() >= n else torch.nn.functional.pad(wav, (0, n - wav.numel()))


def vtlp_warp(wav, factor):
    """Formants moved by ``factor`` (a vocal tract 1/factor as long), pitch and length kept.

    Per STFT frame the log spectrum is split into a smooth envelope (low quefrencies of
    the cepstrum) and the rest (harmonics); only the envelope is stretched along the
    frequency axis.  The phase is left as it is, which keeps the timing."""
    spec = _stft(wav)
    log_mag = torch.log(spec.abs().clamp_min(1e-8))  # (freq, frames)
    cep = torch.fft.irfft(log_mag, dim=0)
    cep[LIFTER:-LIFTER + 1] = 0  # keep quefrencies 0..LIFTER-1 (and their mirror)
    envelope = torch.fft.rfft(cep, dim=0).real[: log_mag.shape[0]]
    n_freq = log_mag.shape[0]
    src = (torch.arange(n_freq, dtype=torch.float32) / factor).clamp(max=n_freq - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n_freq - 1)
    w = (src - lo)[:, None]
    warped = envelope[lo] * (1 - w) + envelope[hi] * w
    new_mag = torch.exp(log_mag - envelope + warped)
    out = _istft(torch.polar(new_mag, spec.angle()), wav.numel())
    return _match_rms(out, wav)


def _match_rms(out, ref):
    """Scale ``out`` to the RMS of ``ref`` (warps and reverberation change the level)."""
    r_out, r_ref = out.pow(2).mean().sqrt(), ref.pow(2).mean().sqrt()
    return out * (r_ref / r_out) if r_out > 0 else out


def add_noise(wav, snr_db, color, rng):
    """White or pink (1/f power) Gaussian noise at ``snr_db`` relative to the whole utterance."""
    n = wav.numel()
    noise = rng.standard_normal(n)
    if color == "pink":
        spectrum = np.fft.rfft(noise)
        f = np.arange(spectrum.size, dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    noise = torch.from_numpy((noise / (noise.std() + 1e-12)).astype(np.float32))
    power = wav.pow(2).mean()
    if power <= 0:
        return wav
    return wav + noise * torch.sqrt(power / 10 ** (snr_db / 10))


def reverberate(wav, rt60, rng):
    """Convolution with a direct path plus exponentially decaying noise (-60 dB at rt60)."""
    length = max(2, int(min(rt60, 1.0) * SAMPLE_RATE))
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
    tail[0] = 0.0
    ir = tail / np.sqrt((tail ** 2).sum())  # reverberant energy = direct energy
    ir[0] = 1.0
    out = AF.fftconvolve(wav, torch.from_numpy(ir.astype(np.float32)))[: wav.numel()]
    return _match_rms(out, wav)


def utterance_rng(seed, uid, copy_name):
    """Generator for one copy of one utterance: independent of order and process."""
    digest = hashlib.sha256(f"{seed}\0{uid}\0{copy_name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _draw(values, rng):
    return float(values[int(rng.integers(len(values)))])


def apply_copy(wav, copy, cfg, uid):
    """The perturbed audio of ``copy`` for utterance ``uid`` (deterministic)."""
    rng = utterance_rng(cfg.seed, uid, copy.name)
    for effect, value in copy.steps:
        if effect == "speed":
            wav = speed_perturb(wav, value if value is not None else _draw(cfg.speed, rng))
        elif effect == "vtlp":
            wav = vtlp_warp(wav, value if value is not None else _draw(cfg.vtlp, rng))
        elif effect == "pitch":
            wav = pitch_shift(wav, value if value is not None else _draw(cfg.pitch, rng))
        elif effect == "reverb":
            wav = reverberate(wav, rng.uniform(*cfg.reverb_rt60), rng)
        elif effect == "noise":
            color = cfg.noise_colors[int(rng.integers(len(cfg.noise_colors)))]
            wav = add_noise(wav, rng.uniform(*cfg.noise_snr), color, rng)
    return wav


def to_pcm16(wav):
    """int16 samples; a copy louder than full scale is scaled down, never clipped."""
    x = wav.detach().numpy().astype(np.float64)
    peak = np.abs(x).max() if x.size else 0.0
    if peak > 0.999:
        x = x * (0.999 / peak)
    return np.round(x * 32767).astype(np.int16)


# ------------------------------------------------------------------- reading the split

@dataclass
class SourceUtt:
    path: str  # absolute
    n_samples: int
    where: str  # "train.tsv:LINE"
    lines: dict = field(default_factory=dict)  # ext -> its line in {split}.ext


def _read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def read_split(manifest_dir, split):
    """Utterances of ``split`` with their lines of every line-aligned file; checks that
    the files are aligned and every audio file is readable, raising one AugmentError."""
    tsv = os.path.join(manifest_dir, f"{split}.tsv")
    if not os.path.isfile(tsv):
        raise AugmentError(f"{tsv}: manifest not found")
    lines = _read_lines(tsv)
    if not lines:
        raise AugmentError(f"{tsv}: empty manifest (no root line)")
    root, utts, problems = lines[0].strip(), [], []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            problems.append(f"{tsv}:{lineno}: expected 'relpath<TAB>n_samples', got {line!r}")
            continue
        utts.append(SourceUtt(os.path.join(root, parts[0]), int(parts[1]), f"{tsv}:{lineno}"))
    if problems:
        raise AugmentError(f"{tsv}: malformed manifest", problems)
    exts = list(TEXT_EXTS) + [e for e in OPTIONAL_EXTS
                              if os.path.isfile(os.path.join(manifest_dir, f"{split}.{e}"))]
    for ext in exts:
        path = os.path.join(manifest_dir, f"{split}.{ext}")
        if not os.path.isfile(path):
            raise AugmentError(f"{path}: missing (every split has .{ext} beside its .tsv)")
        ext_lines = _read_lines(path)
        if len(ext_lines) != len(utts):
            raise AugmentError(f"{path}: {len(ext_lines)} lines, but {tsv} has {len(utts)} utterances")
        for u, text in zip(utts, ext_lines):
            u.lines[ext] = text
    return utts, exts


def check_audio(utts, progress=True):
    """Every source file readable (header); one error naming each bad file and its line."""
    bad = []
    for u in tqdm(utts, desc="checking audio", unit="file", disable=not progress):
        try:
            audio_num_samples(u.path)
        except AudioError as e:
            bad.append(f"{u.where}: {e}")
    if bad:
        raise AugmentError(f"{len(bad)} bad audio file(s); nothing written", bad)


# ------------------------------------------------------------------------- generation

def copy_filename(uid, copy_name):
    """Relative wav path of one copy; ids are paths like ``spk/utt`` (FSC), kept as dirs."""
    parts = uid.split("/")
    if any(p in ("", ".", "..") for p in parts):
        parts = [uid.replace("/", "__")]
    return os.path.join(*parts[:-1], f"{parts[-1]}-{copy_name}.wav")


@dataclass(frozen=True)
class Job:
    src: str
    uid: str
    where: str  # manifest line, for errors
    outputs: tuple  # ((CopySpec, absolute out path), ...)


def _run_job(job, cfg):
    """Write the job's missing copies; returns the length of each (in outputs order)."""
    lengths, wav = [], None
    for copy, out in job.outputs:
        if os.path.isfile(out):  # written atomically by an earlier run with these settings
            lengths.append(sf.info(out).frames)
            continue
        if wav is None:
            try:  # the header was checked, but the data can still be corrupt
                wav = read_audio(job.src)
            except AudioError as e:
                raise AugmentError(f"{job.where}: {e}; the split was not written") from None
        pcm = to_pcm16(apply_copy(wav, copy, cfg, job.uid))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        atomic_save_bytes(out, lambda tmp: sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV"))
        lengths.append(len(pcm))
    return lengths


_WORKER_CFG = None


def _init_worker(cfg):
    global _WORKER_CFG
    torch.set_num_threads(1)  # one thread per process: fast, and the same FFT paths everywhere
    _WORKER_CFG = cfg


def _worker(job):
    return _run_job(job, _WORKER_CFG)


def generate(jobs, cfg, n_jobs=1, progress=True):
    """Lengths per job, generated in ``n_jobs`` processes (order and bytes independent of it)."""
    bar = tqdm(total=len(jobs), desc="augmenting", unit="utt", disable=not progress)
    results = []
    with bar:
        if n_jobs <= 1:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for job in jobs:
                    results.append(_run_job(job, cfg))
                    bar.update()
            finally:
                torch.set_num_threads(threads)
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(n_jobs, initializer=_init_worker, initargs=(cfg,)) as pool:
                for res in pool.imap(_worker, jobs, chunksize=4):
                    results.append(res)
                    bar.update()
    return results


# ---------------------------------------------------------------------- the new split

@dataclass
class AugmentResult:
    split: str
    n_original: int
    n_copies: int
    audio_dir: str
    audio_s: float  # seconds of source audio processed in this run
    wall_s: float


def _split_contents(utts, exts, jobs, lengths):
    """Text of every file of the new split: originals first, then the copies."""
    entries = [(u.path, u.n_samples, u.lines) for u in utts]
    for u, job, lens in zip(utts, jobs, lengths):
        for (copy, out), n in zip(job.outputs, lens):
            lines = dict(u.lines, id=f"{u.lines['id']}-{copy.name}")
            entries.append((out, n, lines))
    root = os.path.commonpath([os.path.dirname(p) for p, _, _ in entries])
    files = {"tsv": [root] + [f"{os.path.relpath(p, root)}\t{n}" for p, n, _ in entries]}
    for ext in exts:
        files[ext] = [lines[ext] for _, _, lines in entries]
    return {ext: "".join(line + "\n" for line in ls) for ext, ls in files.items()}


def write_split_files(manifest_dir, out_split, contents):
    """All files at once (``.tmp`` then rename); drops files that would no longer match."""
    old_tsv = os.path.join(manifest_dir, f"{out_split}.tsv")
    unchanged = os.path.isfile(old_tsv) and open(old_tsv, encoding="utf-8").read() == contents["tsv"]
    with contextlib.ExitStack() as stack:
        for ext, text in contents.items():
            path = os.path.join(manifest_dir, f"{out_split}.{ext}")
            stack.enter_context(atomic_write(path, encoding="utf-8")).write(text)
    stale = [f"{out_split}.{e}" for e in OPTIONAL_EXTS if e not in contents]
    if not unchanged:  # units of an older version of this split are misaligned now
        stale += [n for n in os.listdir(manifest_dir)
                  if n.startswith(f"{out_split}.") and (n.endswith(".units") or ".units." in n)]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(manifest_dir, name))


def augment_split(manifest_dir, split, cfg, out_split=None, audio_dir=None, n_jobs=1, progress=True):
    """Write the perturbed copies of ``split`` and the split ``out_split`` (originals +
    copies).  Every input is checked before anything is written."""
    cfg.check()
    out_split = out_split or f"{split}_aug"
    if out_split == split:
        raise AugmentError(f"the new split must not overwrite {split!r}")
    utts, exts = read_split(manifest_dir, split)
    if not utts:
        raise AugmentError(f"{os.path.join(manifest_dir, split + '.tsv')}: no utterances")
    check_audio(utts, progress)
    # one directory per settings hash: a rerun may keep only files made with these settings
    audio_dir = audio_dir or os.path.join(manifest_dir, "audio", out_split)
    base = os.path.abspath(os.path.join(audio_dir, cfg.digest()))
    plan = copy_plan(cfg)
    jobs = [Job(u.path, u.lines["id"], u.where, tuple((c, os.path.join(base, copy_filename(u.lines["id"], c.name)))
                                              for c in plan)) for u in utts]
    t0 = time.perf_counter()
    todo = [sum(not os.path.isfile(out) for _, out in j.outputs) for j in jobs]
    os.makedirs(base, exist_ok=True)
    with atomic_write(os.path.join(base, "augment.json"), encoding="utf-8") as f:
        json.dump({"algo_version": ALGO_VERSION, **dataclasses.asdict(cfg)}, f, indent=1)
    lengths = generate(jobs, cfg, n_jobs, progress)
    wall = time.perf_counter() - t0
    write_split_files(manifest_dir, out_split, _split_contents(utts, exts, jobs, lengths))
    # speed unit: seconds of source audio turned into one copy, per wall-clock second
    audio_s = sum(u.n_samples * k for u, k in zip(utts, todo)) / SAMPLE_RATE
    logger.info("%s: %d utterances + %d copies (%d written now) in %s",
                out_split, len(utts), len(utts) * len(plan), sum(todo), base)
    return AugmentResult(out_split, len(utts), len(utts) * len(plan), base, audio_s, wall)
