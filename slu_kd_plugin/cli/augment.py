"""slu-kd-augment: perturbed copies of a manifest split as extra training utterances.

    slu-kd-augment MANIFEST_DIR --split train --speed 0.9,1.1            # Kaldi-style
    slu-kd-augment MANIFEST_DIR --split train --preset speed,pitch,vtlp
    slu-kd-augment MANIFEST_DIR --split train --noise-snr 5:20 --reverb 0.2:0.8 \\
        --combine --copies-per-utt 2 --seed 3 --jobs 2

Writes 16 kHz PCM16 copies under --audio-dir (default MANIFEST_DIR/audio/OUT_SPLIT),
in a subdirectory named after a hash of the settings, and the split OUT_SPLIT
(default SPLIT_aug: .tsv .txt .ltr .id, .label/.spk when SPLIT has them): the
originals, then every copy (ids get a suffix: -sp1.1, -ps2, -vt0.9, -noise1, -rev1,
-mix1).  Without --combine each listed value is one copy, and noise/reverb give
--copies-per-utt copies each; with --combine each of --copies-per-utt copies applies
every given perturbation with a value drawn from its list or range.  Same --seed,
same bytes, whatever --jobs; a rerun keeps the copies already written.
"""
import argparse
import logging
import sys

from . import cli_parser


def _floats(text):
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}") from None


def _range(text):
    parts = _floats(text.replace(":", ","))
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH, not {text!r}")
    return parts


def get_parser():
    p = cli_parser("slu-kd-augment", __doc__)
    p.add_argument("manifest_dir", help="directory with SPLIT.tsv/.txt/.ltr/.id (slu-kd-prepare)")
    p.add_argument("--split", default="train", help="split to augment (default train)")
    p.add_argument("--out-split", default=None, help="name of the new split (default SPLIT_aug)")
    p.add_argument("--audio-dir", default=None, help="where the copies go (default MANIFEST_DIR/audio/OUT_SPLIT)")
    p.add_argument("--preset", default="",
                   help="comma list of speed (0.9,1.1), pitch (-2,2 semitones), vtlp (0.9,1.1), "
                        "noise (10:30 dB), reverb (0.2:0.6 s) or none; the options below override")
    p.add_argument("--speed", type=_floats, default=None, help="speed factors, e.g. 0.9,1.1")
    p.add_argument("--pitch", type=_floats, default=None, help="pitch shifts in semitones, e.g. --pitch=-2,2 (with =: argparse takes -2,2 for an option)")
    p.add_argument("--vtlp", type=_floats, default=None,
                   help="formant (vocal-tract-length) warp factors, e.g. 0.9,1.1 (>1: higher formants)")
    p.add_argument("--noise-snr", type=_range, default=None, help="additive noise, SNR range LOW:HIGH dB")
    p.add_argument("--noise-color", type=lambda t: tuple(c for c in t.split(",") if c), default=None,
                   help="white,pink (default both, drawn per copy)")
    p.add_argument("--reverb", type=_range, default=None, help="synthetic reverberation, RT60 range LOW:HIGH s")
    p.add_argument("--copies-per-utt", type=int, default=None,
                   help="noisy/reverberant copies (or --combine copies) per utterance (default 1)")
    p.add_argument("--combine", action="store_true", default=None,
                   help="each copy applies every given perturbation, values drawn at random")
    p.add_argument("--seed", type=int, default=1, help="same seed, same bytes")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (output does not depend on it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_of(args):
    from slu_kd_plugin.corpora.augment_audio import config_from_presets

    return config_from_presets(
        args.preset, speed=args.speed, pitch=args.pitch, vtlp=args.vtlp, noise_snr=args.noise_snr,
        noise_colors=args.noise_color, reverb_rt60=args.reverb, copies_per_utt=args.copies_per_utt,
        combine=args.combine, seed=args.seed).check()


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from slu_kd_plugin.corpora.augment_audio import AugmentError, augment_split

    try:
        res = augment_split(args.manifest_dir, args.split, config_of(args), args.out_split,
                            args.audio_dir, n_jobs=args.jobs, progress=not args.no_progress)
    except AugmentError as e:
        sys.exit(f"slu-kd-augment: error: {e}")
    speed = res.audio_s / res.wall_s if res.wall_s > 0 and res.audio_s else 0.0
    print(f"{res.split}: {res.n_original} utterances + {res.n_copies} copies in {res.audio_dir}"
          + (f" ({res.audio_s:.0f} s of audio perturbed, {speed:.1f} s/s)" if res.audio_s else ""))


if __name__ == "__main__":
    main()
