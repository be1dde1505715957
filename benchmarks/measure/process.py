"""Running one subprocess: its output lines timed as they arrive, its peak RSS."""
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import REPO, BenchmarkError


@dataclass
class Run:
    """One subprocess: its command, log, exit status, peak RSS and timed output lines."""

    name: str
    argv: list
    log: str
    wall_s: float = 0.0
    returncode: int = None
    max_rss_mb: float = 0.0
    lines: list = field(default_factory=list, repr=False)  # (seconds since start, text)

    def time_of(self, needle, last=False, after=0.0):
        """Seconds since start when the first (or last) line containing ``needle`` (one
        of them, for a tuple) arrived, not before ``after``."""
        needles = needle if isinstance(needle, tuple) else (needle,)
        hits = [t for t, text in self.lines if t >= after and any(n in text for n in needles)]
        if not hits:
            raise BenchmarkError(f"{self.log}: no line containing {' or '.join(map(repr, needles))}")
        return hits[-1] if last else hits[0]

    def summary(self):
        d = asdict(self)
        d.pop("lines")
        d["argv"] = [str(a) for a in self.argv]
        return d


def max_rss_mb(rusage):
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return rusage.ru_maxrss * scale / 2**20


def run_timed(name, argv, log, env, cwd=REPO):
    """Run ``argv``, timestamping each output line (split on \\n and \\r, so progress
    bars count) as it arrives; the peak RSS is the child's own (os.wait4), not that of
    every child so far as getrusage(RUSAGE_CHILDREN) would give."""
    run = Run(name, [str(a) for a in argv], str(log))
    t0 = time.monotonic()
    proc = subprocess.Popen(run.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=str(cwd), bufsize=0)
    pending, status = b"", None
    try:
        with open(log, "wb") as f:
            while True:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                f.write(chunk)
                now = time.monotonic() - t0
                parts = re.split(rb"[\r\n]", pending + chunk)
                pending = parts.pop()
                run.lines += [(now, p.decode("utf-8", "replace")) for p in parts if p.strip()]
        if pending.strip():
            run.lines.append((time.monotonic() - t0, pending.decode("utf-8", "replace")))
        _, status, rusage = os.wait4(proc.pid, 0)
    finally:
        if status is None:  # interrupted before the child was reaped: leave no orphan
            proc.kill()
            proc.wait()
    proc.returncode = run.returncode = os.waitstatus_to_exitcode(status)
    run.wall_s = time.monotonic() - t0
    run.max_rss_mb = max_rss_mb(rusage)
    if run.returncode != 0:
        tail = "\n".join(text for _, text in run.lines[-25:])
        raise BenchmarkError(f"{name} exited {run.returncode}; full log {log}; last lines:\n{tail}")
    return run


def tool(name):
    """A console script of the venv run.py runs in (else from PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise BenchmarkError(f"{name} not found beside {sys.executable} nor on PATH "
                             "(run with the project's .venv/bin/python)")
    return found
