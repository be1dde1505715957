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
# festival's English voices in Debian (festvox-kallpc16k, festvox-kdlpc16k: diphone;
# festvox-us-slt-hts: HTS, a statistical parametric engine) and their speakers' gender
FESTIVAL_VOICES = {"kal_diphone": "male", "ked_diphone": "male", "cmu_us_slt_arctic_hts": "female"}
FLITE_FEMALE = ("slt",)
NOISE_COLOURS = ("white", "pink", "brown")
DEFAULT_POOL_SIZE = 48
FLITE_EVERY = 0  # every N-th speaker a flite voice (0: none); flite's diphone sound is
                 # far from espeak-ng's, too far for the demo's small offline models


@dataclass(frozen=True)
class Speaker:
    engine: str       # "espeak-ng", "flite" or "festival"
    voice: str        # espeak-ng language voice, flite or festival voice name
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

    @property
    def family(self) -> str:
        """The engine as a listener hears it: festival's diphone and HTS voices sound
        as unlike each other as two engines do."""
        if self.engine == "festival":
            return "festival-hts" if self.voice.endswith("_hts") else "festival-diphone"
        return self.engine

    @property
    def gender(self) -> str:
        if self.engine == "espeak-ng":
            return "female" if self.variant.startswith("f") else "male"
        if self.engine == "flite":
            return "female" if self.voice in FLITE_FEMALE else "male"
        return FESTIVAL_VOICES[self.voice]

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


# The held-out voice plan (``--voices held-out``): what a model meets in test is never
# heard in training, as FSC's test speakers are unseen.  Training and valid speakers
# come from TRAIN_TIMBRES; every test speaker is of a (family, gender) that training
# lacks (flite's female voice, festival's HTS engine) or speaks an espeak-ng accent
# that training lacks.
TRAIN_TIMBRES = (
    [("espeak-ng", v, var) for v in ESPEAK_VOICES for var in ESPEAK_VARIANTS]
    + [("flite", v, "") for v in ("kal", "kal16", "awb", "rms")]
    + [("festival", v, "") for v in ("kal_diphone", "ked_diphone")]
)
TEST_TIMBRES = (
    ("flite", "slt", ""), ("festival", "cmu_us_slt_arctic_hts", ""),
    ("espeak-ng", "en-gb-scotland", "f2"), ("espeak-ng", "en-029", "m3"),
    ("flite", "slt", ""), ("festival", "cmu_us_slt_arctic_hts", ""),
)
# training timbres that are not espeak-ng: every N-th training speaker, so that the
# other engines' male voices are heard in training (their female ones only in test)
OTHER_ENGINE_EVERY = 3


def _draw(rng: random.Random, timbre, seen) -> Speaker:
    engine, voice, variant = timbre
    while True:  # a repeated timbre must differ in rate or pitch
        spk = Speaker(engine, voice, variant, rate=rng.randint(140, 200), pitch=rng.randint(30, 70),
                      noise=rng.choice(NOISE_COLOURS), snr_db=round(rng.uniform(*SNR_RANGE_DB), 1),
                      gain=round(rng.uniform(0.15, 0.9), 3))
        if spk.name not in seen:
            seen.add(spk.name)
            return spk


def training_timbres(rng: random.Random, n: int):
    """``n`` timbres of TRAIN_TIMBRES: espeak-ng ones without repeats, the other
    engines' voices every OTHER_ENGINE_EVERY-th, in turn."""
    espeak = [t for t in TRAIN_TIMBRES if t[0] == "espeak-ng"]
    others = [t for t in TRAIN_TIMBRES if t[0] != "espeak-ng"]
    rng.shuffle(espeak)
    rng.shuffle(others)
    out = []
    for i in range(n):
        if i % OTHER_ENGINE_EVERY == OTHER_ENGINE_EVERY - 1 or not espeak:
            out.append(others[(i // OTHER_ENGINE_EVERY) % len(others)])
        else:
            out.append(espeak.pop())
    return out


def held_out_pool(seed: int, n_train: int, n_test: int, salt: str = ""):
    """(training speakers, test speakers) of the held-out voice plan; the test list is
    empty for ``n_test`` 0 (a pretraining corpus that must never use a test voice)."""
    rng = random.Random(f"held-out-pool:{salt}{seed}")
    seen = set()
    train = [_draw(rng, t, seen) for t in training_timbres(rng, n_train)]
    test = [_draw(rng, TEST_TIMBRES[i % len(TEST_TIMBRES)], seen) for i in range(n_test)]
    return train, test
