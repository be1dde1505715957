"""LibriSpeech: ``<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` with one
``<spk>-<chapter>.trans.txt`` per chapter holding ``ID TRANSCRIPT`` lines.

Used for ASR (CTC / AM pretraining) only, so utterances carry no intent.
"""
import glob
import logging
import os
import re

from .manifest import CorpusError, Utterance

logger = logging.getLogger(__name__)


def _parse_line(line, prefix, where):
    """``ID TRANSCRIPT`` -> (id, transcript); the id must belong to this chapter file."""
    parts = line.split(None, 1)
    if len(parts) != 2:
        raise ValueError(f"{where}: expected 'ID TRANSCRIPT', got {line.strip()!r}")
    uid, text = parts[0], parts[1].strip()
    if not re.fullmatch(re.escape(prefix) + r"-\d+", uid):
        raise ValueError(f"{where}: id {uid!r} is not of the form {prefix}-<number>")
    return uid, text


def read_transcripts(trans_path):
    """Utterances of one chapter; blank lines are ignored, malformed ones collected."""
    chapter_dir = os.path.dirname(trans_path)
    prefix = os.path.basename(trans_path)[: -len(".trans.txt")]
    speaker = prefix.split("-")[0]
    utts, problems = [], []
    with open(trans_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{trans_path}:{lineno}"
            try:
                uid, text = _parse_line(line, prefix, where)
            except ValueError as e:
                problems.append(str(e))
                continue
            path = os.path.join(chapter_dir, f"{uid}.flac")
            utts.append(Utterance(uid, path, text, None, speaker, where))
    return utts, problems


def _warn_untranscribed(trans_files, utts):
    listed = {u.path for u in utts}
    dirs = {os.path.dirname(t) for t in trans_files}
    extra = sorted(p for d in dirs for p in glob.glob(os.path.join(d, "*.flac")) if p not in listed)
    if extra:
        logger.warning("%d flac file(s) have no transcript line and are not used, e.g. %s",
                       len(extra), extra[0])


def load_librispeech(root, split_name):
    """Utterances of LibriSpeech split ``split_name`` (e.g. ``train-clean-100``) under
    ``root``; every malformed transcript line is named (file:line) in one CorpusError."""
    split_dir = os.path.join(root, split_name)
    if not os.path.isdir(split_dir):
        raise CorpusError(f"{split_dir}: LibriSpeech split directory not found")
    trans_files = sorted(glob.glob(os.path.join(split_dir, "*", "*", "*.trans.txt")))
    if not trans_files:
        raise CorpusError(f"{split_dir}: no <spk>/<chapter>/*.trans.txt files found")
    utts, problems = [], []
    for t in trans_files:
        u, p = read_transcripts(t)
        utts += u
        problems += p
    if problems:
        raise CorpusError(f"{split_dir}: {len(problems)} malformed transcript line(s)", problems)
    _warn_untranscribed(trans_files, utts)
    return utts
