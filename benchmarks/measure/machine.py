"""The machine a benchmark ran on (CPU, versions, git commit) and the load other
processes put on it meanwhile."""
import os
import platform
import subprocess
import time

from . import REPO


def machine_info(args):
    import torch

    info = {"cpu_count": os.cpu_count(), "threads": args.threads, "device": args.device,
            "cpu_model": cpu_model(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "fairseq": package_version("fairseq"),
            "git_commit": git(["rev-parse", "HEAD"]), "git_dirty": bool(git(["status", "--porcelain"])),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_at_start": load_average()}
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def load_average():
    """1-minute load average (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def cpu_busy_s():
    """CPU seconds every process on the machine has used since boot (Linux), or None."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """CPU seconds of this process and the children it has waited for."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class OtherLoad:
    """Average number of cores other processes kept busy while the benchmark ran: the
    machine's CPU time minus the benchmark's own, over the wall time."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), cpu_busy_s(), own_cpu_s()

    def cores(self):
        busy = cpu_busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.monotonic() - self.t0
        return round(max(0.0, (busy - self.busy0) - (own_cpu_s() - self.own0)) / wall, 2) if wall > 0 else None


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_version(name):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        try:
            return __import__(name).__version__
        except Exception:
            return None


def git(cmd):
    try:
        out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
