"""slu-kd-synth: generate the offline synthetic corpora (TTS with espeak-ng, flite, festival).

    slu-kd-synth fsc OUT --speakers 30 --utts-per-speaker 60 --valid-speakers 5 \\
        --test-speakers 5 --seed 1
    slu-kd-synth snips OUT --speakers 20 --utts-per-speaker 30 --valid-speakers 3 \\
        --test-speakers 3 --voices held-out --seed 1
    slu-kd-synth librispeech OUT --utterances 800 --seed 1 \\
        --splits train-clean-100=0.9,dev-clean=0.1

OUT gets Fluent Speech Commands', SNIPS smart-lights' or LibriSpeech's real layout,
so every later step reads it exactly as it reads the real corpus (a SNIPS-like OUT
also has split.tsv, the split it was made for: see synth/snips_like.py).  Re-running
with the same settings keeps what is there (and finishes an interrupted run); other
settings rebuild it.
"""
import argparse
import dataclasses
import logging
import sys
import time

from . import cli_parser

logger = logging.getLogger("slu_kd_plugin.cli.synth")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output corpus root")
    p.add_argument("--seed", type=int, default=1, help="same seed, same corpus, byte for byte")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_command_corpus(p, speakers, utts, valid, test) -> None:
    """Options of the spoken-command corpora (FSC-like and SNIPS-like): speakers by split."""
    _add_common(p)
    p.add_argument("--speakers", type=int, default=speakers, help="speakers in all splits")
    p.add_argument("--utts-per-speaker", type=int, default=utts)
    p.add_argument("--valid-speakers", type=int, default=valid)
    p.add_argument("--test-speakers", type=int, default=test)
    p.add_argument("--voices", choices=("espeak", "held-out"), default="espeak",
                   help="espeak: espeak-ng voices only; held-out: espeak-ng, flite and festival "
                        "voices, test voices of engines/genders/accents that training never uses")


def build_parser() -> argparse.ArgumentParser:
    parser = cli_parser("slu-kd-synth", __doc__)
    sub = parser.add_subparsers(dest="corpus", required=True)
    fsc = sub.add_parser("fsc", help="spoken commands, Fluent Speech Commands layout")
    _add_command_corpus(fsc, speakers=30, utts=60, valid=5, test=5)
    snips = sub.add_parser("snips", help="smart-lights commands, SNIPS SLU layout "
                           "(+ split.tsv and speakers.tsv)")
    _add_command_corpus(snips, speakers=20, utts=30, valid=3, test=3)
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


def _generator(corpus):
    """(config class, write_corpus) of a corpus; imported here, on demand."""
    if corpus == "fsc":
        from ..synth.fsc_like import FscSynthConfig, write_corpus
        return FscSynthConfig, write_corpus
    if corpus == "snips":
        from ..synth.snips_like import SnipsSynthConfig, write_corpus
        return SnipsSynthConfig, write_corpus
    from ..synth.librispeech_like import LibriSynthConfig, write_corpus
    return LibriSynthConfig, write_corpus


def main(argv=None) -> int:
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    cls, write_corpus = _generator(args.corpus)
    cfg = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
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
