"""What benchmarks/run.py measures, one module a section (benchmarks/README.md).

    work.py           the finished demo work dir the benchmark reads (paths, recorded configs)
    stages.py         each stage's fairseq-train flags: the settings table's, the work dir's profile
    process.py        running a subprocess with timed output lines and its peak RSS
    bench.py          Bench: the shared state of a benchmark run (scratch dir, runs, training)
    featurization.py  section "featurization": slu-kd-featurize's speed per quantizer
    training.py       section "training": fairseq-train throughput per stage, from its logs
    inference.py      section "inference": per-utterance latency, eager / TorchScript / ONNX
    ratios.py         section "ratios": FT-KD epoch-time ratios of three design choices
    machine.py        the machine the numbers were measured on, and other processes' load

Each section module has ``measure(bench) -> list of JSON rows``; benchmarks/report.py
turns the rows into the Markdown tables.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "slu_kd_plugin"


class BenchmarkError(RuntimeError):
    """A missing input or a failed run; the message says which and what to do."""
