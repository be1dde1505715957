"""slu-kd: end-to-end SLU with two-stage textual knowledge distillation.

Used as a fairseq user dir: ``fairseq-train --user-dir slu_kd_plugin ...``.  fairseq
imports this package, then its ``tasks/`` and ``models/``; ``register()`` adds the
criterions and the checkpoint allow-list.
"""
import sys

_registered = False


def register():
    """Make fairseq and torch know the plugin (what ``--user-dir`` does; idempotent):
    fairseq's registries learn our tasks, models and criterions, torch's safe loading
    the types fairseq checkpoints pickle.  Code that builds or loads them through
    fairseq's own functions (``hub``, the CLIs) calls it first."""
    global _registered
    if _registered:
        return
    _registered = True
    from .checkpoints import allow_fairseq_checkpoints

    allow_fairseq_checkpoints()
    from . import criterions, models, tasks  # noqa: F401  (their @register_* decorators)


# Imported by fairseq (--user-dir) or beside it: register now.  A process that only reads
# the settings table or a metrics file (the recipes' helpers) does not import fairseq,
# which costs ~5 s of CPU a process.
if "fairseq" in sys.modules:
    register()
