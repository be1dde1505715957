"""Intent labels and their metrics: the label dictionary shared by the text teacher and
the SLU student, the slot rule (``action|object|location``), per-slot accuracy and
macro-F1, for the criterion (training logs) and slu-kd-evaluate alike."""
import os
from collections import Counter

from fairseq.data import Dictionary

# the target of an utterance with no intent (FT-KD's unlabeled pairs): the criteria score
# its KD term only (cross-entropy's ignore_index)
UNLABELED = -100


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


def slot_count(symbols, separator="|"):
    """How many slots every label has; 0 when the labels have no slots (one value each,
    or not all the same number)."""
    counts = {len(sym.split(separator)) for sym in symbols}
    n = counts.pop() if len(counts) == 1 else 0
    return n if n >= 2 else 0


def slot_names(symbols, configured, separator="|"):
    """The names of the labels' slots: the configured (comma-separated) names when they
    fit the slot count, else slot0, slot1, ...; [] for labels without slots."""
    n = slot_count(symbols, separator)
    names = [name for name in (configured or "").split(",") if name]
    return names if len(names) == n else [f"slot{i}" for i in range(n)]


def slot_table(dictionary, separator="|"):
    """(n_classes, n_slots) value ids per class, for per-slot accuracy; None when the
    labels have no slots."""
    symbols = label_symbols(dictionary)
    n = slot_count(symbols, separator)
    if not n:
        return None
    rows = [sym.split(separator) for sym in symbols]
    values = [{v: i for i, v in enumerate(sorted({r[j] for r in rows}))} for j in range(n)]
    return [[values[j][r[j]] for j in range(n)] for r in rows]


def slot_accuracies(refs, preds, names, slots, separator="|"):
    """{slot: % correct} over reference and predicted class indices into ``names``."""
    out = {}
    for j, slot in enumerate(slots):
        hits = sum(names[r].split(separator)[j] == names[p].split(separator)[j] for r, p in zip(refs, preds))
        out[slot] = 100.0 * hits / max(len(refs), 1)
    return out


def f1_of_counts(counts):
    """Macro-F1 in %: the mean F1 over the classes with a reference or a prediction;
    ``counts`` holds (hits, predicted, true) per class, so counts summed over batches
    and workers give the F1 of the whole split."""
    scores = [2 * hits / (predicted + true) for hits, predicted, true in counts if predicted + true > 0]
    return 100.0 * sum(scores) / max(len(scores), 1)


def macro_f1(refs, preds, n_classes):
    """:func:`f1_of_counts` of reference and predicted class indices."""
    hits = Counter(r for r, p in zip(refs, preds) if r == p)
    predicted, true = Counter(preds), Counter(refs)
    return f1_of_counts((hits[c], predicted[c], true[c]) for c in range(n_classes))
