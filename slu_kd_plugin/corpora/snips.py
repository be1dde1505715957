"""SNIPS SLU smart-lights (``smart-lights-en-close-field/`` or ``...-far-field/``).

Layout: ``dataset.json`` (Snips NLU format: ``{"intents": {NAME: {"utterances":
[{"data": [{"text": ...}, ...]}]}}}``, an utterance's text is its parts joined) and
``speech_corpus/metadata.json`` (``{key: {"filename": "N.wav", "text": ...,
"worker": {"id": SPEAKER}}}``) with the audio in ``speech_corpus/audio/``.

The recordings carry no intent: each is given the intent of the dataset utterance
whose normalized text (see :func:`normalize_text`) equals its own.  Recordings that
match none, or match utterances of two intents, are reported, never guessed.

There is no official split.  :func:`split_speakers` makes a reproducible one BY
SPEAKER (so test speakers are unseen, as in FSC): the sorted worker ids are shuffled
with ``random.Random(seed)`` and cut in order into train/valid/test by
``fractions`` (default 0.8/0.1/0.1 of the speakers, seed 0).  Valid and test get at
least two speakers each when there are 6 or more (one each from 3 to 5): a test split
of one voice would score that voice, not unseen voices.  Utterance counts per split
therefore follow the speakers and are only roughly 80/10/10.

A corpus whose split was decided when it was made (``slu-kd-synth snips`` writes
``ROOT/split.tsv``, so its held-out test voices are the ones tested) passes that file
as ``split_file``: lines ``workerId<TAB>train|valid|test`` (optional header
``workerId<TAB>split``), every worker of metadata.json listed.  It replaces the
seeded cut; a real SNIPS corpus has no such file and keeps it.
"""
import json
import os
import random
import re
import unicodedata

from .manifest import CorpusError, Utterance

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SEED = 0
SPLITS = ("train", "valid", "test")
SPLIT_TSV = "split.tsv"
SPLIT_HEADER = "workerId\tsplit"


def normalize_text(text):
    """Lower case, accents/punctuation removed, whitespace collapsed: what must agree
    between a recording's text and its dataset utterance ("Turn on the lights!" ==
    "turn on  the lights")."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return " ".join(re.sub(r"[^\w']+", " ", text).split())


def _load_json(path):
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise CorpusError(f"{path}: not valid JSON ({e})") from None


def load_intent_texts(dataset_json):
    """``{normalized text: {intent, ...}}`` from a Snips NLU dataset."""
    data = _load_json(dataset_json)
    if not isinstance(data.get("intents"), dict):
        raise CorpusError(f"{dataset_json}: no 'intents' object")
    texts = {}
    for name, intent in data["intents"].items():
        for i, utt in enumerate(intent.get("utterances", [])):
            try:
                text = "".join(part["text"] for part in utt["data"])
            except (KeyError, TypeError):
                raise CorpusError(
                    f"{dataset_json}: intents.{name}.utterances[{i}] has no data[].text"
                ) from None
            texts.setdefault(normalize_text(text), set()).add(name)
    return texts


def _read_recording(metadata_json, key, entry):
    """(filename, text, speaker) of one metadata entry, or CorpusError naming it."""
    try:
        return entry["filename"], entry["text"], str(entry["worker"]["id"])
    except (KeyError, TypeError):
        raise CorpusError(
            f"{metadata_json}: entry {key!r} needs 'filename', 'text' and 'worker': {{'id'}}"
        ) from None


def held_out_minimum(n_speakers):
    """Fewest speakers valid and test each get: 2 from 6 speakers on (so the test score
    is over several unseen voices), 1 from 3, none below (train needs someone)."""
    return 2 if n_speakers >= 6 else 1 if n_speakers >= 3 else 0


def split_speakers(speakers, fractions=DEFAULT_FRACTIONS, seed=DEFAULT_SEED):
    """``{speaker: split}``: shuffled (seeded) sorted speakers cut by ``fractions``,
    valid and test raised to :func:`held_out_minimum` speakers each."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, not {fractions}")
    order = sorted(set(speakers))
    random.Random(seed).shuffle(order)
    n = len(order)
    least = held_out_minimum(n)
    n_valid, n_test = (max(least, round(f * n)) for f in fractions[1:])
    n_test = min(n_test, n - n_valid)  # rounding up both must not overdraw
    n_train = n - n_valid - n_test
    cut = {s: "train" for s in order[:n_train]}
    cut.update({s: "valid" for s in order[n_train : n_train + n_valid]})
    cut.update({s: "test" for s in order[n_train + n_valid :]})
    return cut


def parse_split_file(text, path):
    """``{worker id: split}`` from the text of a split file; CorpusError naming
    ``path:line`` for every malformed line, unknown split or repeated worker."""
    which, problems = {}, []
    for n, line in enumerate(text.splitlines(), 1):
        if n == 1 and line == SPLIT_HEADER:
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0] or cols[1] not in SPLITS:
            problems.append(f"{path}:{n}: expected workerId<TAB>train|valid|test, got {line!r}")
        elif cols[0] in which:
            problems.append(f"{path}:{n}: worker {cols[0]!r} listed twice")
        else:
            which[cols[0]] = cols[1]
    if problems:
        raise CorpusError(f"{path}: malformed split file", problems)
    return which


def read_split_file(path, speakers):
    """``{speaker: split}`` from ``path`` for ``speakers``; each one must be listed
    (a worker the file forgot would otherwise land in a split nobody chose)."""
    try:
        with open(path, encoding="utf-8") as f:
            which = parse_split_file(f.read(), path)
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{path}: cannot read the split file ({e})") from None
    missing = sorted(set(speakers) - set(which))
    if missing:
        raise CorpusError(f"{path}: {len(missing)} worker(s) of metadata.json not listed",
                          [f"worker {w!r}" for w in missing[:10]])
    return which


def _match(texts, text):
    """(intent, None) or (None, reason) for a recording's text."""
    intents = texts.get(normalize_text(text), set())
    if len(intents) == 1:
        return next(iter(intents)), None
    if not intents:
        return None, f"text {text!r} matches no utterance in dataset.json"
    return None, f"text {text!r} matches utterances of several intents {sorted(intents)}"


def load_snips(root, fractions=DEFAULT_FRACTIONS, seed=DEFAULT_SEED, split_file=None):
    """``(splits, unmatched)``: ``{split: [Utterance]}`` and ``{split: [(path, reason)]}``
    for the recordings whose intent could not be determined (pass them to
    ``write_split(skipped=...)`` so they are reported like bad audio).  With
    ``split_file`` the speakers' splits come from it, not from ``fractions``/``seed``."""
    texts = load_intent_texts(os.path.join(root, "dataset.json"))
    metadata_json = os.path.join(root, "speech_corpus", "metadata.json")
    metadata = _load_json(metadata_json)
    if not isinstance(metadata, dict):
        raise CorpusError(f"{metadata_json}: expected an object {{key: recording}}")
    records = [(k, *_read_recording(metadata_json, k, e)) for k, e in metadata.items()]
    speakers = [spk for *_, spk in records]
    which = (read_split_file(split_file, speakers) if split_file
             else split_speakers(speakers, fractions, seed))
    splits = {s: [] for s in SPLITS}
    unmatched = {s: [] for s in SPLITS}
    for key, filename, text, spk in records:
        path = os.path.join(root, "speech_corpus", "audio", filename)
        intent, reason = _match(texts, text)
        if reason:
            unmatched[which[spk]].append((path, reason))
            continue
        uid = os.path.splitext(filename)[0]
        where = f"{metadata_json}: entry {key!r}"
        splits[which[spk]].append(Utterance(uid, path, text, {"intent": intent}, spk, where))
    return splits, unmatched
