"""Two FT-KD trainings side by side against one alone, with torch's default thread pool
and with a fixed thread count per job (the README's "A shared machine").

    .venv/bin/python benchmarks/concurrency.py --work WORK --out concurrency.json

WORK is a finished demo work dir (as for benchmarks/run.py; the test suite's tiny
pipeline also works). Each setting runs the same FT-KD command (run.py's, ``--epochs``
epochs, no validation) through the real ``fairseq-train``:
  alone      one run, default threads (no OMP_NUM_THREADS: torch takes one per core)
  alone_passive  the same with OMP_WAIT_POLICY=PASSIVE (the recipes' train() default)
  pair       two runs at once, default threads each
  pair_fixed two runs at once, cores / 2 threads each (what the recipes' train() sets)
  pair_passive  two runs at once, default threads, OMP_WAIT_POLICY=PASSIVE (a diagnostic)
A run slower than ``--cap`` x alone is stopped and reported as at least that. Per run:
wall time, user and system CPU seconds (os.wait4), so the system share shows the cost
of threads spinning against each other.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench_run  # noqa: E402  (benchmarks/run.py's options)
from measure.bench import Bench  # noqa: E402  (FT-KD flags from the work dir)
from measure.process import tool  # noqa: E402

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "SLU_KD_THREADS")


def environment(threads=None, passive=False):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return dict(env, PYTHONWARNINGS="ignore")


def start(argv, log, env):
    with open(log, "w") as f:
        return subprocess.Popen([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT, env=env)


def wait_all(procs, deadline):
    """{pid: (exit code or None when stopped at the deadline, wall s, user s, sys s)}."""
    t0, out = time.monotonic(), {}
    pending = {p.pid: p for p in procs}
    while pending:
        for pid, proc in list(pending.items()):
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got:
                out[pid] = (os.waitstatus_to_exitcode(status), time.monotonic() - t0, usage.ru_utime, usage.ru_stime)
                del pending[pid]
        if pending and time.monotonic() - t0 > deadline:
            for pid, proc in pending.items():
                proc.kill()
                _, _, usage = os.wait4(pid, 0)
                out[pid] = (None, time.monotonic() - t0, usage.ru_utime, usage.ru_stime)
            pending = {}
        time.sleep(0.05)
    return [out[p.pid] for p in procs]


def setting(bench, name, n, env, deadline):
    data, flags = bench.stage_args("ft_kd")
    procs = []
    for i in range(n):
        save = bench.scratch / name / str(i)
        save.mkdir(parents=True, exist_ok=True)
        argv = [tool("fairseq-train"), data, *flags, *bench.common_flags(save)]  # ours win
        procs.append(start(argv, save / "train.log", env))
    rows = []
    for i, (code, wall, user, system) in enumerate(wait_all(procs, deadline)):
        if code not in (0, None):
            sys.exit(f"{name}: run {i} exited {code}; see {bench.scratch / name / str(i) / 'train.log'}")
        rows.append({"finished": code == 0, "wall_s": round(wall, 1), "user_s": round(user, 1),
                     "sys_s": round(system, 1), "sys_share": round(system / max(user + system, 1e-9), 2)})
    print(f"{name}: " + ", ".join(f"{r['wall_s']} s{'' if r['finished'] else ' (stopped)'} "
                                  f"sys {r['sys_share']:.0%}" for r in rows), flush=True)
    return {"runs": rows, "wall_s": max(r["wall_s"] for r in rows), "env": {k: env[k] for k in THREAD_VARS if k in env}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="finished demo work dir (read only)")
    p.add_argument("--out", required=True, help="JSON results")
    p.add_argument("--epochs", type=int, default=6, help="FT-KD epochs per run")
    p.add_argument("--cap", type=float, default=12.0, help="stop a setting after this many times alone's wall time")
    p.add_argument("--scratch", default=None, help="where the runs save (default: a temp dir)")
    args = p.parse_args(argv)
    import tempfile

    scratch = args.scratch or tempfile.mkdtemp(prefix="slu-kd-concurrency-")
    bench = Bench(bench_run.parse_args(["--work", args.work, "--epochs", str(args.epochs),
                                       "--scratch", scratch, "--device", "cpu"]))
    cores = os.cpu_count()
    alone = setting(bench, "alone", 1, environment(), deadline=3600)
    deadline = args.cap * alone["wall_s"]
    report = {"cores": cores, "epochs": args.epochs, "load_average_at_start": os.getloadavg()[0], "alone": alone,
              "alone_passive": setting(bench, "alone_passive", 1, environment(passive=True), deadline),
              "pair": setting(bench, "pair", 2, environment(), deadline),
              "pair_fixed": setting(bench, "pair_fixed", 2, environment(threads=max(cores // 2, 1)), deadline),
              "pair_passive": setting(bench, "pair_passive", 2, environment(passive=True), deadline)}
    for name in ("alone_passive", "pair", "pair_fixed", "pair_passive"):
        report[name]["x_alone"] = round(report[name]["wall_s"] / alone["wall_s"], 2)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, args.out)
    print(json.dumps({k: report[k].get("x_alone") for k in ("alone_passive", "pair", "pair_fixed", "pair_passive")}))


if __name__ == "__main__":
    main()
