"""Small assets in the on-disk formats of the published checkpoints, for tests.

* dictionaries written by the real ``fairseq-preprocess`` (counts, then the
  ``madeupwordNNNN 0`` entries it pads with to a multiple of 8);
* GPT-2 BPE files in the real format: ``encoder.json`` (byte-level token -> id, the 256
  byte symbols first) and ``vocab.bpe`` (``#version: 0.2`` then one merge per line),
  with merges learnt here from a few transcripts;
* RoBERTa checkpoints saved as roberta.base / bert_kmeans are: legacy serialization,
  ``args`` Namespace, fp16 ``decoder.sentence_encoder.*`` keys with fused ``in_proj``,
  old-module meters, a ``data`` path that does not exist (test_checkpoint_safety's
  builders);
* vq-wav2vec as vq-wav2vec_kmeans.pt (test_quantize's builder).
"""
import argparse
import collections
import json
import subprocess
from pathlib import Path

import torch

from conftest import ENV, tool
from test_checkpoint_safety import bert_kmeans_weights, legacy_state, pickled_as_old_fairseq_meters
from test_quantize import make_legacy_vq_wav2vec  # noqa: F401  (re-exported for the recipe tests)


def preprocess_dict(text_lines, workdir):
    """dict.txt exactly as ``fairseq-preprocess --only-source`` writes it for these lines."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "corpus.txt").write_text("".join(line + "\n" for line in text_lines))
    subprocess.run([tool("fairseq-preprocess"), "--only-source", "--trainpref", workdir / "corpus.txt",
                    "--destdir", workdir / "bin", "--workers", "1"], check=True, env=ENV,
                   capture_output=True)
    return workdir / "bin" / "dict.txt"


def _merge(word, pair):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def write_gpt2_files(texts, out_dir, n_merges=60):
    """encoder.json + vocab.bpe in GPT-2's format, BPE merges learnt from ``texts`` (as
    written, cased); every byte has a token, so any text encodes."""
    from fairseq.data.encoders.gpt2_bpe_utils import Encoder, bytes_to_unicode

    byte_char = bytes_to_unicode()
    pattern = Encoder({}, []).pat  # GPT-2's pre-tokenization: the words merges stay inside
    words = collections.Counter(tuple(byte_char[b] for b in w.encode("utf-8"))
                                for t in texts for w in pattern.findall(t))
    vocab, merges = [byte_char[b] for b in sorted(byte_char)], []
    for _ in range(n_merges):
        counts = collections.Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], p))
        merges.append(best)
        vocab.append(best[0] + best[1])
        words = collections.Counter({_merge(w, best): n for w, n in words.items()})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "encoder.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (out_dir / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return out_dir / "encoder.json", out_dir / "vocab.bpe"


def roberta_dictionary(dict_path):
    """The dictionary fairseq's RoBERTa tasks build from a dict.txt: + ``<mask>``."""
    from fairseq.data import Dictionary

    d = Dictionary.load(str(dict_path))
    d.add_symbol("<mask>")
    return d


def save_published_roberta(path, dict_path, seed=0, **sizes):
    """A random RoBERTa for ``dict_path`` saved like roberta.base / bert_kmeans; ``sizes``
    (encoder_layers, encoder_embed_dim, ..., max_positions) override the tiny defaults."""
    from fairseq.logging import meters
    from fairseq.models import build_model

    from slu_kd_plugin.models.pretrained import DictionaryTask

    state = legacy_state({}, meters.AverageMeter())
    args = vars(state["args"])
    args.update(sizes, tokens_per_sample=sizes.get("max_positions", args["max_positions"]))
    torch.manual_seed(seed)
    model = build_model(argparse.Namespace(**args), DictionaryTask(roberta_dictionary(dict_path)))
    state["model"] = bert_kmeans_weights(model)
    with pickled_as_old_fairseq_meters():
        torch.save(state, path, _use_new_zipfile_serialization=False)
    return model


def make_text_model(model_dir, texts, gpt2_dir=None, seed=0, **sizes):
    """roberta.base in miniature: DIR/model.pt + DIR/dict.txt, and encoder.json + vocab.bpe
    in ``gpt2_dir`` (default DIR; roberta.base's archive has them elsewhere).  The dict
    holds every GPT-2 id (as roberta.base's does), counted on ``texts``, as fairseq-preprocess
    writes it; returns (model.pt, encoder.json, vocab.bpe)."""
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    model_dir = Path(model_dir)
    # 256 bytes + 61 merges + 4 specials = 321 entries: fairseq pads with 7 madeupwords
    encoder_json, vocab_bpe = write_gpt2_files(texts, gpt2_dir or model_dir, n_merges=61)
    bpe = get_encoder(str(encoder_json), str(vocab_bpe))
    ids = sorted(json.loads(Path(encoder_json).read_text()).values())
    lines = [" ".join(map(str, bpe.encode(t))) for t in texts] + [" ".join(map(str, ids))]
    dict_path = preprocess_dict(lines, model_dir / "preprocess")
    (model_dir / "dict.txt").write_text(dict_path.read_text())
    sizes = {"max_positions": 128, **sizes}
    save_published_roberta(model_dir / "model.pt", model_dir / "dict.txt", seed=seed, **sizes)
    return model_dir / "model.pt", encoder_json, vocab_bpe


def make_bert_kmeans(model_dir, unit_symbols, seed=0, **sizes):
    """bert_kmeans in miniature: DIR/model.pt + DIR/dict.txt over the vq-wav2vec units
    ``unit_symbols`` (more frequent first), as fairseq-preprocess writes it."""
    model_dir = Path(model_dir)
    lines = [" ".join(unit_symbols[: len(unit_symbols) - i]) for i in range(len(unit_symbols))]
    dict_path = preprocess_dict(lines, model_dir / "preprocess")
    (model_dir / "dict.txt").write_text(dict_path.read_text())
    sizes = {"max_positions": 512, **sizes}
    save_published_roberta(model_dir / "model.pt", model_dir / "dict.txt", seed=seed, **sizes)
    return model_dir / "model.pt"
