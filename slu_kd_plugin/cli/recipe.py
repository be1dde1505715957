"""slu-kd-recipe: the small steps examples/common/stages.sh asks of Python.

    slu-kd-recipe has-gpu                    # exit 0 when torch sees a CUDA device
    slu-kd-recipe train-spm TEXT PREFIX N    # PREFIX.model: N-piece sentencepiece model of TEXT
    slu-kd-recipe metric METRICS.json KEY    # one value of a metrics.json, rounded to 2 places

The recipes call it as ``python -m slu_kd_plugin.cli.recipe`` (works in a venv
installed before this command existed).
"""
import argparse
import json
import sys


def has_gpu(args):
    import torch
    return 0 if torch.cuda.is_available() else 1


def train_spm(args):
    from ..text_encoding import train_spm as train
    train([args.text], args.prefix, args.vocab_size)
    return 0


def metric(args):
    with open(args.metrics, encoding="utf-8") as f:
        print(round(json.load(f)[args.key], 2))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="slu-kd-recipe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("has-gpu", help="exit 0 when torch sees a CUDA device, 1 when not").set_defaults(run=has_gpu)
    spm = sub.add_parser("train-spm", help="a unigram sentencepiece model of one text file (lower-cased lines)")
    spm.add_argument("text")
    spm.add_argument("prefix", help="writes PREFIX.model and PREFIX.vocab")
    spm.add_argument("vocab_size", type=int)
    spm.set_defaults(run=train_spm)
    m = sub.add_parser("metric", help="print one value of a metrics.json, rounded to 2 places")
    m.add_argument("metrics")
    m.add_argument("key")
    m.set_defaults(run=metric)
    args = ap.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
