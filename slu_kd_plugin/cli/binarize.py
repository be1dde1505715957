"""Turn a manifest dir (+ units) into the fairseq data-bin every training stage reads.

    DEST/units/   unit tokens            (dict: the quantizer's, all symbols)
    DEST/input0/  teacher text (spm/BPE) (what fairseq's sentence_prediction reads)
    DEST/label/   intent labels          (one dict shared by teacher and student)
    DEST/ltr/     CTC characters         (fixed A-Z ' | dict)

Each stream is binarized by the real ``fairseq-preprocess --only-source --srcdict``;
dictionaries are written first, so every corpus and every stage shares them.
"""
import argparse
import os
import logging
import tempfile

from ..text_encoding import Gpt2Encoder, SpmEncoder, train_spm
from ..utils import atomic_write

CTC_CHARS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ'|")
STANDARD = ("train", "valid", "test")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="slu-kd-binarize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest_dir", help="dir with {split}.txt/.label/.ltr (slu-kd-prepare)")
    p.add_argument("dest", help="data-bin dir to write")
    p.add_argument("--units-dir", help="dir with {split}.units and dict.units.txt (default: manifest_dir)")
    p.add_argument("--splits", nargs="+", default=list(STANDARD), help="splits to binarize (default: train valid test)")
    p.add_argument("--streams", nargs="+", default=["units", "input0", "label", "ltr"],
                   choices=["units", "input0", "label", "ltr"], help="what to binarize")
    p.add_argument("--text-encoder", choices=["spm", "gpt2"], default="spm")
    p.add_argument("--spm-model", help="existing sentencepiece model (default: train one on the train text)")
    p.add_argument("--spm-vocab-size", type=int, default=300)
    p.add_argument("--spm-extra-text", nargs="*", default=[], help="more text files to fit sentencepiece on")
    p.add_argument("--gpt2-encoder-json", help="GPT-2 BPE encoder.json (for roberta.base teachers)")
    p.add_argument("--gpt2-vocab-bpe", help="GPT-2 BPE vocab.bpe")
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


def check_known_labels(args, split, known):
    path = os.path.join(args.manifest_dir, f"{split}.label")
    for lineno, label in enumerate(read_lines(path), 1):
        if label not in known:
            raise ValueError(f"{path}:{lineno}: intent '{label}' does not occur in the training labels "
                             "(the model cannot predict it); fix the split or pass --label-dict")


def text_encoder(args, dest):
    if args.text_encoder == "gpt2":
        if not (args.gpt2_encoder_json and args.gpt2_vocab_bpe and args.text_dict):
            raise SystemExit("--text-encoder gpt2 needs --gpt2-encoder-json, --gpt2-vocab-bpe and --text-dict")
        return Gpt2Encoder(args.gpt2_encoder_json, args.gpt2_vocab_bpe), read_lines(args.text_dict)
    model = args.spm_model
    if not model:
        texts = [os.path.join(args.manifest_dir, "train.txt")] + args.spm_extra_text
        model = train_spm(texts, os.path.join(dest, "spm"), args.spm_vocab_size)
    enc = SpmEncoder(model)
    return enc, read_lines(args.text_dict) if args.text_dict else enc.dictionary_lines()


def stream_source(args, stream, split):
    """Path of the plain-text file fairseq-preprocess should read for a stream/split."""
    if stream == "units":
        return os.path.join(args.units_dir or args.manifest_dir, f"{split}.units")
    ext = {"input0": "txt", "label": "label", "ltr": "ltr"}[stream]
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


def binarize_stream(args, stream, dest, encoder_and_dict):
    out_dir = os.path.join(dest, stream)
    os.makedirs(out_dir, exist_ok=True)
    dict_lines = stream_dict_lines(args, stream, dest, encoder_and_dict)
    dict_path = os.path.join(out_dir, "dict.txt")
    write_dict(dict_path, dict_lines)
    if stream == "label":
        known = {line.split(" ")[0] for line in dict_lines}
        for split in args.splits:
            check_known_labels(args, split, known)
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
    os.makedirs(args.dest, exist_ok=True)
    for stream in args.streams:  # fail early, before anything is written
        for split in args.splits:
            read_lines(stream_source(args, stream, split))
    encoder_and_dict = text_encoder(args, args.dest) if "input0" in args.streams else None
    for stream in args.streams:
        binarize_stream(args, stream, args.dest, encoder_and_dict)
    if encoder_and_dict and args.text_encoder == "spm" and not args.spm_model:
        print(f"binarize: sentencepiece model {os.path.join(args.dest, 'spm.model')}")
    print(f"binarize: wrote {args.dest}")


if __name__ == "__main__":
    main()
