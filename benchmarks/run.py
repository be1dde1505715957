"""Speed of slu-kd on this machine, measured on a finished demo work dir.

    python benchmarks/run.py --work work/synthetic                 # the full benchmark
    python benchmarks/run.py --work work/synthetic --quick         # smoke version, minutes
    python benchmarks/run.py --work work/synthetic --sections training,ratios

WORK is what ``examples/synthetic/run.sh WORK --stop-stage 8`` leaves: data-bin/{fsc,paired},
checkpoints/{speech_bert,text_model,teacher_train,pt_kd,am_pt}, manifests/fsc, quantizer.pt.
Nothing in WORK is written: every run saves under --scratch (a temp dir by default).

Sections (all by default):
  featurization  seconds of audio per second of slu-kd-featurize, for the MFCC k-means
                 quantizer of WORK and for fairseq vq-wav2vec at the published size
                 (random weights, saved in the 2019 checkpoint format)
  training       fairseq-train throughput of each stage (speech BERT masked LM, text
                 teacher, PT-KD, AM-PT, FT-KD) with WORK's model sizes: utterances/s,
                 updates/s, epoch time and the process's peak RSS
  inference      per-utterance latency (p50/p95, audio file -> intent) and real-time
                 factor of SLUModel (eager) and of the slu-kd-export TorchScript file
  ratios         FT-KD epoch time: cached speech-BERT states vs recomputed; teacher logits
                 precomputed vs on the fly; --max-tokens batches vs --batch-size 32;
                 with the one-off caching/precompute cost of each

Epoch times come from fairseq's own per-epoch JSON records (updates in the epoch /
train_ups); the first epoch is a warm-up and is left out when there are more.  Start-up
and the one-off cost of loading the training split (where caching and precompute
happen) are reported beside them.  The last lines printed are Markdown tables; the JSON
(--out) holds them, the machine, and every run's raw records.
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # measure/, report.py: also when imported by path
from measure import BenchmarkError, featurization, inference, ratios, training  # noqa: E402
from measure.bench import Bench  # noqa: E402
from measure.machine import OtherLoad, machine_info  # noqa: E402
from measure.work import work_of  # noqa: E402
from report import markdown, write_json  # noqa: E402

# each section's code is measure/<section>.py; run in this order: inference reuses the
# FT-KD checkpoint
MEASURE = {"featurization": featurization.measure, "training": training.measure,
           "inference": inference.measure, "ratios": ratios.measure}
SECTIONS = tuple(MEASURE)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="finished demo work dir (examples/synthetic/run.sh WORK "
                   "--stop-stage 8); read only")
    p.add_argument("--out", help="JSON results, written atomically (default: WORK/benchmarks.json)")
    p.add_argument("--quick", action="store_true",
                   help="smoke version: train on the valid split for 2 epochs, featurize 3 and time 5 "
                        "utterances; checks the plumbing, its numbers are not for quoting")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch/OpenMP threads of every process (default: all cores, here %(default)s)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--epochs", type=int, help="epochs per training run; the first is a warm-up "
                   "(default 3, --quick 2)")
    p.add_argument("--featurize-utts", type=int, help="test utterances to featurize (default 100, --quick 3)")
    p.add_argument("--latency-utts", type=int, help="test utterances to time (default 100, --quick 5)")
    p.add_argument("--ft-batch-size", type=int, default=32,
                   help="FT-KD utterances per update; --max-tokens is chosen to match it on average")
    p.add_argument("--horizon-epochs", type=int, default=15,
                   help="epochs over which one-off costs are folded into the ratios (the demo "
                        "fine-tunes for 15)")
    p.add_argument("--teacher", help="text teacher checkpoint (default: WORK/checkpoints/teacher_train "
                   "or WORK/checkpoints/teacher)")
    p.add_argument("--scratch", help="where runs save and log (default: a new temp dir, removed after "
                   "a successful run)")
    p.add_argument("--keep-scratch", action="store_true", help="keep the scratch dir (logs, checkpoints)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 2:
        p.error("--epochs must be at least 2 (the first is a warm-up)")
    defaults = (2, 3, 5) if args.quick else (3, 100, 100)
    args.epochs = args.epochs or defaults[0]
    args.featurize_utts = args.featurize_utts or defaults[1]
    args.latency_utts = args.latency_utts or defaults[2]
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out = args.out or str(Path(args.work) / "benchmarks.json")
    return args


def run_sections(bench):
    """Every requested section, the machine and the runs, as the JSON report."""
    args = bench.args
    report = {"settings": {
        "work": str(bench.work.root), "quick": args.quick, "epochs": args.epochs, "sections": args.sections,
        "featurize_utts": args.featurize_utts, "latency_utts": args.latency_utts,
        "ft_batch_size": args.ft_batch_size, "horizon_epochs": args.horizon_epochs,
        "train_subset": bench.subset()}}
    other_load = OtherLoad()
    report["machine"] = machine_info(args)
    if (report["machine"]["load_average_at_start"] or 0) > 1:
        print(f"note: 1-min load average {report['machine']['load_average_at_start']} before starting: "
              "other processes are using the CPU", file=sys.stderr)
    for section, measure in MEASURE.items():
        if section in args.sections:
            print(f"== {section}", flush=True)
            report[section] = measure(bench)
    report["machine"]["other_processes_cores"] = other_load.cores()
    report["runs"] = [r.summary() for r in bench.runs]
    return report


def main(argv=None):
    # the parent only reports; fairseq's and hydra's INFO/DEBUG chatter on import is noise
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    try:
        work_of(args).check()
    except BenchmarkError as e:
        sys.exit(f"benchmarks/run.py: error: {e}")
    keep = args.scratch is not None or args.keep_scratch
    args.scratch = args.scratch or tempfile.mkdtemp(prefix="slu-kd-bench-")
    try:
        report = run_sections(Bench(args))
    except BenchmarkError as e:
        print(f"\nbenchmarks/run.py: error: {e}\n(scratch dir kept: {args.scratch})", file=sys.stderr)
        sys.exit(1)
    if not keep:  # the logs named in the report go with the scratch dir
        for run in report["runs"]:
            run["log"] = None
    write_json(args.out, report)
    print()
    print(markdown(report))
    print(f"\nresults: {args.out}")
    if keep:
        print(f"scratch: {args.scratch}")
    else:
        shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
