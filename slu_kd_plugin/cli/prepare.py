"""slu-kd-prepare: turn a corpus in its own layout into a manifest dir.

Writes ``{split}.tsv/.txt/.ltr/.id`` (+ ``.label``, + ``.spk`` where the corpus names
speakers) for the splits train/valid/test, ``labels.json`` and, when the corpus root
has one, a validated copy of ``speakers.tsv`` (see docs/CONTRACTS.md).  Everything is
checked before anything is written, so a failing run leaves no partial outputs.
"""
import argparse
import logging
import os
import random
import sys

from ..audio import AudioError
from ..corpora.fsc import load_fsc
from ..corpora.labels import encode_intent
from ..corpora.librispeech import load_librispeech
from ..corpora.manifest import (
    AUDIO_CHECKS,
    BAD_AUDIO_POLICIES,
    CorpusError,
    check_split,
    write_splits,
)
from ..corpora.snips import DEFAULT_FRACTIONS, DEFAULT_SEED, load_snips
from ..corpora.speakers import SPEAKERS_TSV, corpus_speakers
from ..corpora.tsv import load_tsv

logger = logging.getLogger("slu_kd_plugin.prepare")

SPLIT_ORDER = ("train", "valid", "test")
EXAMPLES = """examples:
  slu-kd-prepare fsc fluent_speech_commands_dataset manifests/fsc \\
      --subset-fraction 0.1 --subset-name train10 --seed 1
  slu-kd-prepare librispeech LibriSpeech manifests/ls \\
      --splits train-clean-100 dev-clean test-clean
  slu-kd-prepare snips smart-lights-en-close-field manifests/snips --fractions 0.8 0.1 0.1
  slu-kd-prepare tsv train.tsv valid.tsv test.tsv manifests/mine --on-bad-audio skip
"""
LIBRISPEECH_DEFAULT_SPLIT = {"train": "train", "dev": "valid", "test": "test"}


def subset(utterances, fraction, seed, min_per_intent=1):
    """``round(fraction * n)`` (at least 1) utterances drawn with ``random.Random(seed)``,
    kept in corpus order: the same inputs and seed always give the same subset.

    Utterances with intents are drawn per intent (stratified), each intent getting its
    share of the total by largest remainder, then at least ``min_per_intent`` (or all it
    has): a random 10% of a small corpus can leave an intent with one example or none,
    and the subset's classifier could never learn it.  The floor can make the subset
    larger than the fraction; the log says by how much."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--subset-fraction must be in (0, 1], not {fraction}")
    rng = random.Random(seed)
    k = max(1, round(fraction * len(utterances)))
    if any(u.slots is None for u in utterances):
        return [utterances[i] for i in sorted(rng.sample(range(len(utterances)), k))]
    groups = {}
    for i, u in enumerate(utterances):
        groups.setdefault(encode_intent(u.slots), []).append(i)
    quota = {t: fraction * len(g) for t, g in groups.items()}
    take = {t: int(q) for t, q in quota.items()}
    by_remainder = sorted(groups, key=lambda t: (take[t] - quota[t], rng.random()))
    for t in by_remainder[:max(0, k - sum(take.values()))]:
        take[t] += 1
    picked = []
    for t, g in groups.items():
        picked += rng.sample(g, min(len(g), max(take[t], min_per_intent)))
    return [utterances[i] for i in sorted(picked)]


def check_all(splits, args, skipped, opts):
    """Check every split (train first: its labels are the only ones valid/test may use)
    and report the problems of all of them in one error, not just the first split's."""
    results, errors, known = [], [], None
    for name in sorted(splits, key=lambda s: (SPLIT_ORDER + (s,)).index(s)):
        labels = None if name == "train" or args.allow_unseen_labels else known
        try:
            r = check_split(name, splits[name], known_labels=labels,
                            skipped=skipped.get(name, ()), **opts)
        except CorpusError as e:
            errors.append(str(e))
            continue
        if name == "train" and r.slots_by_token:
            known = r.labels
        results.append(r)
    if errors:
        raise CorpusError("\n".join(errors))
    return results


def prepare(out_dir, splits, args, skipped=None, speakers_root=None):
    """Check all splits (and ``speakers_root/speakers.tsv`` if there is one), add the
    optional train subset, then write them all at once, so any problem leaves
    ``out_dir`` as it was."""
    speakers = corpus_speakers(speakers_root) if speakers_root else None
    opts = dict(on_bad_audio=args.on_bad_audio, resample=not args.no_resample, check=args.check)
    results = check_all(splits, args, skipped or {}, opts)
    if args.subset_fraction:
        train = next((r for r in results if r.split == "train"), None)
        if train is None:
            raise CorpusError("--subset-fraction needs a train split")
        name = args.subset_name or f"train{round(args.subset_fraction * 100)}"
        picked = subset(train.utterances, args.subset_fraction, args.seed, args.subset_min_per_intent)
        logger.info("%s: %d of %d training utterances (%.1f%%; --subset-fraction %g, at least %d per "
                    "intent)", name, len(picked), len(train.utterances),
                    100 * len(picked) / len(train.utterances), args.subset_fraction, args.subset_min_per_intent)
        results.append(check_split(name, picked, **opts))
    # without a speaker list, an old one from another corpus would name the wrong voices
    extra, stale = ({SPEAKERS_TSV: speakers}, ()) if speakers is not None else ({}, (SPEAKERS_TSV,))
    write_splits(out_dir, results, extra, stale)  # logs per split: written, skipped (and where listed)
    return results


def _librispeech_mapping(args):
    """[(librispeech split, output split)] from --splits NAME[=SPLIT] and --train/--valid/--test."""
    pairs = [(n, s) for s in SPLIT_ORDER for n in getattr(args, s) or []]
    for item in args.splits or []:
        name, _, split = item.partition("=")
        split = split or LIBRISPEECH_DEFAULT_SPLIT.get(name.split("-")[0])
        if not split:
            raise ValueError(f"--splits {item}: cannot guess the output split; write {name}=SPLIT")
        pairs.append((name, split))
    if not pairs:
        raise ValueError("name the LibriSpeech splits: --splits train-clean-100 dev-clean ...")
    return pairs


def run_fsc(args):
    return prepare(args.out, load_fsc(args.root), args, speakers_root=args.root)


def run_librispeech(args):
    splits = {}
    for name, split in _librispeech_mapping(args):
        splits.setdefault(split, []).extend(load_librispeech(args.root, name))
    return prepare(args.out, splits, args, speakers_root=args.root)


def run_snips(args):
    splits, unmatched = load_snips(args.root, tuple(args.fractions), args.split_seed,
                                   split_file=args.split_file)
    return prepare(args.out, splits, args, skipped=unmatched, speakers_root=args.root)


def run_tsv(args):
    splits = {s: load_tsv(p) for s, p in zip(SPLIT_ORDER, (args.train, args.valid, args.test))}
    # a TSV corpus has no single root: its speaker list sits beside the train TSV
    return prepare(args.out, splits, args, speakers_root=os.path.dirname(os.path.abspath(args.train)))


def _common_options():
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("checks")
    g.add_argument("--on-bad-audio", choices=BAD_AUDIO_POLICIES, default="error",
                   help="error: refuse the corpus, listing every missing/unreadable/empty file "
                   "(default); skip: write the rest and list the bad ones in "
                   "OUT/{split}.skipped.tsv")
    g.add_argument("--check", choices=AUDIO_CHECKS, default="header",
                   help="header: read only audio headers (fast, default); "
                   "decode: decode every file (slow, also catches corrupt data)")
    g.add_argument("--no-resample", action="store_true",
                   help="treat audio not at 16 kHz as bad instead of resampling it")
    g.add_argument("--allow-unseen-labels", action="store_true",
                   help="accept valid/test intents absent from train (by default an error "
                   "naming file and line: the classifier could never predict them)")
    g = p.add_argument_group("train subset")
    g.add_argument("--subset-fraction", type=float, default=None,
                   help="also write a split with this fraction of train, e.g. 0.1")
    g.add_argument("--subset-name", default=None,
                   help="name of that split (default: train<percent>, e.g. train10)")
    g.add_argument("--subset-min-per-intent", type=_count, default=1, metavar="N",
                   help="the subset is drawn per intent (each its share of the fraction); "
                   "every intent gets at least N utterances, or all it has (default 1: every "
                   "training intent is in the subset)")
    g.add_argument("--seed", type=int, default=1, help="seed of the subset draw (default 1)")
    return p


def _count(text):
    """argparse type: a whole number from 0 (so a bad value fails before any audio is read)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"takes a whole number from 0, not {text!r}")
    return int(text)


def _root_out(p):
    p.add_argument("root", metavar="ROOT", help="corpus directory, as distributed")
    p.add_argument("out", metavar="OUT", help="manifest dir to write (created if needed)")


def _corpus(sub, common, name, run, **kwargs):
    """The sub-command of a corpus read from ROOT: the common options, ROOT and OUT, then
    whatever the caller adds."""
    p = sub.add_parser(name, parents=[common], **kwargs)
    _root_out(p)
    p.set_defaults(run=run)
    return p


def build_parser():
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="slu-kd-prepare",
        description="Write a manifest dir ({split}.tsv/.txt/.ltr/.id/.label/.spk, labels.json, "
        "speakers.tsv when ROOT has one) "
        "from a corpus in its original layout. All splits are checked before anything "
        "is written. Run `slu-kd-prepare CORPUS --help` for a corpus's options.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    _corpus(sub, common, "fsc", run_fsc, help="Fluent Speech Commands",
            description="ROOT holds data/{train,valid,test}_data.csv and wavs/.")

    p = _corpus(sub, common, "librispeech", run_librispeech, help="LibriSpeech (transcripts only)",
                description="ROOT holds LibriSpeech split dirs (train-clean-100, ...). "
                "train-*, dev-*, test-* map to train, valid, test unless NAME=SPLIT "
                "says otherwise; several names for one split are concatenated.")
    p.add_argument("--splits", nargs="+", metavar="NAME[=SPLIT]",
                   help="e.g. train-clean-100 dev-clean test-clean or dev-other=test")
    for s in SPLIT_ORDER:
        p.add_argument(f"--{s}", nargs="+", metavar="NAME", help=f"LibriSpeech split(s) for {s}")

    p = _corpus(sub, common, "snips", run_snips, help="SNIPS SLU smart-lights",
                description="ROOT holds dataset.json and speech_corpus/. No official "
                "split: speakers are shuffled with --split-seed and cut by --fractions. "
                "Recordings whose text matches no intent are bad audio.")
    p.add_argument("--fractions", nargs=3, type=float, default=list(DEFAULT_FRACTIONS),
                   metavar=("TRAIN", "VALID", "TEST"),
                   help="fractions of the speakers per split (default 0.8 0.1 0.1)")
    p.add_argument("--split-seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the speaker split (default {DEFAULT_SEED})")
    p.add_argument("--split-file", metavar="FILE", default=None,
                   help="workerId<TAB>train|valid|test per line, every worker listed: the "
                   "split the corpus was made with (slu-kd-synth snips writes ROOT/split.tsv); "
                   "replaces --fractions and --split-seed")

    p = sub.add_parser("tsv", parents=[common], help="generic TSV corpus",
                       description="Each TSV has the header path<TAB>transcript<TAB>intent "
                       "(optional: speaker, id); paths are relative to the TSV's dir.")
    for name in ("train", "valid", "test"):
        p.add_argument(name, metavar=f"{name.upper()}.tsv")
    p.add_argument("out", metavar="OUT", help="manifest dir to write (created if needed)")
    p.set_defaults(run=run_tsv)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (CorpusError, AudioError, ValueError) as e:
        print(f"slu-kd-prepare: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
