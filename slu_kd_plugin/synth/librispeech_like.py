"""A paired speech-text corpus in LibriSpeech's real layout.

    ROOT/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    ROOT/<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt    "ID TRANSCRIPT" (upper case)

It stands in for LibriSpeech in speech-BERT and CTC pretraining, so it is larger and
more varied than the command corpus: sentences come from a small seeded grammar
whose vocabulary overlaps the command words (rooms, household objects, actions,
languages) inside everyday narrative, questions and requests.  Speakers differ
between splits, as in LibriSpeech.
"""
import os
import random
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from ..utils import atomic_write
from .tts import SAMPLE_RATE, Job, output_is_current, render, write_stamp
from .voices import DEFAULT_POOL_SIZE, Speaker, held_out_pool, speaker_pool

W = str.split  # vocabulary lists are written as one string each to keep them compact
PEOPLE = W("mary john anna peter thomas margaret william lucy henry alice george "
           "martha charles emily robert")
GROUPS = ["the old man", "my sister", "our neighbour", "the children", "the teacher",
          "his father", "the doctor", "a young woman", "the farmer", "her mother",
          "the captain", "my grandmother", "the boy", "the girls", "the stranger"]
ROOMS = W("kitchen bedroom washroom hall garden cellar attic study library office") + [
    "living room", "dining room"]
THINGS = W("lights lamp heater radio window door table chair curtains stove kettle clock "
           "candle fire newspaper book letter shoes socks coat hat juice tea coffee bread "
           "milk piano music television phone blanket basket key glass box")
LANGUAGES = W("english german chinese korean french spanish italian latin")
ADJ = W("old warm cold bright dark quiet loud small large heavy new wet broken clean red "
        "blue green little strange beautiful empty")
VT = W("opened closed brought carried found lost moved cleaned bought fetched dropped "
       "lifted mended painted wanted read hid washed")
VI = W("walked waited laughed slept listened sang smiled hurried returned spoke stayed "
       "wondered worked")
ADV = ["slowly", "quietly", "suddenly", "carefully", "at once", "again", "gladly", "softly"]
TIMES = ["in the morning", "at night", "after dinner", "before breakfast", "on sunday",
         "every evening", "that winter", "for a long time", "once more", "all day",
         "in the afternoon", "the next day"]
FEELINGS = W("hot cold loud quiet dark bright")
SWITCH = [("turn on", "turn off"), ("switch on", "switch off"), ("put on", "shut off")]
CHANGE = [("increase", "decrease"), ("turn up", "turn down"), ("raise", "lower")]
LEVELS = ["the heat", "the volume", "the temperature", "the heating", "the music"]
COMPARATIVES = W("louder quieter warmer cooler")
PLAY = W("play pause stop start resume")
FETCH = W("bring fetch get")


def _subject(r: random.Random) -> str:
    return r.choice(PEOPLE) if r.random() < 0.5 else r.choice(GROUPS)


def _thing(r: random.Random) -> str:
    return f"the {r.choice(ADJ) + ' ' if r.random() < 0.5 else ''}{r.choice(THINGS)}"


_COMMANDS = (  # requests in the command corpus' own words, so they recur in context
    lambda r: f"{r.choice(r.choice(SWITCH))} the {r.choice(['lights', 'lamp', 'music', 'radio'])}"
              f" in the {r.choice(ROOMS)}",
    lambda r: f"{r.choice(r.choice(CHANGE))} {r.choice(LEVELS)}",
    lambda r: f"{r.choice(FETCH)} {r.choice(['me', 'us', 'her', 'him'])} "
              f"{r.choice([_thing(r), 'some juice', 'the paper'])}",
    lambda r: f"{r.choice(['change', 'set'])} the language to {r.choice(LANGUAGES)}",
    lambda r: f"make {r.choice(['it', 'the ' + r.choice(ROOMS)])} {r.choice(COMPARATIVES)}",
    lambda r: f"{r.choice(PLAY)} {r.choice(['the music', 'some music', 'a song', 'playing'])}",
)


def _command(r: random.Random) -> str:
    return r.choice(_COMMANDS)(r)


_TEMPLATES = (
    lambda r: f"{_subject(r)} {r.choice(VT)} {_thing(r)} in the {r.choice(ROOMS)} {r.choice(TIMES)}",
    lambda r: f"{_subject(r)} {r.choice(VI)} {r.choice(ADV)} {r.choice(TIMES)}",
    lambda r: f"{_subject(r)} asked {_subject(r)} to {_command(r)}",
    lambda r: f"it was too {r.choice(FEELINGS)} in the {r.choice(ROOMS)} so {_subject(r)} "
              f"{r.choice(VT)} {_thing(r)}",
    lambda r: f"{_subject(r)} spoke {r.choice(LANGUAGES)} and {r.choice(LANGUAGES)} but "
              f"never learned {r.choice(LANGUAGES)}",
    lambda r: f"there was {_thing(r).replace('the ', 'a ', 1)} on the {r.choice(THINGS)} "
              f"near the {r.choice(ROOMS)} door",
    lambda r: f"when {_subject(r)} came home {_thing(r)} in the {r.choice(ROOMS)} seemed "
              f"{r.choice(ADJ)}",
    lambda r: f"please {_command(r)} {r.choice(['now', 'for me', 'before dinner', 'tonight'])}",
    lambda r: f"where did you put {r.choice(['my', 'the', 'our'])} {r.choice(THINGS)}",
    lambda r: f"why is {_thing(r)} so {r.choice(ADJ)} {r.choice(TIMES)}",
    lambda r: f"{_subject(r)} said that {_thing(r)} in the {r.choice(ROOMS)} "
              f"{r.choice(['was broken', 'needed cleaning', 'was missing', 'felt warm'])}",
    lambda r: f"{_subject(r)} {r.choice(VI)} in the {r.choice(ROOMS)} and {_subject(r)} "
              f"{r.choice(VT)} {_thing(r)}",
    lambda r: f"i don't think {_subject(r)} can {_command(r)} {r.choice(TIMES)}",
    lambda r: f"{_subject(r)} can't hear {r.choice(['the music', 'the radio', 'you'])} because "
              f"it's too {r.choice(['loud', 'quiet'])} in the {r.choice(ROOMS)}",
    lambda r: f"i want {_thing(r)} but i need {_thing(r)}",
    lambda r: f"{_subject(r)} told me to go and {_command(r)}",
    lambda r: f"that's {r.choice(['less', 'more'])} {r.choice(ADJ)} than {_thing(r)}",
    lambda r: f"{_subject(r)} changed the settings on the device {r.choice(TIMES)}",
    lambda r: f"{_subject(r)} wanted to practice {r.choice(LANGUAGES)} with a different "
              f"teacher so please use {r.choice(LANGUAGES)}",
    lambda r: f"{_subject(r)} said kill the lights and {_command(r)}",
)


def sentences(n: int, seed: int) -> List[str]:
    """``n`` distinct lower-case sentences, a function of ``seed``."""
    r = random.Random(f"librispeech-sentences:{seed}")
    out, seen = [], set()
    while len(out) < n:
        s = " ".join(r.choice(_TEMPLATES)(r).split())
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


@dataclass
class LibriSynthConfig:
    utterances: int = 800
    speakers: int = 24
    splits: str = "train-clean-100=0.9,dev-clean=0.1"  # name=weight, comma-separated
    seed: int = 1
    utts_per_chapter: int = 25
    # "espeak": espeak-ng voices only; "wide": every training timbre of the held-out voice
    # plan (espeak-ng, flite, festival diphone; never a held-out test voice)
    voices: str = "espeak"

    def split_weights(self) -> List[Tuple[str, float]]:
        try:
            pairs = [(k.strip(), float(v)) for k, v in
                     (item.split("=") for item in self.splits.split(",") if item.strip())]
        except ValueError:
            raise ValueError(f"--splits {self.splits!r}: expected name=weight,name=weight")
        if not pairs or any(w <= 0 for _, w in pairs) or len({k for k, _ in pairs}) < len(pairs):
            raise ValueError(f"--splits {self.splits!r}: names distinct, weights > 0")
        if self.speakers < len(pairs) or self.utterances < self.speakers:
            raise ValueError("need at least one speaker per split and one utterance per speaker")
        return pairs


class Utterance(NamedTuple):
    split: str
    speaker_id: int
    chapter_id: int
    utt_id: str
    text: str        # lower case, as spoken; transcripts are written upper case
    speaker: Speaker
    seed: int


def _shares(total: int, weights: List[float], minimum: int) -> List[int]:
    """Split ``total`` proportionally to ``weights``, each share >= ``minimum``."""
    shares = [max(minimum, int(total * w / sum(weights))) for w in weights]
    shares[int(np.argmax(weights))] += total - sum(shares)
    return shares


def plan(cfg: LibriSynthConfig) -> List[Utterance]:
    """Every utterance of the corpus, decided from ``cfg`` before any audio exists."""
    pairs = cfg.split_weights()
    weights = [w for _, w in pairs]
    rng = random.Random(f"librispeech:{cfg.seed}")
    if cfg.voices == "wide":
        voices, _ = held_out_pool(cfg.seed, cfg.speakers, 0, salt="librispeech")
    elif cfg.voices == "espeak":
        voices = speaker_pool(cfg.seed, max(DEFAULT_POOL_SIZE, cfg.speakers), salt="librispeech")
        voices = rng.sample(voices, cfg.speakers)
    else:
        raise ValueError(f"--voices must be espeak or wide, not {cfg.voices!r}")
    spk_ids = rng.sample(range(10, 9000), cfg.speakers)        # LibriSpeech-like numbers
    chapter_ids = iter(rng.sample(range(100, 300000), cfg.utterances))
    texts = iter(sentences(cfg.utterances, cfg.seed))
    n_spk = _shares(cfg.speakers, weights, 1)
    n_utt = _shares(cfg.utterances, weights, 1)
    if any(u < s for s, u in zip(n_spk, n_utt)):
        raise ValueError(f"--splits {cfg.splits!r}: a split gets fewer utterances than speakers")
    utts, k = [], 0
    for (split, _), spk_here, utt_here in zip(pairs, n_spk, n_utt):
        for j, count in enumerate(_shares(utt_here, [1.0] * spk_here, 1)):
            for i in range(count):
                if i % cfg.utts_per_chapter == 0:
                    chapter = next(chapter_ids)
                seed = int(np.random.SeedSequence([cfg.seed, k + j, i]).generate_state(1)[0])
                utts.append(Utterance(split, spk_ids[k + j], chapter,
                                      f"{spk_ids[k + j]}-{chapter}-{i % cfg.utts_per_chapter:04d}",
                                      next(texts), voices[k + j], seed))
        k += spk_here
    return utts


def _chapter_dir(root: str, u: Utterance) -> str:
    return os.path.join(root, u.split, str(u.speaker_id), str(u.chapter_id))


def _write_transcripts(root: str, utts: List[Utterance]) -> None:
    chapters: Dict[str, List[Utterance]] = {}
    for u in utts:
        chapters.setdefault(_chapter_dir(root, u), []).append(u)
    for d, group in chapters.items():
        name = f"{group[0].speaker_id}-{group[0].chapter_id}.trans.txt"
        with atomic_write(os.path.join(d, name)) as f:
            f.writelines(f"{u.utt_id} {u.text.upper()}\n" for u in group)


def write_corpus(root: str, cfg: LibriSynthConfig, n_jobs: int = 2,
                 progress: bool = True) -> Dict[str, dict]:
    """Generate the corpus under ``root``; returns per-split counts and hours.

    Same re-run rules as the command corpus; the transcripts are written last.
    """
    utts = plan(cfg)
    markers = [os.path.join(root, split) for split, _ in cfg.split_weights()]
    keep = output_is_current(root, cfg, markers)
    jobs = [Job(os.path.join(_chapter_dir(root, u), f"{u.utt_id}.flac"), u.text, u.speaker,
                u.seed) for u in utts]
    lengths = render(jobs, n_jobs, skip_existing=keep, desc="librispeech", progress=progress)
    write_stamp(root, cfg)
    _write_transcripts(root, utts)
    out = {}
    for split, _ in cfg.split_weights():
        sel = [(u, lengths[j.path]) for u, j in zip(utts, jobs) if u.split == split]
        out[split] = {"utterances": len(sel), "speakers": len({u.speaker_id for u, _ in sel}),
                      "hours": sum(n for _, n in sel) / SAMPLE_RATE / 3600}
    return out
