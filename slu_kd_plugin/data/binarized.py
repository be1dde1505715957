"""Reading a data-bin (written by slu-kd-binarize): dictionaries, binarized splits, and
the transcripts as written (DATA/text) for models that bring their own tokenizer."""
import os

import numpy as np
import torch
from fairseq.data import (
    Dictionary,
    ListDataset,
    OffsetTokensDataset,
    PrependTokenDataset,
    StripTokenDataset,
    TruncateDataset,
    data_utils,
)


def load_dict(data, name, add_mask=True):
    """``DATA/name/dict.txt``, with ``<mask>`` added as fairseq's RoBERTa tasks do (so
    indices agree with masked_lm / sentence_prediction checkpoints)."""
    path = os.path.join(data, name, "dict.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: dictionary not found (run slu-kd-binarize first)")
    dictionary = Dictionary.load(path)
    dictionary.path = path  # so a checkpoint that does not fit it can name the file
    if add_mask:
        dictionary.add_symbol("<mask>")
    return dictionary


def load_same_dict(data, name, dictionary):
    """``DATA/name/dict.txt`` when it is ``dictionary`` symbol for symbol (a split read with
    another data-bin's dictionary), else a clear error naming both files."""
    other = load_dict(data, name)
    if other.symbols != dictionary.symbols:
        raise ValueError(f"{other.path} is not {getattr(dictionary, 'path', 'the dictionary in use')}: "
                         f"{len(other)} symbols against {len(dictionary)}, or in another order "
                         "(binarize both data-bins with one dictionary)")
    return other


def load_split(data, name, split, dictionary):
    """The binarized ``DATA/name/split`` dataset, or a clear error naming it."""
    prefix = os.path.join(data, name, split)
    dataset = data_utils.load_indexed_dataset(prefix, dictionary)
    if dataset is None:
        raise FileNotFoundError(f"{prefix}.bin/.idx: split '{split}' not found in {data}/{name}")
    return dataset


def load_intents(data, split, label_dict):
    """``DATA/label/split`` as class indices 0..n-1 (no ``</s>``, no special symbols)."""
    labels = StripTokenDataset(load_split(data, "label", split, label_dict), label_dict.eos())
    return OffsetTokensDataset(labels, offset=-label_dict.nspecial)


def encoder_input(dataset, dictionary, max_positions):
    """``<s> tokens </s>`` capped at ``max_positions`` (RoBERTa's input layout)."""
    dataset = TruncateDataset(dataset, max_positions - 1)
    return PrependTokenDataset(dataset, dictionary.bos())


def encode_texts(tokenizer, texts, max_positions):
    """Token id tensors (with the tokenizer's special tokens), at most ``max_positions`` long."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_positions)["input_ids"]
    return [torch.tensor(x, dtype=torch.long) for x in ids]


def transcript_tokens(text_dir, data, split, tokenizer, max_positions, option):
    """(ListDataset of token ids, path) of ``{text_dir or DATA/text}/{split}.txt``, one
    transcript a line; ``option`` is the flag that points elsewhere, for the error."""
    path = os.path.join(text_dir or os.path.join(data, "text"), f"{split}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: transcripts not found (slu-kd-binarize writes DATA/text/; "
                                f"or pass {option})")
    with open(path, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    tokens = encode_texts(tokenizer, texts, max_positions)
    return ListDataset(tokens, sizes=np.array([len(t) for t in tokens])), path
