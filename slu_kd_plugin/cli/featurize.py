"""slu-kd-featurize: turn manifest splits into unit sequences with a quantizer.

    slu-kd-featurize MANIFEST_DIR --quantizer kmeans.pt --split train,valid,test
    # sharded (e.g. one job per shard), then merged:
    slu-kd-featurize MANIFEST_DIR --quantizer q.pt --split train --rank 0 --nshard 4
    ...
    slu-kd-featurize MANIFEST_DIR --quantizer q.pt --split train --nshard 4 --merge

Writes ``{split}.units`` (line-aligned with ``{split}.tsv``) and ``dict.units.txt``
to --out (default: MANIFEST_DIR). An interrupted run resumes from its .partial file.
"""
import collections
import logging
import os
import sys

from ..utils import atomic_write
from . import cli_parser


def get_parser():
    p = cli_parser("slu-kd-featurize", __doc__)
    p.add_argument("manifest_dir", help="directory with {split}.tsv")
    p.add_argument("--seen-units-dict", action="store_true",
                   help="encode nothing: write MANIFEST_DIR/dict.units.txt with the units of --split's "
                        ".units, most frequent first (vq-wav2vec can emit 320 x 320 pairs; a model needs "
                        "rows for the few used)")
    p.add_argument("--quantizer",
                   help="slu-kd quantizer file (slu-kd-fit-quantizer) or a fairseq vq-wav2vec checkpoint")
    p.add_argument("--split", default="train", help="comma-separated splits")
    p.add_argument("--out", default=None, help="output directory (default: MANIFEST_DIR)")
    p.add_argument("--rank", type=int, default=0, help="shard to encode (0-based)")
    p.add_argument("--nshard", type=int, default=1, help="number of shards")
    p.add_argument("--merge", action="store_true",
                   help="only concatenate the --nshard complete shards into {split}.units")
    p.add_argument("--subset-of", metavar="SPLIT",
                   help="decode nothing: write each --split's units from SPLIT's .units, every "
                        "utterance of it being one of SPLIT's (the recipes' 10%% subset of train)")
    p.add_argument("--merge-repeats", choices=["yes", "no"], default=None,
                   help="override the quantizer's default for collapsing repeated units")
    p.add_argument("--device", default="cpu", help="torch device for vq-wav2vec (e.g. cuda)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave an existing complete output alone instead of recomputing it")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process; per-utterance work is small, so run "
                        "one shard per core rather than many threads (torch's thread pool "
                        "on oversubscribed cores is many times slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args):
    import torch

    from slu_kd_plugin.quantize import load_quantizer
    from slu_kd_plugin.quantize.featurize import featurize_split, merge_shards

    torch.set_num_threads(args.threads)
    merge = None if args.merge_repeats is None else args.merge_repeats == "yes"
    q = load_quantizer(args.quantizer, device=args.device, merge_repeats=merge)
    logging.getLogger("slu-kd-featurize").info("%s", q.describe())
    for split in [s for s in args.split.split(",") if s]:
        if args.merge:
            merge_shards(args.manifest_dir, split, args.nshard, args.out, quantizer=q)
        else:
            featurize_split(q, args.manifest_dir, split, args.out, args.rank, args.nshard,
                            progress=not args.no_progress, skip_existing=args.skip_existing)


def seen_units_dict(manifest_dir, split):
    counts = collections.Counter(tok for line in open(os.path.join(manifest_dir, f"{split}.units"))
                                 for tok in line.split())
    with atomic_write(os.path.join(manifest_dir, "dict.units.txt")) as f:
        f.writelines(f"{t} {c}\n" for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.seen_units_dict:
        return seen_units_dict(args.manifest_dir, args.split)
    if not args.quantizer and not args.subset_of:
        parser.error("the following arguments are required: --quantizer")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # (quantizer files are read by checkpoints.torch_load, which installs the allow-list)
    from slu_kd_plugin.quantize import QuantizerError
    from slu_kd_plugin.quantize.featurize import FeaturizeError, subset_units

    try:
        if args.subset_of:
            for split in [s for s in args.split.split(",") if s]:
                subset_units(args.manifest_dir, split, args.subset_of, args.out)
            return
        run(args)
    except (FeaturizeError, QuantizerError) as e:
        sys.exit(f"slu-kd-featurize: error: {e}")


if __name__ == "__main__":
    main()
