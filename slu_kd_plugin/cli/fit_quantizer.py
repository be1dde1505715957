"""slu-kd-fit-quantizer: make an offline quantizer file.

    slu-kd-fit-quantizer MANIFEST_DIR --kind pocketsphinx --decoding words --split train --out words.pt
    slu-kd-fit-quantizer --kind pocketsphinx --decoding phones --frame-ms 30 --out phones.pt
    slu-kd-fit-quantizer MANIFEST_DIR --kind kmeans --split train --n-clusters 100 \\
        --max-frames 200000 --seed 1 --out kmeans.pt

pocketsphinx: phone units of CMU's pretrained en-us acoustic model (the pocketsphinx
package).  --decoding words decodes words with a trigram LM fitted on the split's
transcripts ({split}.txt) and writes their phones, --phone-tokens tokens each;
--decoding phrases decodes them as one of the split's distinct transcripts (the trigram
where none fits); --decoding phones decodes phones with the package's generic phone LM (nothing is
fitted), one token per --frame-ms of each.  The file records the settings, the LM
and which acoustic model it needs.
kmeans: MFCC + k-means fitted on a seeded random subset of the split's frames, so
the same data and seed always give the same file.
"""
import logging
import os
import sys

from . import cli_parser


def get_parser():
    p = cli_parser("slu-kd-fit-quantizer", __doc__)
    p.add_argument("manifest_dir", nargs="?", help="directory with {split}.tsv (kmeans only)")
    p.add_argument("--kind", choices=("kmeans", "pocketsphinx"), default="kmeans",
                   help="kmeans: MFCC k-means fitted on the split; pocketsphinx: pretrained "
                        "speaker-independent phone units")
    p.add_argument("--decoding", choices=("words", "phrases", "phones"), default="words",
                   help="pocketsphinx: words (trigram LM of the split's transcripts; the phones of "
                        "the decoded words), phrases (words constrained to the split's distinct "
                        "transcripts, the trigram where none fits: for commands phrased as in "
                        "training) or phones (all-phone decoding, corpus-independent)")
    p.add_argument("--frame-ms", type=int, default=30,
                   help="pocketsphinx: one phone token per this many ms of each phone")
    p.add_argument("--topn", type=int,
                   help="pocketsphinx: Gaussians scored per phone codebook and frame, 1-128 "
                        "(default 16 for words and for phrases with a second opinion, 64 for phrases without, pocketsphinx's own 4 for phones; in word "
                        "decoding 4 decodes unfamiliar voices worse, 128 best and ~4x slower "
                        "than 16; README)")
    p.add_argument("--phone-tokens", type=int,
                   help="pocketsphinx: write each decoded phone (and each pause) as this many "
                        "tokens whatever its duration, 0-10; 0 keeps durations (one token per "
                        "--frame-ms). Default 3 for words (a word's phone durations are made up "
                        "from its length, i.e. from how fast the voice speaks; README), 0 for phones")
    p.add_argument("--prime-ms", type=int, default=0,
                   help="pocketsphinx: decode the first this many ms of each utterance once before "
                        "the whole, 0-5000 (0: off). The decoder starts every utterance afresh, and "
                        "its noise and cepstral-mean estimates need about a second of the voice: "
                        "1000 cut word errors on unseen voices by a fifth for ~40%% more decoding "
                        "time (README)")
    p.add_argument("--second-opinion", choices=("moonshine", "none"),
                   help="pocketsphinx phrases: also ask Moonshine tiny (ONNX, installed by "
                        "scripts/setup.sh) which training phrase it hears in each utterance, and "
                        "take its phrase where it prefers it to pocketsphinx's by more than "
                        "--second-opinion-margin (default for phrases: moonshine; README: "
                        "\"A second opinion\")")
    p.add_argument("--second-opinion-margin", type=float, metavar="NATS",
                   help="log-probability by which Moonshine must prefer its phrase to overrule "
                        "pocketsphinx's (default 4, chosen on valid voices; 0: always Moonshine's)")
    p.add_argument("--like", metavar="QUANTIZER",
                   help="pocketsphinx words: keep this pocketsphinx quantizer's frame rate, "
                        "tokens per phone and acoustic model (the units a speech BERT was "
                        "pretrained on) and fit only "
                        "the word LM anew, on this split's transcripts (a corpus' own LM)")
    p.add_argument("--split", default="train", help="manifest split to fit on")
    p.add_argument("--n-clusters", type=int, default=100, help="number of units (k)")
    p.add_argument("--max-frames", type=int, default=200000,
                   help="at most this many 10 ms frames are clustered")
    p.add_argument("--frame-fraction", type=float, default=0.25,
                   help="share of each visited utterance's frames kept (more utterances, "
                        "less decoding); raised automatically when the split is small")
    p.add_argument("--n-iter", type=int, default=50, help="maximum Lloyd iterations")
    p.add_argument("--seed", type=int, default=1, help="seeds frame sampling and k-means++")
    p.add_argument("--no-merge-repeats", action="store_true",
                   help="keep one unit per frame instead of collapsing repeated units")
    p.add_argument("--out", required=True, help="quantizer file to write (torch)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; the default 1 also keeps the fit bit-identical "
                        "across machines (summation order in matmuls depends on threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    # (quantizer files are read by checkpoints.torch_load, which installs the allow-list)
    from slu_kd_plugin.quantize import QuantizerError
    from slu_kd_plugin.quantize.featurize import FeaturizeError, read_manifest

    needs_data = args.kind == "kmeans" or args.decoding != "phones"
    if needs_data and args.manifest_dir is None:
        sys.exit(f"slu-kd-fit-quantizer: error: --kind {args.kind}"
                 f"{f' --decoding {args.decoding}' if args.kind == 'pocketsphinx' else ''} needs MANIFEST_DIR")
    if args.kind == "pocketsphinx":
        return _pocketsphinx(args)
    torch.set_num_threads(args.threads)
    from slu_kd_plugin.quantize.mfcc_kmeans import fit_quantizer, sample_training_frames
    progress = not args.no_progress
    try:
        entries = read_manifest(os.path.join(args.manifest_dir, f"{args.split}.tsv"))
        frames = sample_training_frames(entries, args.max_frames, seed=args.seed,
                                        frame_fraction=args.frame_fraction, progress=progress)
        q = fit_quantizer(frames, args.n_clusters, seed=args.seed, n_iter=args.n_iter,
                          merge_repeats=not args.no_merge_repeats, progress=progress,
                          info={"manifest": os.path.abspath(args.manifest_dir), "split": args.split})
    except (FeaturizeError, QuantizerError) as e:
        sys.exit(f"slu-kd-fit-quantizer: error: {e}")
    q.save(args.out)
    logging.getLogger("slu-kd-fit-quantizer").info("wrote %s", q.describe())


def _transcripts(manifest_dir, split):
    from slu_kd_plugin.quantize import QuantizerError

    path = os.path.join(manifest_dir, f"{split}.txt")
    if not os.path.isfile(path):
        raise QuantizerError(f"{path}: no transcripts for the word LM (slu-kd-prepare writes them)")
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _take_settings(args):
    """--like: the units of a pocketsphinx quantizer made with the installed acoustic model."""
    from slu_kd_plugin.quantize import QuantizerError, load_quantizer
    from slu_kd_plugin.quantize.pocketsphinx_phones import acoustic_model_fingerprint

    like = load_quantizer(args.like)
    if getattr(like, "kind", None) != "pocketsphinx_phones":
        raise QuantizerError(f"{args.like}: --like takes a pocketsphinx quantizer, not {like.describe()}")
    if args.decoding == "phones":
        raise QuantizerError("--like refits a word LM: it needs --decoding words or phrases")
    if like.fingerprint != acoustic_model_fingerprint():
        raise QuantizerError(f"{args.like}: made with another pocketsphinx acoustic model than the installed one")
    args.frame_ms, args.phone_tokens = like.frame_ms, like.phone_tokens


def _second_opinion(args):
    from slu_kd_plugin.quantize import QuantizerError
    from slu_kd_plugin.quantize.pocketsphinx_phones import DEFAULT_MARGIN

    kind = args.second_opinion or ("moonshine" if args.decoding == "phrases" else "none")
    if kind == "none":
        if args.second_opinion_margin is not None:
            raise QuantizerError("--second-opinion-margin needs a second opinion (--decoding phrases)")
        return None
    if args.decoding != "phrases":
        raise QuantizerError(f"--second-opinion {kind} chooses among the training phrases: it needs --decoding phrases")
    margin = DEFAULT_MARGIN if args.second_opinion_margin is None else args.second_opinion_margin
    return {"kind": kind, "margin": margin}


def _pocketsphinx(args):
    import torch

    from slu_kd_plugin.quantize import QuantizerError
    from slu_kd_plugin.quantize.pocketsphinx_phones import PocketsphinxPhoneQuantizer, fit_word_lm

    try:
        if args.like:
            _take_settings(args)
        word_lm, info = None, {}
        if args.decoding != "phones":
            word_lm = fit_word_lm(_transcripts(args.manifest_dir, args.split), phrases=args.decoding == "phrases")
            info = {"manifest": os.path.abspath(args.manifest_dir), "split": args.split}
        q = PocketsphinxPhoneQuantizer(frame_ms=args.frame_ms, word_lm=word_lm, info=info, topn=args.topn,
                                       phone_tokens=args.phone_tokens, prime_ms=args.prime_ms,
                                       second_opinion=_second_opinion(args))
        q.encode(torch.zeros(16000))  # the decoder starts, or fails here
    except QuantizerError as e:
        sys.exit(f"slu-kd-fit-quantizer: error: {e}")
    q.save(args.out)
    logging.getLogger("slu-kd-fit-quantizer").info("wrote %s", q.describe())


if __name__ == "__main__":
    main()
