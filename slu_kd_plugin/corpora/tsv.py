"""Generic corpus: one TSV per split with header ``path<TAB>transcript<TAB>intent``
(optional columns ``speaker`` and ``id``, any order).  Paths are relative to the
TSV's own directory (absolute ones are kept), so a corpus dir can be moved whole.
The intent is one string (spaces allowed; ``|`` is not) and becomes
``{"intent": value}`` in labels.json.
"""
import os

from .manifest import CorpusError, Utterance, require_columns

REQUIRED_COLUMNS = ("path", "transcript", "intent")
OPTIONAL_COLUMNS = ("speaker", "id")


def _header(tsv_path, line):
    header = line.rstrip("\r\n").split("\t")
    require_columns(tsv_path, header, REQUIRED_COLUMNS)
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise CorpusError(
            f"{tsv_path}:1: unknown or repeated column(s) {unknown or header}; allowed: "
            f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    return header


def _row_utterance(tsv_path, header, line, lineno):
    where = f"{tsv_path}:{lineno}"
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != len(header):
        raise ValueError(f"{where}: {len(fields)} tab-separated fields, header has {len(header)}")
    row = dict(zip(header, (f.strip() for f in fields)))
    empty = [c for c in REQUIRED_COLUMNS if not row[c]]
    if empty:
        raise ValueError(f"{where}: empty value in column(s) {', '.join(empty)}")
    uid = row.get("id") or os.path.splitext(row["path"])[0].replace(os.sep, "/")
    path = os.path.join(os.path.dirname(os.path.abspath(tsv_path)), row["path"])
    slots = {"intent": row["intent"]}
    return Utterance(uid, path, row["transcript"], slots, row.get("speaker") or None, where)


def load_tsv(tsv_path):
    """Utterances of one split TSV; every bad row is named (file:line) in one CorpusError."""
    if not os.path.isfile(tsv_path):
        raise CorpusError(f"{tsv_path}: file not found")
    with open(tsv_path, encoding="utf-8-sig") as f:
        lines = f.readlines()
    if not lines:
        raise CorpusError(f"{tsv_path}: empty file (expected a header line)")
    header = _header(tsv_path, lines[0])
    utts, problems = [], []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            utts.append(_row_utterance(tsv_path, header, line, lineno))
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise CorpusError(f"{tsv_path}: {len(problems)} bad row(s)", problems)
    return utts
