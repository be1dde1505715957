"""Small shared helpers."""
import contextlib
import os


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open ``path + '.tmp'`` for writing and move it over ``path`` on success.

    A crash (or an exception inside the block) leaves the previous file intact and
    no half-written file under the final name.
    """
    tmp = f"{path}.tmp"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save_bytes(path, write_fn):
    """Call ``write_fn(tmp_path)`` then rename: for writers that want a path (torch.save)."""
    tmp = f"{path}.tmp"
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, without matplotlib's font-search
    DEBUG lines: importing the plugin can load fairseq, whose logging set-up lets them
    through into the recipes' logs."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # before the import, which logs too
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
