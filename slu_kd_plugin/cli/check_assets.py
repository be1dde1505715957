"""Check the published assets a recipe is given before any long work starts.

    python -m slu_kd_plugin.cli.check_assets --vq-wav2vec vq-wav2vec_kmeans.pt \\
        --speech-bert bert_kmeans/ --text-model roberta.base/ \\
        --gpt2-encoder-json encoder.json --gpt2-vocab-bpe vocab.bpe
    python -m slu_kd_plugin.cli.check_assets --pretrained-env WORK/assets.env
    python -m slu_kd_plugin.cli.check_assets --text-model-arch roberta.base/model.pt

Every file is opened and checked against the others (the speech BERT's dict.txt against
its embedding rows and the quantizer's units, the text model's against its embedding rows
and encoder.json); every problem is reported, each naming its file, and the exit status
is 2.  ``--text-model-arch`` prints the fairseq-train size flags of a RoBERTa checkpoint
(layers, dims, heads, positions), so a text teacher is built at the checkpoint's size.
"""
import argparse
import json
import os
import shlex
import sys

from . import cli_parser

# fairseq's RobertaHubInterface downloads these at run time (fairseq/data/encoders/gpt2_bpe.py)
GPT2_URL = "https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe/"
WHERE_GPT2 = (f"encoder.json and vocab.bpe are not in roberta.base's archive: fairseq serves them "
              f"from {GPT2_URL} (encoder.json, vocab.bpe); give --gpt2-encoder-json / --gpt2-vocab-bpe "
              "(default: beside the text model's checkpoint)")
# assets.env keys that name files an SLU recipe reads
ASSET_FILES = ("QUANTIZER", "UNIT_DICT", "TEXT_DICT", "SPEECH_BERT", "TEXT_MODEL", "PT_KD", "AM_PT")


def parse_args(argv=None):
    p = cli_parser("python -m slu_kd_plugin.cli.check_assets", __doc__)
    p.add_argument("--vq-wav2vec", help="vq-wav2vec_kmeans.pt")
    p.add_argument("--speech-bert", help="bert_kmeans checkpoint, with its dict.txt beside it")
    p.add_argument("--text-model", help="roberta.base's model.pt, with its dict.txt beside it")
    p.add_argument("--gpt2-encoder-json", help="GPT-2 BPE encoder.json (needed with --text-model)")
    p.add_argument("--gpt2-vocab-bpe", help="GPT-2 BPE vocab.bpe (needed with --text-model)")
    p.add_argument("--pretrained-env", help="assets.env of examples/librispeech/run.sh: every file it names")
    p.add_argument("--text-model-arch", metavar="CHECKPOINT", help="print the size flags of a RoBERTa checkpoint")
    p.add_argument("--max-positions", nargs=2, metavar=("CHECKPOINT", "CAP"),
                   help="print the positions a RoBERTa checkpoint was built for, at most CAP")
    return p.parse_args(argv)


def beside(path, name):
    return os.path.join(os.path.dirname(os.path.abspath(path)), name)


def roberta_dictionary(dict_path):
    """The dictionary fairseq's RoBERTa tasks make of a dict.txt (``<mask>`` added)."""
    from fairseq.data import Dictionary

    if not os.path.isfile(dict_path):
        raise FileNotFoundError(f"{dict_path}: the checkpoint's dictionary is missing (it belongs beside it)")
    d = Dictionary.load(dict_path)
    d.path = dict_path  # check_vocab names it
    d.add_symbol("<mask>")
    return d


def check_roberta(path):
    """A RoBERTa checkpoint and the dict.txt beside it; returns that dictionary."""
    from ..checkpoints import describe, load_state
    from ..models.pretrained import check_vocab, roberta_parts

    d = roberta_dictionary(beside(path, "dict.txt"))
    state = load_state(path)
    _, weights = roberta_parts(state, describe(state, path))
    check_vocab(weights, d, path)
    return d


def check_speech_bert(path, quantizer_path):
    """bert_kmeans: its dict.txt fits its embeddings and holds the quantizer's units."""
    from ..quantize import check_unit_dictionary, load_quantizer

    d = check_roberta(path)
    if quantizer_path:
        check_unit_dictionary(load_quantizer(quantizer_path), d, d.path)


def check_vq_wav2vec(path):
    from ..quantize import load_quantizer

    q = load_quantizer(path)
    if q.kind != "vq_wav2vec":
        raise ValueError(f"{path}: a {q.kind} quantizer, not a vq-wav2vec checkpoint")


def read_encoder_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            encoder = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: not a GPT-2 encoder.json ({e})") from None
    if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
        raise ValueError(f"{path}: not a GPT-2 encoder.json (a JSON map of BPE token -> id)")
    return encoder


def check_vocab_bpe(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    bad = next((i for i, line in enumerate(lines[1:], 2) if line and len(line.split()) != 2), None)
    if not lines or not lines[0].startswith("#version") or bad:
        where = f" (line {bad})" if bad else ""
        raise ValueError(f"{path}: not a GPT-2 vocab.bpe{where}: '#version: ...' then one merge 'a b' a line")


def check_gpt2(encoder_json, vocab_bpe, text_dict):
    """Both BPE files exist and parse, and the text dictionary's symbols are encoder.json ids."""
    for path in (encoder_json, vocab_bpe):
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(f"{path or '(none given)'}: GPT-2 BPE file not found. {WHERE_GPT2}")
    ids = set(read_encoder_json(encoder_json).values())
    check_vocab_bpe(vocab_bpe)
    if text_dict is None:
        return
    symbols = [s for s in text_dict.symbols[text_dict.nspecial:] if s.isdigit()]
    foreign = [s for s in symbols if int(s) not in ids]
    if not symbols or foreign:
        example = f" (e.g. {foreign[0]})" if foreign else ""
        raise ValueError(f"{text_dict.path}: {len(foreign) if symbols else 'none'} of its symbols are "
                         f"ids of {encoder_json}{example}: the dictionary and the GPT-2 BPE files do not "
                         "belong together")


def check_given(args):
    """The problems with the assets given on the command line, as messages."""
    problems = []

    def attempt(fn, *a):
        try:
            return fn(*a)
        except Exception as e:  # every check names its file; report them all
            problems.append(str(e))

    if args.vq_wav2vec:
        attempt(check_vq_wav2vec, args.vq_wav2vec)
    if args.speech_bert:
        quantizer = args.vq_wav2vec if args.vq_wav2vec and not problems else None
        attempt(check_speech_bert, args.speech_bert, quantizer)
    if args.text_model:
        text_dict = attempt(check_roberta, args.text_model)
        attempt(check_gpt2, args.gpt2_encoder_json, args.gpt2_vocab_bpe, text_dict)
    return problems


def read_env(path):
    """KEY -> value of an assets.env (written with printf %q)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def check_pretrained_env(path):
    """Every file an earlier recipe recorded still exists (and GPT-2's still parse)."""
    if not os.path.isfile(path):
        return [f"{path}: not found (run examples/librispeech/run.sh first)"]
    env = read_env(path)
    keys = ASSET_FILES + (("GPT2_ENCODER_JSON", "GPT2_VOCAB_BPE") if env.get("TEXT_ENCODER") == "gpt2" else
                          ("SPM_MODEL",) if env.get("TEXT_ENCODER") == "spm" else ())
    problems = [f"{path}: {k} is {env[k]!r}: no such file" if k in env else f"{path}: records no {k}"
                for k in keys if not (env.get(k) and os.path.isfile(env[k]))]
    if not problems and env.get("TEXT_ENCODER") == "gpt2":
        try:
            check_gpt2(env["GPT2_ENCODER_JSON"], env["GPT2_VOCAB_BPE"], None)
        except ValueError as e:
            problems.append(str(e))
    return problems


def text_model_arch(path):
    """fairseq-train flags that rebuild a RoBERTa checkpoint's shapes (its sizes, not roberta_base's)."""
    from fairseq.models import ARCH_MODEL_REGISTRY, ARCH_CONFIG_REGISTRY
    from omegaconf import OmegaConf

    from ..checkpoints import describe, load_state, model_name_of
    from ..models.pretrained import roberta_parts

    state = load_state(path)
    model_cfg, _ = roberta_parts(state, describe(state, path))
    name = model_name_of(model_cfg)
    values = vars(model_cfg) if isinstance(model_cfg, argparse.Namespace) else OmegaConf.to_container(model_cfg)
    ns = argparse.Namespace(**values)
    if name in ARCH_MODEL_REGISTRY:  # legacy args may leave sizes to the arch's defaults
        ARCH_CONFIG_REGISTRY[name](ns)
    flags = [f"--{k.replace('_', '-')} {int(getattr(ns, k))}" for k in
             ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
              "max_positions")]
    if getattr(ns, "untie_weights_roberta", False):
        flags.append("--untie-weights-roberta")
    return " ".join(flags)


def main(argv=None):
    args = parse_args(argv)
    import slu_kd_plugin
    slu_kd_plugin.register()  # allow-lists what fairseq checkpoints pickle
    if args.text_model_arch:
        print(text_model_arch(args.text_model_arch))
        return
    if args.max_positions:
        from ..checkpoints import load_state, model_cfg_of
        path, cap = args.max_positions
        print(min(int(model_cfg_of(load_state(path)).max_positions), int(cap)))
        return
    problems = check_given(args)
    if args.pretrained_env:
        problems += check_pretrained_env(args.pretrained_env)
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    if problems:
        sys.exit(2)


if __name__ == "__main__":
    main()
