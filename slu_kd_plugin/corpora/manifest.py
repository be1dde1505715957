"""Write the splits of a manifest dir (see docs/CONTRACTS.md, "Manifest dir").

Every corpus reader turns its own layout into a list of :class:`Utterance`; this
module is the single place that checks them and writes the line-aligned files
``{split}.tsv/.txt/.ltr/.id`` (+ ``.label``, + ``.spk`` when the corpus names its
speakers) and merges ``labels.json``.  All checks
run before anything is written, and every file goes through ``atomic_write``, so a
failed run never leaves a half-written or misaligned split under the final names.
"""
import contextlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Optional

from tqdm import tqdm

from ..audio import AudioError, audio_num_samples, read_audio
from ..utils import atomic_write
from .labels import encode_intent, to_ltr

logger = logging.getLogger(__name__)

LABELS_JSON = "labels.json"
BAD_AUDIO_POLICIES = ("error", "skip")
AUDIO_CHECKS = ("header", "decode")


@dataclass
class Utterance:
    """One utterance as a corpus reader found it."""

    uid: str
    path: str  # audio file; made absolute when written
    transcript: str
    slots: Optional[dict] = None  # e.g. {"action":..., "object":..., "location":...}
    speaker: Optional[str] = None
    origin: str = ""  # "file:line" that defined it, so errors can point there


@dataclass
class SplitResult:
    """A checked split: what will be (or was) written, so callers can chain splits."""

    split: str
    utterances: list  # the good ones, in order
    skipped: list  # [(path, reason)]
    contents: dict = field(repr=False)  # extension -> file text
    slots_by_token: dict = field(repr=False)

    @property
    def n_written(self):
        return len(self.utterances)

    @property
    def labels(self):
        """Intent tokens of the written utterances (the training label set for train)."""
        return set(self.slots_by_token)


class CorpusError(ValueError):
    """Problems in a corpus, all listed in one message (one line each)."""

    def __init__(self, summary, problems=()):
        self.problems = list(problems)
        lines = [summary] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _where(utt):
    return utt.origin or utt.path


def _utterance_problems(utt, seen_uids):
    """Text-level problems (always errors, whatever the bad-audio policy)."""
    problems = []
    if not utt.uid or any(c.isspace() for c in utt.uid):
        problems.append(f"{_where(utt)}: utterance id {utt.uid!r} is empty or has whitespace")
    elif utt.uid in seen_uids:
        problems.append(
            f"{_where(utt)}: duplicate utterance id {utt.uid!r} (also {seen_uids[utt.uid]})"
        )
    seen_uids.setdefault(utt.uid, _where(utt))
    if any(c in str(utt.path) for c in "\t\r\n"):
        problems.append(f"{_where(utt)}: audio path {utt.path!r} contains a tab or newline")
    if not utt.transcript.split():
        problems.append(f"{_where(utt)}: empty transcript")
    if utt.speaker is not None and (not utt.speaker or any(c.isspace() for c in utt.speaker)):
        # {split}.spk holds one token per line: a blank or spaced id would misalign it
        problems.append(f"{_where(utt)}: speaker id {utt.speaker!r} is empty or has whitespace")
    return problems


def _speaker_problems(utts):
    """A {split}.spk line per utterance or none at all: half-known speakers are an error
    (a per-speaker score over the known half would look complete and not be)."""
    known = [u.speaker is not None for u in utts]
    if any(known) and not all(known):
        first = next(u for u, k in zip(utts, known) if not k)
        return [f"some utterances have a speaker and some not, e.g. {_where(first)} has none"]
    return []


def _encode_all(utts, known_labels):
    """Intent token per utterance (None without slots), plus problems found."""
    problems, tokens, by_token = [], [], {}
    has_slots = {u.slots is not None for u in utts}
    if len(has_slots) > 1:
        missing = [_where(u) for u in utts if u.slots is None]
        problems.append(f"some utterances have an intent and some not, e.g. {missing[0]}")
    for u in utts:
        if u.slots is None:
            tokens.append(None)
            continue
        try:
            tok = encode_intent(u.slots)
        except ValueError as e:
            problems.append(f"{_where(u)}: {e}")
            tokens.append(None)
            continue
        tokens.append(tok)
        if by_token.setdefault(tok, u.slots) != u.slots:
            problems.append(
                f"{_where(u)}: intent {u.slots} and {by_token[tok]} both encode to {tok!r}"
            )
        if known_labels is not None and tok not in known_labels:
            problems.append(f"{_where(u)}: intent {tok!r} does not occur in the training labels")
    return tokens, problems


def _check_audio(utts, split, resample, check):
    """Length at 16 kHz per utterance (None if bad) and the (path, reason) of bad ones."""
    lengths, bad = [], []
    for u in tqdm(utts, desc=f"{split}: checking audio", unit="file", disable=None):
        try:
            if check == "decode":
                n = len(read_audio(u.path, resample=resample))
            else:
                n = audio_num_samples(u.path, resample=resample)
        except AudioError as e:
            lengths.append(None)
            bad.append((u.path, e.reason))
            continue
        lengths.append(n)
    return lengths, bad


def _merge_labels(out_dir, results):
    """labels.json merged with the splits' intents; a token meaning two things is an error."""
    path = os.path.join(out_dir, LABELS_JSON)
    merged = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                merged = json.load(f)
        except (OSError, ValueError) as e:
            raise CorpusError(f"{path}: cannot read existing labels ({e})") from None
    for r in results:
        for tok, slots in r.slots_by_token.items():
            if merged.setdefault(tok, slots) != slots:
                raise CorpusError(
                    f"{path}: intent token {tok!r} already means {merged[tok]}, not {slots}"
                )
    return dict(sorted(merged.items()))


def _manifest_lines(good, root):
    """Contents of each per-split file, built in memory so writing is all-or-nothing."""
    lines = {"tsv": [root], "txt": [], "ltr": [], "id": [], "label": [], "spk": []}
    for utt, n, tok in good:
        lines["tsv"].append(f"{os.path.relpath(utt.path, root)}\t{n}")
        lines["txt"].append(" ".join(utt.transcript.split()))
        lines["ltr"].append(to_ltr(utt.transcript))
        lines["id"].append(utt.uid)
        if tok is not None:
            lines["label"].append(tok)
        if utt.speaker is not None:
            lines["spk"].append(utt.speaker)
    for optional in ("label", "spk"):
        if not lines[optional]:
            del lines[optional]
    return {ext: "".join(line + "\n" for line in ls) for ext, ls in lines.items()}


def check_split(
    split,
    utterances,
    on_bad_audio="error",
    known_labels=None,
    skipped=(),
    resample=True,
    check="header",
):
    """Check ``utterances`` for split ``split`` and build its files, writing nothing.

    - ``on_bad_audio="error"``: any missing/unreadable/empty audio (or non-16 kHz with
      ``resample=False``) raises one :class:`CorpusError` listing every bad file and
      why.  ``"skip"``: bad files are left out and listed in ``{split}.skipped.tsv``
      (path<TAB>reason) with a warning -- never dropped silently.
    - ``skipped``: (path, reason) problems the corpus reader already found (e.g.
      audio with no matching intent); handled exactly like bad audio.
    - ``known_labels``: the training intent tokens; an intent outside them (a
      valid/test label the classifier can never predict) is an error naming its
      ``origin`` (file:line).  Text problems are errors whatever the policy.
    - ``check="header"`` reads only headers (fast); ``"decode"`` decodes each file.
    """
    if on_bad_audio not in BAD_AUDIO_POLICIES:
        raise ValueError(f"on_bad_audio must be one of {BAD_AUDIO_POLICIES}, not {on_bad_audio!r}")
    if check not in AUDIO_CHECKS:
        raise ValueError(f"check must be one of {AUDIO_CHECKS}, not {check!r}")
    utts = [replace(u, path=os.path.abspath(os.fspath(u.path))) for u in utterances]
    seen = {}
    problems = [p for u in utts for p in _utterance_problems(u, seen)] + _speaker_problems(utts)
    tokens, label_problems = _encode_all(utts, known_labels)
    if problems or label_problems:
        raise CorpusError(f"split {split!r}: cannot write", problems + label_problems)

    lengths, bad = _check_audio(utts, split, resample, check)
    bad = list(skipped) + bad
    if bad and on_bad_audio == "error":
        raise CorpusError(
            f"split {split!r}: {len(bad)} bad audio file(s); nothing written "
            "(use --on-bad-audio skip to write the others)",
            [f"{p}: {r}" for p, r in bad],
        )
    good = [(u, n, t) for u, n, t in zip(utts, lengths, tokens) if n is not None]
    if not good:
        raise CorpusError(f"split {split!r}: no usable utterances", [f"{p}: {r}" for p, r in bad])
    root = os.path.commonpath([os.path.dirname(u.path) for u, _, _ in good])
    return SplitResult(
        split=split,
        utterances=[u for u, _, _ in good],
        skipped=bad,
        contents=_manifest_lines(good, root),
        slots_by_token={t: u.slots for u, _, t in good if t is not None},
    )


def _split_files(result):
    """(file name, text) of one split, and names an older run may have left behind."""
    files = {f"{result.split}.{ext}": text for ext, text in result.contents.items()}
    stale = [f"{result.split}.{ext}" for ext in ("label", "spk") if ext not in result.contents]
    skipped_name = f"{result.split}.skipped.tsv"
    if result.skipped:
        files[skipped_name] = "".join(f"{p}\t{r}\n" for p, r in result.skipped)
    else:
        stale.append(skipped_name)
    return files, stale


def write_splits(out_dir, results, extra_files=None, stale_files=()):
    """Write checked splits: every file goes to ``.tmp`` first and is renamed only once
    all of them were written, so a failure leaves no split half-written.
    ``extra_files`` ({name: text}) are written the same way (e.g. speakers.tsv);
    ``stale_files`` are names to remove after writing, like a split's stale files."""
    labels = _merge_labels(out_dir, results) if any(r.slots_by_token for r in results) else None
    os.makedirs(out_dir, exist_ok=True)
    stale = list(stale_files)
    with contextlib.ExitStack() as stack:
        for name, text in (extra_files or {}).items():
            stack.enter_context(atomic_write(os.path.join(out_dir, name))).write(text)
        if labels is not None:
            f = stack.enter_context(atomic_write(os.path.join(out_dir, LABELS_JSON)))
            json.dump(labels, f, indent=1, ensure_ascii=False)
        for r in results:
            files, old = _split_files(r)
            stale += old
            for name, text in files.items():
                stack.enter_context(atomic_write(os.path.join(out_dir, name))).write(text)
    # Files a previous run wrote that these splits no longer have would be misread.
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))
    for r in results:
        _report(out_dir, r)


def write_split(out_dir, split, utterances, **kwargs):
    """:func:`check_split` then write it into ``out_dir``; returns the SplitResult
    (``n_written``, ``skipped`` list of (path, reason), ``labels``).  Raises
    CorpusError, before writing anything, on any problem the policy does not skip."""
    result = check_split(split, utterances, **kwargs)
    write_splits(out_dir, [result])
    return result


def _report(out_dir, result):
    split = result.split
    empty = [u.uid for u in result.utterances if not to_ltr(u.transcript)]
    if empty:
        logger.warning(
            "%s: %d transcript(s) have no CTC letters (empty .ltr line), e.g. %s",
            split, len(empty), ", ".join(empty[:5]),
        )
    if result.skipped:
        logger.warning(
            "%s: skipped %d bad file(s), listed in %s",
            split, len(result.skipped), os.path.join(out_dir, f"{split}.skipped.tsv"),
        )
    logger.info("%s: wrote %d utterances to %s", split, result.n_written, out_dir)


def require_columns(path, header, required):
    """Readers' header check: the error names the file and every missing column."""
    missing = [c for c in required if c not in header]
    if missing:
        raise CorpusError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the header has {list(header)}"
        )
