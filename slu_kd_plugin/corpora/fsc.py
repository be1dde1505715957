"""Fluent Speech Commands: ``data/{train,valid,test}_data.csv`` + ``wavs/speakers/...``.

Columns ``,path,speakerId,transcription,action,object,location`` (the first, unnamed,
is a row index).  ``path`` is relative to the corpus root.  The intent is the
(action, object, location) triple, kept as written ("change language" included).
"""
import csv
import os

from .manifest import CorpusError, Utterance, require_columns

SPLITS = ("train", "valid", "test")
SLOT_COLUMNS = ("action", "object", "location")
REQUIRED_COLUMNS = ("path", "speakerId", "transcription") + SLOT_COLUMNS


def _uid(rel_path):
    """``wavs/speakers/<spk>/<id>.wav`` -> ``<spk>/<id>``: unique even if ids repeat."""
    stem = os.path.splitext(rel_path.replace(os.sep, "/"))[0]
    prefix = "wavs/speakers/"
    return stem[len(prefix):] if stem.startswith(prefix) else stem


def _row_utterance(root, row, where):
    values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
    empty = [c for c in REQUIRED_COLUMNS if not values[c]]
    if empty:
        raise ValueError(f"{where}: empty value in column(s) {', '.join(empty)}")
    return Utterance(
        uid=_uid(values["path"]),
        path=os.path.join(root, values["path"]),
        transcript=values["transcription"],
        slots={c: values[c] for c in SLOT_COLUMNS},
        speaker=values["speakerId"],
        origin=where,
    )


def read_fsc_csv(csv_path, root):
    """Utterances of one FSC csv; every bad row is listed in one CorpusError."""
    if not os.path.isfile(csv_path):
        raise CorpusError(f"{csv_path}: FSC split file not found")
    utts, problems = [], []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        require_columns(csv_path, reader.fieldnames or [], REQUIRED_COLUMNS)
        for row in reader:
            try:
                utts.append(_row_utterance(root, row, f"{csv_path}:{reader.line_num}"))
            except ValueError as e:
                problems.append(str(e))
    if problems:
        raise CorpusError(f"{csv_path}: {len(problems)} bad row(s)", problems)
    return utts


def load_fsc(root, splits=SPLITS):
    """``{split: [Utterance]}`` for the FSC corpus at ``root`` (the dir holding ``data/``)."""
    return {s: read_fsc_csv(os.path.join(root, "data", f"{s}_data.csv"), root) for s in splits}
