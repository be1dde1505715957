"""Classification metrics computed from (reference, prediction) index pairs."""
from collections import Counter


def macro_f1(refs, preds, n_classes):
    """Mean F1 over the classes that occur in the references or predictions."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for r, p in zip(refs, preds):
        if r == p:
            tp[r] += 1
        else:
            fp[p] += 1
            fn[r] += 1
    scores = []
    for c in range(n_classes):
        if tp[c] + fp[c] + fn[c] == 0:
            continue
        scores.append(2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]))
    return 100.0 * sum(scores) / max(len(scores), 1)


def slot_accuracies(refs, preds, names, slot_names, separator="|"):
    """{slot: % correct} over label names like ``action|object|location``."""
    out = {}
    for j, slot in enumerate(slot_names):
        hits = sum(names[r].split(separator)[j] == names[p].split(separator)[j] for r, p in zip(refs, preds))
        out[slot] = 100.0 * hits / max(len(refs), 1)
    return out
