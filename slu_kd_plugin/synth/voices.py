"""Synthetic speakers: a TTS voice plus the settings that make it one person.

A speaker is a timbre (engine, voice, variant) with a speaking rate, a pitch, a
background-noise colour and level, and a recording gain.  The pool is built from a
seed alone, so two runs (or two machines) with the same seed hear the same people.
"""
import random
from dataclasses import dataclass
from typing import List

# espeak-ng's own (non-MBROLA) English voices: the MBROLA ones need a binary and
# voice files that are not installed.
# Four accents x twelve plain male/female variants: 48 distinct speakers.  The wider
# set (8 accents, 44 variants incl. klatt/grandma/..., plus flite voices) left the
# demo's unseen-speaker task at chance for units fitted on ~1 h of speech.
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc")
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
)
# flite's general-domain voices (awb_time only speaks clock times) and their
# natural mean F0, used to map a pitch setting onto flite's Hz target.
FLITE_VOICES = {"kal": 105.0, "kal16": 105.0, "awb": 110.0, "rms": 100.0, "slt": 175.0}
NOISE_COLOURS = ("white", "pink", "brown")
DEFAULT_POOL_SIZE = 48
FLITE_EVERY = 0  # every N-th speaker a flite voice (0: none); flite's diphone sound is
                 # far from espeak-ng's, too far for the demo's small offline models


@dataclass(frozen=True)
class Speaker:
    engine: str       # "espeak-ng" or "flite"
    voice: str        # espeak-ng language voice or flite voice name
    variant: str      # espeak-ng variant ("" for flite)
    rate: int         # words per minute (espeak -s); flite gets a duration stretch
    pitch: int        # 0..99, 50 = the voice's own (espeak -p); flite gets an F0 target
    noise: str        # background noise colour
    snr_db: float     # speech-to-noise ratio of that background
    gain: float       # peak level of the recording, 0..1

    @property
    def name(self) -> str:
        timbre = f"{self.voice}+{self.variant}" if self.variant else self.voice
        return f"{self.engine}:{timbre}:s{self.rate}:p{self.pitch}"

    def describe(self) -> str:
        return f"{self.name} {self.noise}@{self.snr_db:.0f}dB gain={self.gain:.2f}"


def _timbres(rng: random.Random, size: int):
    """``size`` (engine, voice, variant) triples; espeak ones never repeat."""
    espeak = [(v, var) for v in ESPEAK_VOICES for var in ESPEAK_VARIANTS]
    rng.shuffle(espeak)
    flite = sorted(FLITE_VOICES)
    rng.shuffle(flite)
    out = []
    for i in range(size):
        if FLITE_EVERY and i % FLITE_EVERY == FLITE_EVERY - 1:
            out.append(("flite", flite[(i // FLITE_EVERY) % len(flite)], ""))
        else:
            voice, variant = espeak.pop()
            out.append(("espeak-ng", voice, variant))
    return out


# Background noise per speaker.  With 5-25 dB (and the wider voice set above) the
# demo's 10% baseline on unseen speakers was at chance (4%).
SNR_RANGE_DB = (15.0, 30.0)


def speaker_pool(seed: int, size: int = DEFAULT_POOL_SIZE, salt: str = "") -> List[Speaker]:
    """``size`` distinct speakers, identical for identical ``seed`` and ``salt``.

    ``salt`` gives another population from the same seed (the read-speech corpus
    should not be spoken by exactly the command corpus' people).
    """
    max_size = len(ESPEAK_VOICES) * len(ESPEAK_VARIANTS)
    if size > max_size:
        raise ValueError(f"at most {max_size} distinct speakers, asked for {size}")
    rng = random.Random(f"speaker-pool:{salt}{seed}")
    pool, seen = [], set()
    for engine, voice, variant in _timbres(rng, size):
        while True:  # a repeated flite voice must differ in rate or pitch
            spk = Speaker(
                engine, voice, variant,
                rate=rng.randint(140, 200), pitch=rng.randint(30, 70),
                noise=rng.choice(NOISE_COLOURS), snr_db=round(rng.uniform(*SNR_RANGE_DB), 1),
                gain=round(rng.uniform(0.15, 0.9), 3),
            )
            if spk.name not in seen:
                break
        seen.add(spk.name)
        pool.append(spk)
    return pool
