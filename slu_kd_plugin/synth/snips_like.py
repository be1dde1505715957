"""A small SNIPS SLU smart-lights corpus in the real layout (corpora/snips.py reads it).

    ROOT/dataset.json                     Snips NLU format: every phrasing of smart_lights
    ROOT/speech_corpus/metadata.json      {key: {filename, text, worker: {id}}}
    ROOT/speech_corpus/audio/<key>.wav    16 kHz mono PCM16
    ROOT/speakers.tsv                     workerId<TAB>voice, e.g. flite:slt:s160:p50 (female)
    ROOT/split.tsv                        workerId<TAB>train|valid|test (not in real SNIPS)

Real SNIPS has no split, and the reader's seeded cut by worker id cannot know which
voices were meant to be unseen; split.tsv records the split this corpus was made for
(``slu-kd-prepare snips --split-file``, which examples/snips/run.sh passes when the
root has one), so the held-out plan's test voices are the ones tested.
"""
import json
import os
import random
from dataclasses import dataclass
from typing import Dict, List, NamedTuple

import numpy as np

from ..corpora.snips import SPLIT_HEADER, SPLIT_TSV
from ..utils import atomic_write
from .fsc_like import SPEAKERS_FILE, FscSynthConfig
from .smart_lights import INTENTS, PHRASINGS, SLOT_VALUES, nlu_data, text_of
from .tts import SAMPLE_RATE, Job, output_is_current, render, write_stamp
from .voices import DEFAULT_POOL_SIZE, Speaker, held_out_pool, speaker_pool

SPLITS = ("train", "valid", "test")
SEED_SALT = 2  # per-utterance seeds differ from an FSC-like corpus of the same seed


@dataclass
class SnipsSynthConfig(FscSynthConfig):
    """The FSC generator's settings and checks; SNIPS-sized defaults (6 intents)."""
    speakers: int = 20
    utts_per_speaker: int = 30
    valid_speakers: int = 3
    test_speakers: int = 3


class Recording(NamedTuple):
    key: str
    split: str
    worker: str
    text: str       # as spoken and written to metadata.json
    intent: str
    speaker: Speaker
    seed: int


def _voices(cfg, rng) -> List[Speaker]:
    """Test speakers first, then valid, then training ones (plan's split order)."""
    if cfg.voices == "held-out":
        heard, unheard = held_out_pool(cfg.seed, cfg.speakers - cfg.test_speakers,
                                       cfg.test_speakers, salt="snips")
        return unheard + heard  # valid voices: unseen people of the training families
    pool = speaker_pool(cfg.seed, max(DEFAULT_POOL_SIZE, cfg.speakers), salt="snips")
    return rng.sample(pool, cfg.speakers)


def _picks(rng, k) -> List[tuple]:
    """``k`` (intent, phrasing) pairs: intents in turn, so even a speaker of 6
    utterances says every intent (no test intent unseen in training), phrasings
    without repeats while they last."""
    order = rng.sample(INTENTS, len(INTENTS))
    rounds = -(-k // len(order))
    drawn = {}
    for intent in order:
        table = PHRASINGS[intent]
        some = rng.sample(table, min(rounds, len(table)))
        drawn[intent] = [some[r % len(some)] for r in range(rounds)]
    return [(order[j % len(order)], drawn[order[j % len(order)]][j // len(order)]) for j in range(k)]


def plan(cfg: SnipsSynthConfig) -> List[Recording]:
    """Every recording of the corpus, decided from ``cfg`` before any audio exists."""
    cfg.check()
    rng = random.Random(f"snips:{cfg.seed}")
    speakers = _voices(cfg, rng)
    splits = (["test"] * cfg.test_speakers + ["valid"] * cfg.valid_speakers
              + ["train"] * (cfg.speakers - cfg.valid_speakers - cfg.test_speakers))
    recs = []
    for index, (split, speaker) in enumerate(zip(splits, speakers)):
        worker = f"{rng.getrandbits(64):016x}"
        for j, (intent, phrasing) in enumerate(_picks(rng, cfg.utts_per_speaker)):
            seed = int(np.random.SeedSequence([SEED_SALT, cfg.seed, index, j]).generate_state(1)[0])
            text = text_of(phrasing)
            recs.append(Recording(str(len(recs)), split, worker, text[0].upper() + text[1:],
                                  intent, speaker, seed))
    return recs


def _dataset() -> dict:
    intents = {name: {"utterances": [{"data": nlu_data(p)} for p in phrasings]}
               for name, phrasings in PHRASINGS.items()}
    entities = {slot: {"data": [{"value": v, "synonyms": []} for v in values],
                       "use_synonyms": True, "automatically_extensible": True,
                       "matching_strictness": 1.0}
                for slot, values in SLOT_VALUES.items()}
    return {"intents": intents, "entities": entities, "language": "en"}


def _write_json(path: str, data) -> None:
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(data, f, indent=1)  # insertion order: metadata keys 0, 1, 2, ...
        f.write("\n")


def _write_lists(root: str, recs: List[Recording]) -> None:
    """speakers.tsv (the voice of each worker, for per-speaker reports) and split.tsv."""
    workers = {}
    for r in recs:
        workers.setdefault(r.worker, r)
    with atomic_write(os.path.join(root, SPEAKERS_FILE)) as f:
        for w, r in workers.items():
            spk = r.speaker
            f.write(f"{w}\t{spk.family}:{spk.name.split(':', 1)[1]} ({spk.gender})\n")
    with atomic_write(os.path.join(root, SPLIT_TSV)) as f:
        f.write(SPLIT_HEADER + "\n")
        f.writelines(f"{w}\t{r.split}\n" for w, r in workers.items())


def write_corpus(root: str, cfg: SnipsSynthConfig, n_jobs: int = 2,
                 progress: bool = True) -> Dict[str, dict]:
    """Generate the corpus under ``root``; returns per-split counts and hours.

    Re-running with the same config keeps the files already there; a different
    config regenerates every file.  metadata.json is written last, so a corpus
    that has it is complete.
    """
    recs = plan(cfg)
    audio = os.path.join(root, "speech_corpus", "audio")
    keep = output_is_current(root, cfg, [audio])
    os.makedirs(audio, exist_ok=True)
    jobs = [Job(os.path.join(audio, f"{r.key}.wav"), r.text, r.speaker, r.seed) for r in recs]
    lengths = render(jobs, n_jobs, skip_existing=keep, desc="snips", progress=progress)
    write_stamp(root, cfg)
    _write_lists(root, recs)
    _write_json(os.path.join(root, "dataset.json"), _dataset())
    _write_json(os.path.join(root, "speech_corpus", "metadata.json"),
                {r.key: {"filename": f"{r.key}.wav", "text": r.text, "worker": {"id": r.worker}}
                 for r in recs})
    return _summary(recs, [lengths[j.path] for j in jobs])


def _summary(recs, lengths) -> Dict[str, dict]:
    return {split: {"utterances": sum(r.split == split for r in recs),
                    "speakers": len({r.worker for r in recs if r.split == split}),
                    "hours": sum(n for r, n in zip(recs, lengths) if r.split == split) / SAMPLE_RATE / 3600}
            for split in SPLITS}
