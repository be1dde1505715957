"""A small corpus of spoken commands in Fluent Speech Commands' real layout.

    ROOT/data/{train,valid,test}_data.csv   ",path,speakerId,transcription,action,object,location"
    ROOT/wavs/speakers/<speakerId>/<uttid>.wav   16 kHz mono PCM16

Splits are by speaker, as FSC's are: valid and test voices are never heard in
training.  Each speaker says a random subset of the phrasings, so test speakers
also say phrasings that some training speakers never did.
"""
import csv
import os
import random
import uuid
from dataclasses import dataclass
from typing import Dict, List, NamedTuple

import numpy as np

from ..utils import atomic_write
from .commands import all_phrasings
from .tts import SAMPLE_RATE, Job, output_is_current, render, write_stamp
from .voices import DEFAULT_POOL_SIZE, Speaker, held_out_pool, speaker_pool

CSV_HEADER = ["", "path", "speakerId", "transcription", "action", "object", "location"]
SPLITS = ("train", "valid", "test")
VOICE_PLANS = ("espeak", "held-out")
SPEAKERS_FILE = "speakers.tsv"  # speakerId<TAB>voice: what each test voice is, for reports


@dataclass
class FscSynthConfig:
    speakers: int = 30          # in all; valid and test speakers are taken from these
    utts_per_speaker: int = 60
    valid_speakers: int = 5
    test_speakers: int = 5
    seed: int = 1
    # "espeak": every speaker an espeak-ng voice (the demo's corpus); "held-out": the
    # wide voice plan of voices.held_out_pool, whose test voices training never used
    voices: str = "espeak"

    def check(self):
        if self.voices not in VOICE_PLANS:
            raise ValueError(f"--voices must be one of {', '.join(VOICE_PLANS)}, not {self.voices!r}")
        if self.speakers - self.valid_speakers - self.test_speakers < 1:
            raise ValueError(
                f"--speakers {self.speakers} leaves no training speaker after "
                f"{self.valid_speakers} valid and {self.test_speakers} test speakers")
        if min(self.valid_speakers, self.test_speakers, self.utts_per_speaker) < 1:
            raise ValueError("valid/test speakers and utterances per speaker must be >= 1")


class Utterance(NamedTuple):
    split: str
    speaker_id: str
    utt_id: str
    text: str
    intent: tuple   # (action, object, location)
    speaker: Speaker
    seed: int


def _fsc_id(rng: random.Random) -> str:
    # FSC speaker ids are 16 random letters and digits, e.g. "2BqVo8kVB2Skwgyb".
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(rng.choice(alphabet) for _ in range(16))


def _speaker_utterances(rng, split, spk_id, speaker, cfg, index):
    """One speaker's utterances: distinct phrasings while they last."""
    table = all_phrasings()
    picks = []
    while len(picks) < cfg.utts_per_speaker:
        picks += rng.sample(table, min(len(table), cfg.utts_per_speaker - len(picks)))
    return [
        Utterance(split, spk_id, str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                  text, intent, speaker,
                  int(np.random.SeedSequence([cfg.seed, index, j]).generate_state(1)[0]))
        for j, (text, intent) in enumerate(picks)
    ]


def plan(cfg: FscSynthConfig) -> List[Utterance]:
    """Every utterance of the corpus, decided from ``cfg`` before any audio exists."""
    cfg.check()
    rng = random.Random(f"fsc:{cfg.seed}")
    n_held = cfg.valid_speakers + cfg.test_speakers
    if cfg.voices == "held-out":
        heard, unheard = held_out_pool(cfg.seed, cfg.speakers - cfg.test_speakers, cfg.test_speakers)
        speakers = unheard + heard  # valid voices: unseen people of the training families
    else:
        speakers = speaker_pool(cfg.seed, max(DEFAULT_POOL_SIZE, cfg.speakers))
        speakers = rng.sample(speakers, cfg.speakers)
    splits = (["test"] * cfg.test_speakers + ["valid"] * cfg.valid_speakers
              + ["train"] * (cfg.speakers - n_held))
    utts = []
    for index, (split, speaker) in enumerate(zip(splits, speakers)):
        utts += _speaker_utterances(rng, split, _fsc_id(rng), speaker, cfg, index)
    return utts


def _rel_path(u: Utterance) -> str:
    return f"wavs/speakers/{u.speaker_id}/{u.utt_id}.wav"


def _write_csvs(root: str, utts: List[Utterance]) -> None:
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    for split in SPLITS:
        rows = [u for u in utts if u.split == split]
        with atomic_write(os.path.join(root, "data", f"{split}_data.csv"), newline="") as f:
            w = csv.writer(f, lineterminator="\n")  # pandas' to_csv style, as FSC's
            w.writerow(CSV_HEADER)
            for i, u in enumerate(rows):
                w.writerow([i, _rel_path(u), u.speaker_id, u.text, *u.intent])


def _write_speakers(root: str, utts: List[Utterance]) -> None:
    """ROOT/speakers.tsv: each speaker's split and voice, so reports can name the voices."""
    voices = {}
    for u in utts:
        voices.setdefault(u.speaker_id, (u.split, u.speaker))
    with atomic_write(os.path.join(root, SPEAKERS_FILE)) as f:
        for spk_id, (split, spk) in voices.items():
            f.write(f"{spk_id}\t{spk.family}:{spk.name.split(':', 1)[1]} ({spk.gender}, {split})\n")


def write_corpus(root: str, cfg: FscSynthConfig, n_jobs: int = 2,
                 progress: bool = True) -> Dict[str, dict]:
    """Generate the corpus under ``root``; returns per-split counts and hours.

    Re-running with the same config keeps the files already there; a different
    config regenerates every file.  The csvs are written last, so a corpus whose
    csvs exist is complete.
    """
    utts = plan(cfg)
    keep = output_is_current(root, cfg, [os.path.join(root, "wavs")])
    jobs = [Job(os.path.join(root, _rel_path(u)), u.text, u.speaker, u.seed) for u in utts]
    lengths = render(jobs, n_jobs, skip_existing=keep, desc="fsc", progress=progress)
    write_stamp(root, cfg)
    _write_speakers(root, utts)
    _write_csvs(root, utts)
    return _summary(utts, [lengths[j.path] for j in jobs])


def _summary(utts, lengths) -> Dict[str, dict]:
    out = {}
    for split in SPLITS:
        sel = [n for u, n in zip(utts, lengths) if u.split == split]
        out[split] = {
            "utterances": len(sel),
            "speakers": len({u.speaker_id for u in utts if u.split == split}),
            "hours": sum(sel) / SAMPLE_RATE / 3600,
        }
    return out
