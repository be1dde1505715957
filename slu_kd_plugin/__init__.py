"""slu-kd: end-to-end SLU with two-stage textual knowledge distillation.

Used as a fairseq user dir: ``fairseq-train --user-dir slu_kd_plugin ...``.
fairseq auto-imports only ``tasks/`` and ``models/`` of a user dir, so the
criterions are imported here explicitly.
"""
from .checkpoints import allow_fairseq_checkpoints

# The one import-time effect: fairseq-train/-validate import the user dir before
# they load any checkpoint, and this is where safe loading learns fairseq's types.
allow_fairseq_checkpoints()

from . import criterions, models, tasks  # noqa: E402,F401
