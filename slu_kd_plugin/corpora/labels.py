"""Intent tokens and CTC letter targets.

An intent becomes ONE whitespace-free token (fairseq dictionaries and the original
implementation split labels on spaces, which broke FSC's action "change language"):
slot values joined with ``|``, whitespace inside a value replaced by ``_``.
"""
import re
import unicodedata

SLOT_SEP = "|"


def _value_token(key, value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"intent slot {key!r} has an empty or non-string value: {value!r}")
    if SLOT_SEP in value:
        raise ValueError(f"intent slot {key!r} value {value!r} contains {SLOT_SEP!r}")
    return "_".join(value.split())


def encode_intent(slots):
    """``{"action": "change language", "object": "none", ...}`` -> ``change_language|none|...``.

    Values are taken in the dict's order (FSC: action, object, location).  Runs of
    whitespace become one ``_``; a value containing ``|`` or an empty value is an
    error because the token could not be split back.
    """
    if not slots:
        raise ValueError("an intent needs at least one slot")
    return SLOT_SEP.join(_value_token(k, v) for k, v in slots.items())


def decode_intent(token, separator=SLOT_SEP):
    """Inverse of :func:`encode_intent`: ``change_language|none|none`` ->
    ``["change language", "none", "none"]``.

    ``_`` always reads back as a space, so a value that itself contained ``_`` does
    not round-trip; ``labels.json`` holds the exact original values for display.
    """
    return [v.replace("_", " ") for v in token.split(separator)]


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NOT_LETTER = re.compile(r"[^A-Z']")


def _ascii_upper(text):
    """Upper-case, typographic apostrophes -> ``'``, accents stripped (é -> E)."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(c for c in text if not unicodedata.combining(c)).upper()


def to_ltr(text):
    """Transcript -> fairseq letter targets for CTC, e.g.
    ``"Turn on the lights."`` -> ``"T U R N | O N | T H E | L I G H T S |"``.

    The CTC alphabet is A-Z and ``'`` only.  Text is upper-cased and accents are
    stripped; every other character (digits, punctuation, hyphens, ...) is DROPPED,
    not spelled out, so "twenty-one" -> ``T W E N T Y O N E |`` and "5" vanishes.
    Words left empty are skipped; a text with no letters gives ``""``.
    """
    words = [_NOT_LETTER.sub("", w) for w in _ascii_upper(text).split()]
    words = [w for w in words if w]
    return "".join(" ".join(w) + " | " for w in words).rstrip()
