"""slu-kd-synth: generate the offline synthetic corpora (TTS with espeak-ng, flite, festival).

    slu-kd-synth fsc OUT --speakers 30 --utts-per-speaker 60 --valid-speakers 5 \\
        --test-speakers 5 --seed 1
    slu-kd-synth librispeech OUT --utterances 800 --seed 1 \\
        --splits train-clean-100=0.9,dev-clean=0.1

OUT gets Fluent Speech Commands' or LibriSpeech's real layout, so every later step
reads it exactly as it reads the real corpus.  Re-running with the same settings
keeps what is there (and finishes an interrupted run); other settings rebuild it.
"""
import argparse
import dataclasses
import logging
import sys
import time

logger = logging.getLogger("slu_kd_plugin.cli.synth")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output corpus root")
    p.add_argument("--seed", type=int, default=1, help="same seed, same corpus, byte for byte")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slu-kd-synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="corpus", required=True)
    fsc = sub.add_parser("fsc", help="spoken commands, Fluent Speech Commands layout")
    _add_common(fsc)
    fsc.add_argument("--speakers", type=int, default=30, help="speakers in all splits")
    fsc.add_argument("--utts-per-speaker", type=int, default=60)
    fsc.add_argument("--valid-speakers", type=int, default=5)
    fsc.add_argument("--test-speakers", type=int, default=5)
    fsc.add_argument("--voices", choices=("espeak", "held-out"), default="espeak",
                     help="espeak: espeak-ng voices only; held-out: espeak-ng, flite and festival "
                          "voices, test voices of engines/genders/accents that training never uses")
    libri = sub.add_parser("librispeech", help="read sentences, LibriSpeech layout")
    _add_common(libri)
    libri.add_argument("--utterances", type=int, default=800, help="in all splits")
    libri.add_argument("--speakers", type=int, default=24, help="in all splits")
    libri.add_argument("--splits", default="train-clean-100=0.9,dev-clean=0.1",
                       help="comma-separated NAME=WEIGHT; utterances and speakers are "
                            "shared out by weight, each split with its own speakers")
    libri.add_argument("--utts-per-chapter", type=int, default=25)
    libri.add_argument("--voices", choices=("espeak", "wide"), default="espeak",
                       help="espeak: espeak-ng voices only; wide: espeak-ng, flite and festival "
                            "voices of the held-out plan's training side (never a test voice)")
    return parser


def _config(args):
    if args.corpus == "fsc":
        from ..synth.fsc_like import FscSynthConfig as cls
    else:
        from ..synth.librispeech_like import LibriSynthConfig as cls
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def main(argv=None) -> int:
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    cfg = _config(args)
    if args.corpus == "fsc":
        from ..synth.fsc_like import write_corpus
    else:
        from ..synth.librispeech_like import write_corpus
    start = time.time()
    try:
        summary = write_corpus(args.out, cfg, n_jobs=args.jobs, progress=not args.quiet)
    except ValueError as e:  # bad settings: say which, no traceback
        logger.error("%s", e)
        return 2
    for split, s in summary.items():
        logger.info("%s %s: %d utterances, %d speakers, %.2f h", args.corpus, split,
                    s["utterances"], s["speakers"], s["hours"])
    logger.info("wrote %s in %.1f s", args.out, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
