"""Run a frozen text model once over a split's transcripts.

The teacher is frozen and runs in eval mode, so its outputs for a transcript never
change during training: computing them once when the split is loaded gives exactly
the targets the on-the-fly teacher would give, at a fraction of the cost, and keeps
the teacher out of the student model (it is never seen by the optimizer nor saved).
"""
import logging

import torch
import torch.nn.functional as F
from fairseq.data import data_utils
from tqdm import tqdm

logger = logging.getLogger(__name__)

HEAD_NAME = "sentence_classification_head"  # fairseq sentence_prediction's default


@torch.no_grad()
def run_text_model(model, token_dataset, pad_idx, kind, batch_size=64, desc="text model"):
    """List of per-utterance float tensors: ``kind`` is "cls" (final-layer <s> vector),
    "mean" (final-layer states averaged over real tokens), "mean-normalized" (that mean
    scaled to unit L2 norm: a sentence-transformers encoder's sentence embedding, e.g.
    all-MiniLM-L6-v2's) or "logits" (the sentence classification head).

    Each distinct token sequence runs once: command corpora repeat a few hundred phrases
    over thousands of utterances (FSC: 248 over 23k), so the teacher's pass over a training
    split costs a handful of batches, not one per 64 utterances."""
    model.eval()
    device = next(model.parameters()).device
    slot, distinct = [], {}
    for i in range(len(token_dataset)):
        item = token_dataset[i]
        slot.append(distinct.setdefault(tuple(item.tolist()), (len(distinct), item))[0])
    items = [item for _, item in distinct.values()]
    outputs = []
    for start in tqdm(range(0, len(items), batch_size), desc=desc, unit="batch", leave=False):
        tokens = data_utils.collate_tokens(items[start:start + batch_size], pad_idx).to(device)
        # kept on CPU: the dataset collates them with the (CPU) batch
        outputs.extend(text_model_output(model, tokens, kind, pad_idx).float().cpu().unbind(0))
    return [outputs[k] for k in slot]


def text_model_output(model, tokens, kind, pad_idx):
    """(B, D) outputs of ``kind`` for a padded (B, T) token batch on the model's device."""
    if kind == "logits":
        return model(tokens, features_only=True, classification_head_name=HEAD_NAME)[0]
    features, _ = model(tokens, features_only=True)
    if kind == "cls":
        return features[:, 0, :]
    real = tokens.ne(pad_idx).unsqueeze(-1).to(features.dtype)
    mean = (features * real).sum(1) / real.sum(1)
    if kind == "mean-normalized":
        # sentence-transformers' Normalize module: F.normalize with its default eps
        return F.normalize(mean, p=2, dim=-1)
    return mean
