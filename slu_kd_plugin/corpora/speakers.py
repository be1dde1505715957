"""``speakers.tsv``: who each speaker id of ``{split}.spk`` is (see docs/CONTRACTS.md).

One line per speaker, ``speakerId<TAB>voice`` (an optional first line
``speakerId<TAB>voice`` is a header); the voice is a short description, e.g.
``flite:slt:s160:p50 (female)`` for a synthetic corpus.  ``slu-kd-prepare`` copies it
from the corpus root into the manifest dir after :func:`read_speakers` accepted it,
and ``slu-kd-evaluate`` names the voice beside each speaker's accuracy.
"""
import os

from .manifest import CorpusError

SPEAKERS_TSV = "speakers.tsv"
HEADER = "speakerId\tvoice"


def parse_speakers(text, path):
    """``{speaker id: voice}`` from the text of a speakers.tsv; CorpusError naming
    ``path:line`` for every malformed line or repeated id."""
    voices, problems, first_line = {}, [], {}
    for n, line in enumerate(text.splitlines(), 1):
        if n == 1 and line == HEADER:
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0] or not cols[1].strip() or any(c.isspace() for c in cols[0]):
            problems.append(f"{path}:{n}: expected speakerId<TAB>voice (2 columns, an id "
                            f"without spaces and a non-empty voice), got {line!r}")
        elif cols[0] in voices:
            problems.append(f"{path}:{n}: speaker {cols[0]!r} already given on line {first_line[cols[0]]}")
        else:
            voices[cols[0]], first_line[cols[0]] = cols[1].strip(), n
    if problems:
        raise CorpusError(f"{path}: malformed speaker list; nothing written", problems)
    return voices


def read_speakers(path):
    """(``{speaker id: voice}``, file text) of a speakers.tsv, validated."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{path}: cannot read the speaker list ({e})") from None
    return parse_speakers(text, path), text


def corpus_speakers(root):
    """The validated text of ``ROOT/speakers.tsv`` to copy, or None without one."""
    path = os.path.join(root, SPEAKERS_TSV)
    if not os.path.isfile(path):
        return None
    _, text = read_speakers(path)
    return text if text.endswith("\n") or not text else text + "\n"
