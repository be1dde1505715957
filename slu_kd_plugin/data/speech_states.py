"""Cache the frozen speech BERT's final-layer states of a split.

With the speech BERT frozen (the paper's setting) and no unit masking, its states for
an utterance are the same every epoch; running it once when the split is loaded and
reusing the states saves its forward pass on every later step.  Memory: utterances x
units x dim x 4 bytes (2 with --fp16), e.g. 1,400 x 100 x 128 x 4 = 72 MB for the demo,
but ~21 GB for FSC's 23k training utterances at bert_kmeans' 768 dims.
"""
import torch
from fairseq.data import data_utils
from tqdm import tqdm

from .datasets import TensorListDataset


@torch.no_grad()
def run_speech_bert(model, units, pad_idx, batch_size=32, desc="speech BERT states"):
    """[(T_i, D) CPU tensor for each utterance of ``units``], in dataset order."""
    device = next(model.parameters()).device
    lengths = units.sizes
    order = sorted(range(len(units)), key=lambda i: lengths[i])  # little padding
    states = [None] * len(units)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        idx = order[start:start + batch_size]
        tokens = data_utils.collate_tokens([units[i] for i in idx], pad_idx).to(device)
        features = model.speech_states(tokens)
        for row, i in enumerate(idx):
            # kept in the model's dtype: the same numbers as recomputing them
            states[i] = features[row, : lengths[i]].cpu()
    return states


class PaddedStatesDataset(TensorListDataset):
    """Per-utterance (T, D) states; collates to (B, T_max, D), zero-padded on the right
    like the units beside them."""

    def collater(self, samples):
        if not samples:
            return torch.empty(0)
        out = samples[0].new_zeros(len(samples), max(s.size(0) for s in samples), samples[0].size(1))
        for row, s in enumerate(samples):
            out[row, : s.size(0)] = s
        return out
