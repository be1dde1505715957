"""The intent label dictionary shared by the text teacher and the SLU student."""
import os

from fairseq.data import Dictionary


def label_symbols(dictionary):
    """Class names in class-index order (fairseq offsets labels by ``nspecial``).

    fairseq-preprocess pads dictionaries to a multiple of 8 with ``madeupwordNNNN``
    fillers unless told ``--padding-factor 1``; they sort last and are no classes.
    """
    return [s for s in dictionary.symbols[dictionary.nspecial:] if not s.startswith("madeupword")]


def load_label_dict(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: label dictionary not found")
    return Dictionary.load(path)


def check_same_labels(student, teacher, teacher_source):
    """Refuse KD when teacher classes are a different set or in a different order:
    matching logits class by class would otherwise silently pair wrong intents."""
    s, t = label_symbols(student), label_symbols(teacher)
    if s == t:
        return
    if sorted(s) != sorted(t):
        only_s, only_t = sorted(set(s) - set(t)), sorted(set(t) - set(s))
        raise ValueError(
            f"teacher labels ({teacher_source}) differ from the student's: only in student "
            f"{only_s[:5]}, only in teacher {only_t[:5]}"
        )
    first = next(i for i, (a, b) in enumerate(zip(s, t)) if a != b)
    raise ValueError(
        f"teacher labels ({teacher_source}) are ordered differently from the student's: "
        f"class {first} is '{t[first]}' for the teacher but '{s[first]}' for the student; "
        "binarize both with the same label dict.txt (fairseq-preprocess --srcdict)"
    )


def slot_table(dictionary, separator="|"):
    """(n_classes, n_slots) value ids per class, for per-slot accuracy; None when the
    labels have no slots or not all the same number of them."""
    rows = [sym.split(separator) for sym in label_symbols(dictionary)]
    n = len(rows[0]) if rows else 0
    if n < 2 or any(len(r) != n for r in rows):
        return None
    values = [{v: i for i, v in enumerate(sorted({r[j] for r in rows}))} for j in range(n)]
    return [[values[j][r[j]] for j in range(n)] for r in rows]
