"""The report of benchmarks/run.py: Markdown tables of its JSON rows, and the JSON file."""
import json
import os
from pathlib import Path

STAGE_NAMES = {"speech_bert": "speech BERT (masked LM)", "teacher": "text teacher",
               "pt_kd": "PT-KD", "am_pt": "AM-PT", "ft_kd": "FT-KD"}
BUSY_CORES = 0.25  # other processes' average CPU use above which the report warns


def busy_warning(machine):
    """A line for the report when other processes used the CPU: torch's thread pool
    spinning against them can make a run many times slower (seen: 20x on 2 cores)."""
    other = machine.get("other_processes_cores")
    if other is None or other <= BUSY_CORES:
        return None
    return (f"WARNING: other processes kept {other} of {machine['cpu_count']} cores busy during the run: "
            "these timings are upper bounds; measure on a quiet machine (or with --threads 1)")


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def markdown(report):
    warning = busy_warning(report["machine"])
    parts = [warning] if warning else []
    parts += [f"slu-kd benchmark: {report['machine']['cpu_count']} CPUs, {report['machine']['threads']} threads, "
             f"device {report['machine']['device']}, torch {report['machine']['torch']}, "
             f"commit {str(report['machine']['git_commit'])[:10]}{' (dirty)' if report['machine']['git_dirty'] else ''}"
             f"{', QUICK (smoke test, not for quoting)' if report['settings']['quick'] else ''}"]
    if "featurization" in report:
        parts.append(table(["quantizer", "params", "utterances", "audio (s)", "audio s / s", "peak RSS (MB)"], [
            (r["quantizer"], fmt(r["params"]), r["utterances"], fmt(r["audio_s"], 1), fmt(r["audio_s_per_s"], 1),
             fmt(r["max_rss_mb"], 0)) for r in report["featurization"]]))
    if "training" in report:
        parts.append(table(["stage", "utts/update", "updates/s", "utts/s", "epoch (s)", "start-up (s)",
                            "train-split load (s)", "peak RSS (MB)"], [
            (STAGE_NAMES[r["stage"]], fmt(r["utts_per_update"], 1), fmt(r["updates_per_s"]), fmt(r["utts_per_s"], 1),
             fmt(r["epoch_s"]), fmt(r["startup_s"], 1), fmt(r["train_load_s"], 1), fmt(r["max_rss_mb"], 0))
            for r in report["training"]]))
    if "inference" in report:
        parts.append(table(["path (audio file -> intent)", "p50 (ms)", "p95 (ms)", "RTF", "model only p50 (ms)"], [
            (r["path"], fmt(r["p50_ms"], 1), fmt(r["p95_ms"], 1), fmt(r["rtf"], 4), fmt(r["model_p50_ms"], 1))
            for r in report["inference"]]))
    if "ratios" in report:
        parts.append(table(["FT-KD: candidate / reference", "epoch (s)", "speed-up", "one-off (s)",
                            "speed-up incl. one-off", "utts/update", "target"], [
            (f"{r['candidate']} / {r['reference']}", f"{fmt(r['candidate_epoch_s'])} / {fmt(r['reference_epoch_s'])}",
             f"{fmt(r['speedup'])}x", fmt(r["one_off_s"], 1),
             f"{fmt(r['speedup_incl_one_off'])}x ({r['horizon_epochs']} ep)",
             f"{fmt(r['candidate_utts_per_update'], 1)} / {fmt(r['reference_utts_per_update'], 1)}",
             f">= {r['target']}x: {fmt(r['target_met'])}" if "target" in r else "–")
            for r in report["ratios"]]))
    return "\n\n".join(parts)


def write_json(path, report):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
