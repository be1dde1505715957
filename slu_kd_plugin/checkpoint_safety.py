"""Let torch>=2.6's safe checkpoint loading accept fairseq checkpoints.

torch>=2.6 unpickles with ``weights_only=True`` by default, which refuses any
class it does not know.  fairseq 0.12 checkpoints hold an ``argparse.Namespace``
(``args``), and the published 2019-2020 checkpoints (vq-wav2vec, bert_kmeans,
roberta.base) also pickle fairseq meter objects in ``extra_state`` under their
old module path ``fairseq.meters``.  We allow-list exactly those classes, so
resume and ``fairseq-validate`` work while a checkpoint carrying any other
pickled object (e.g. a ``__reduce__`` payload) is still refused by torch.
"""
import argparse

import torch

_METER_NAMES = ("AverageMeter", "TimeMeter", "StopwatchMeter", "SumMeter", "Meter")


def fairseq_checkpoint_globals():
    """(class, qualified name) pairs that fairseq checkpoints legitimately pickle."""
    from fairseq.logging import meters

    allowed = [(argparse.Namespace, "argparse.Namespace")]
    for name in _METER_NAMES:
        cls = getattr(meters, name, None)
        if cls is None:
            continue
        # current module path, and the one used before fairseq 0.10
        allowed.append((cls, f"fairseq.logging.meters.{name}"))
        allowed.append((cls, f"fairseq.meters.{name}"))
    return allowed


def allow_fairseq_checkpoints():
    """Register the allow-list with torch (idempotent)."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads with weights_only=False anyway
        return
    add(fairseq_checkpoint_globals())
