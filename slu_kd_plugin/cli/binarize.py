"""Turn a manifest dir (+ units) into the fairseq data-bin every training stage reads.

    DEST/units/   unit tokens            (dict: the quantizer's, all symbols)
    DEST/input0/  teacher text (spm/BPE) (what fairseq's sentence_prediction reads)
    DEST/label/   intent labels          (one dict shared by teacher and student)
    DEST/ltr/     CTC characters         (fixed A-Z ' | dict)
    DEST/text/    the transcripts as written, {split}.txt (what Hugging Face teachers
                  tokenize themselves: hf_text_classification, slu_finetuning)

Each stream but text is binarized by the real ``fairseq-preprocess --only-source --srcdict``;
dictionaries are written first, so every corpus and every stage shares them.
"""
import logging
import os
import re
import sys
import tempfile

from ..text_encoding import Gpt2Encoder, SpmEncoder, train_spm
from ..utils import atomic_write
from . import cli_parser

CTC_CHARS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ'|")
STANDARD = ("train", "valid", "test")


def parse_args(argv=None):
    p = cli_parser("slu-kd-binarize", __doc__)
    p.add_argument("manifest_dir", help="dir with {split}.txt/.label/.ltr (slu-kd-prepare)")
    p.add_argument("dest", help="data-bin dir to write")
    p.add_argument("--units-dir", help="dir with {split}.units and dict.units.txt (default: manifest_dir)")
    p.add_argument("--splits", nargs="+", default=list(STANDARD), help="splits to binarize (default: train valid test)")
    p.add_argument("--streams", nargs="+", default=["units", "input0", "label", "ltr", "text"],
                   choices=["units", "input0", "label", "ltr", "text"],
                   help="what to write (text: a plain copy of the transcripts)")
    p.add_argument("--text-encoder", choices=["spm", "gpt2"], default="spm")
    p.add_argument("--spm-model", help="existing sentencepiece model (default: train one on the train text)")
    p.add_argument("--spm-vocab-size", type=int, default=300)
    p.add_argument("--spm-extra-text", nargs="*", default=[], help="more text files to fit sentencepiece on")
    p.add_argument("--gpt2-encoder-json", help="GPT-2 BPE encoder.json (for roberta.base teachers)")
    p.add_argument("--gpt2-vocab-bpe", help="GPT-2 BPE vocab.bpe")
    p.add_argument("--text-case", choices=["lower", "keep"], default="lower",
                   help="GPT-2 BPE input: lower-cased (the paper's choice, default) or as written "
                        "(roberta.base is cased); sentencepiece models are always fitted lower-cased")
    p.add_argument("--text-dict", help="text dict.txt to reuse (required with gpt2: roberta.base's dict.txt)")
    p.add_argument("--label-dict", help="label dict.txt to reuse (another corpus' or a teacher's)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def write_dict(path, lines):
    with atomic_write(path) as f:
        f.write("".join(line + "\n" for line in lines))


def read_lines(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def label_dict_lines(args):
    """Sorted training labels (count 1) unless a dict is given to share."""
    if args.label_dict:
        return read_lines(args.label_dict)
    labels = sorted(set(read_lines(os.path.join(args.manifest_dir, "train.label"))))
    return [f"{label} 1" for label in labels]


# a vq-wav2vec unit: group indices joined by "-" (k-means units are plain integers)
VQ_UNIT = re.compile(r"^\d+(-\d+)+$")


def check_aligned(args, split):
    """Every stream's file of a split must have one line per utterance."""
    counts = {}
    for stream in args.streams:
        source = stream_source(args, stream, split)
        counts[source] = len(read_lines(source))
    if len(set(counts.values())) > 1:
        raise ValueError(f"split '{split}': files are not line-aligned: "
                         + ", ".join(f"{path} has {n} lines" for path, n in counts.items()))


def check_known_units(args):
    """fairseq-preprocess would silently turn a unit missing from the dictionary into <unk>;
    such a unit means the units and dict.units.txt come from different quantizers.

    Except vq-wav2vec units when the dictionary holds vq-wav2vec units too: such
    dictionaries are often cut to the units seen in training (bert_kmeans' dict.txt, the
    recipes' seen-units dict), so an unseen one becomes <unk>, as it did in pretraining.
    """
    from fairseq.data import Dictionary

    dict_path = os.path.join(args.units_dir or args.manifest_dir, "dict.units.txt")
    read_lines(dict_path)  # a clear error when it is missing
    dictionary = Dictionary.load(dict_path)
    known, n_units = dictionary.indices, len(dictionary) - dictionary.nspecial
    cut_vq = any(VQ_UNIT.match(unit) for unit in known)
    for split in args.splits:
        path = stream_source(args, "units", split)
        n_unk, n_tokens, unseen = unknown_units(path, known, cut_vq, dict_path, n_units)
        if n_unk:  # tokens and their share: what the model loses, not just how many kinds
            print(f"binarize: {path}: {n_unk:,} of {n_tokens:,} unit tokens ({100 * n_unk / n_tokens:.2f}%) "
                  f"become <unk>: {len(unseen):,} distinct vq-wav2vec units not in {dict_path}")


def unknown_units(path, known, cut_vq, dict_path, n_units):
    """(tokens that become <unk>, all tokens, the distinct unknown units) of a units file;
    an unknown unit is refused unless both it and the dictionary are vq-wav2vec's."""
    n_unk, n_tokens, unseen = 0, 0, set()
    for lineno, line in enumerate(read_lines(path), 1):
        tokens = line.split()
        n_tokens += len(tokens)
        for unit in tokens:
            if unit in known:
                continue
            if not (cut_vq and VQ_UNIT.match(unit)):
                raise ValueError(f"{path}:{lineno}: unit {unit!r} is not in {dict_path} "
                                 f"({n_units} units): the units were made with another "
                                 "quantizer than the dictionary")
            n_unk += 1
            unseen.add(unit)
    return n_unk, n_tokens, unseen


def check_inputs(args):
    """What would stop binarization half-way, checked before anything is written."""
    for split in args.splits:
        check_aligned(args, split)
    if "units" in args.streams:
        check_known_units(args)
    if "label" in args.streams:
        known = {line.split(" ")[0] for line in label_dict_lines(args)}
        for split in args.splits:
            check_known_labels(args, split, known)


def check_known_labels(args, split, known):
    path = os.path.join(args.manifest_dir, f"{split}.label")
    for lineno, label in enumerate(read_lines(path), 1):
        if label not in known:
            raise ValueError(f"{path}:{lineno}: intent '{label}' does not occur in the training labels "
                             "(the model cannot predict it); fix the split or pass --label-dict")


def fit_spm(texts, dest, vocab_size):
    """DEST/spm.model (+ .vocab), trained under a temporary name and renamed: an interrupted
    run never leaves a half-written model that a later --spm-model would trust."""
    tmp = os.path.join(dest, "spm.tmp")
    train_spm(texts, tmp, vocab_size)
    for ext in ("vocab", "model"):  # the model last: its presence means both are complete
        os.replace(f"{tmp}.{ext}", os.path.join(dest, f"spm.{ext}"))
    return os.path.join(dest, "spm.model")


def text_encoder(args, dest):
    if args.text_encoder == "gpt2":
        if not (args.gpt2_encoder_json and args.gpt2_vocab_bpe and args.text_dict):
            raise SystemExit("--text-encoder gpt2 needs --gpt2-encoder-json, --gpt2-vocab-bpe and --text-dict")
        encoder = Gpt2Encoder(args.gpt2_encoder_json, args.gpt2_vocab_bpe, lowercase=args.text_case == "lower")
        return encoder, read_lines(args.text_dict)
    model = args.spm_model
    if not model:
        texts = [os.path.join(args.manifest_dir, "train.txt")] + args.spm_extra_text
        model = fit_spm(texts, dest, args.spm_vocab_size)
    enc = SpmEncoder(model)
    return enc, read_lines(args.text_dict) if args.text_dict else enc.dictionary_lines()


def stream_source(args, stream, split):
    """Path of the plain-text file fairseq-preprocess should read for a stream/split."""
    if stream == "units":
        return os.path.join(args.units_dir or args.manifest_dir, f"{split}.units")
    ext = {"input0": "txt", "text": "txt", "label": "label", "ltr": "ltr"}[stream]
    return os.path.join(args.manifest_dir, f"{split}.{ext}")


def encode_text_file(src, dst, encoder):
    with open(dst, "w", encoding="utf-8") as f:
        for line in read_lines(src):
            f.write(encoder.encode(line) + "\n")


def preprocess(source, dictionary, out_dir, split):
    """Binarize one file into out_dir/{split}.bin/.idx with fairseq-preprocess.

    The same as ``fairseq-preprocess --only-source --srcdict DICT --trainpref SRC``,
    run in-process (fairseq's own parser and main) to pay fairseq's import once.
    """
    from fairseq import options
    from fairseq_cli import preprocess as fairseq_preprocess

    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        argv = ["--only-source", "--srcdict", dictionary, "--trainpref", source,
                "--destdir", tmp, "--workers", "1", "--dataset-impl", "mmap"]
        fairseq_preprocess.main(options.get_preprocessing_parser().parse_args(argv))
        # the old .idx goes first: a crash between the two renames then leaves the split
        # without an index (refused as missing), never a new .bin read through an old .idx
        if os.path.exists(os.path.join(out_dir, f"{split}.idx")):
            os.remove(os.path.join(out_dir, f"{split}.idx"))
        for ext in ("bin", "idx"):
            os.replace(os.path.join(tmp, f"train.{ext}"), os.path.join(out_dir, f"{split}.{ext}"))


def stream_dict_lines(args, stream, dest, encoder_and_dict):
    if stream == "units":
        return read_lines(os.path.join(args.units_dir or args.manifest_dir, "dict.units.txt"))
    if stream == "input0":
        return encoder_and_dict[1]
    if stream == "label":
        return label_dict_lines(args)
    return [f"{c} 1" for c in CTC_CHARS]


def copy_text(args, dest):
    """DEST/text/{split}.txt: the transcripts unchanged (line-aligned with the other streams)."""
    out_dir = os.path.join(dest, "text")
    os.makedirs(out_dir, exist_ok=True)
    for split in args.splits:
        source = stream_source(args, "text", split)
        with atomic_write(os.path.join(out_dir, f"{split}.txt"), encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in read_lines(source)))
        print(f"binarize: text/{split} <- {source}", flush=True)


def binarize_stream(args, stream, dest, encoder_and_dict):
    if stream == "text":
        return copy_text(args, dest)
    out_dir = os.path.join(dest, stream)
    os.makedirs(out_dir, exist_ok=True)
    dict_lines = stream_dict_lines(args, stream, dest, encoder_and_dict)
    dict_path = os.path.join(out_dir, "dict.txt")
    write_dict(dict_path, dict_lines)
    for split in args.splits:
        source = stream_source(args, stream, split)
        if stream == "input0":
            encoded = os.path.join(out_dir, f"{split}.tok.tmp")
            encode_text_file(source, encoded, encoder_and_dict[0])
            source = encoded
        try:
            preprocess(source, dict_path, out_dir, split)
        finally:
            if stream == "input0" and os.path.exists(source):
                os.remove(source)
        print(f"binarize: {stream}/{split} <- {stream_source(args, stream, split)}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    logging.getLogger("fairseq_cli.preprocess").setLevel(logging.WARNING)
    try:
        check_inputs(args)  # a refused run leaves DEST as it was
    except (OSError, ValueError) as e:
        sys.exit(f"slu-kd-binarize: error: {e}")
    os.makedirs(args.dest, exist_ok=True)
    encoder_and_dict = text_encoder(args, args.dest) if "input0" in args.streams else None
    for stream in args.streams:
        binarize_stream(args, stream, args.dest, encoder_and_dict)
    if encoder_and_dict and args.text_encoder == "spm" and not args.spm_model:
        print(f"binarize: sentencepiece model {os.path.join(args.dest, 'spm.model')}")
    print(f"binarize: wrote {args.dest}")


if __name__ == "__main__":
    main()
