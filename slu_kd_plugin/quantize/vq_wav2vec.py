"""fairseq vq-wav2vec checkpoints as quantizers (the paper's front end).

The published ``vq-wav2vec_kmeans.pt`` dates from 2019: legacy (non-zip) torch
serialization, an ``args`` argparse.Namespace (old task/criterion names such as
``speech_pretraining``) instead of ``cfg``, fp16 weights, and ``extra_state``
holding pickled ``fairseq.meters`` objects.  We open it with torch's safe
loading (the caller, :func:`slu_kd_plugin.quantize.load_quantizer`), let
fairseq's own checkpoint upgrade turn ``args`` into a config, build fairseq's
``Wav2VecModel`` from it and featurize exactly like fairseq's
``examples/wav2vec/vq-wav2vec_featurize.py``: ``feature_extractor(wav)`` ->
``vector_quantizer.forward_idx(z)`` -> one ``i-j`` token per 10 ms frame, the
tokens of fairseq's ``bert_kmeans`` dict.txt.
"""
import ast
import itertools
import logging
import warnings

import torch

from . import Quantizer, QuantizerError

logger = logging.getLogger(__name__)

# Frames per block when computing k-means code distances of a long utterance:
# fairseq's forward materialises (num_vars x T x dim) floats (~0.65 MB per frame for
# the published model), i.e. gigabytes for a 30 s LibriSpeech utterance.
_MAX_FRAMES_PER_BLOCK = 500


def receptive_field(feature_extractor):
    """(receptive field, total stride) in samples of fairseq's conv feature extractor.

    The receptive field is also the shortest input that yields one output frame."""
    field_, jump = 1, 1
    for block in feature_extractor.conv_layers:
        conv = block[0]
        field_ += (conv.kernel_size[0] - 1) * jump
        jump *= conv.stride[0]
    return field_, jump


def check_layer_specs(model_cfg, path):
    """fairseq ``eval()``s these strings when building the model; a checkpoint is
    untrusted input, so only plain literals [(dim, kernel, stride), ...] may reach it."""
    for key in ("conv_feature_layers", "conv_aggregator_layers"):
        spec = model_cfg.get(key, None)
        if spec is None:
            continue
        try:
            layers = ast.literal_eval(spec)
            ok = all(len(t) == 3 and all(isinstance(v, int) for v in t) for t in layers)
        except (ValueError, SyntaxError, TypeError):
            ok = False
        if not ok:
            raise QuantizerError(f"{path}: {key} is not a list of (dim, kernel, stride) ints: {spec!r}")


def checkpoint_config(state, path):
    """fairseq config of a checkpoint state, upgrading legacy ``args`` the way
    fairseq's own ``load_checkpoint_to_cpu`` does (old task/criterion names too)."""
    from fairseq import checkpoint_utils
    from omegaconf import OmegaConf

    if isinstance(state.get("cfg"), dict):  # fairseq>=0.10 saves cfg as a plain container
        state["cfg"] = OmegaConf.create(state["cfg"], flags={"allow_objects": True})
    try:
        with warnings.catch_warnings():
            # hydra's deprecation chatter about fairseq's own configs is not the user's concern
            warnings.simplefilter("ignore", UserWarning)
            # private but stable in 0.12: what load_checkpoint_to_cpu applies after
            # torch.load, and we have already loaded the file (safely) ourselves
            state = checkpoint_utils._upgrade_state_dict(state)
    except (KeyError, AttributeError, TypeError) as e:
        raise QuantizerError(f"{path}: malformed fairseq checkpoint ({e!r})") from None
    return state["cfg"]


def build_wav2vec(state, path):
    """fairseq ``Wav2VecModel`` with the checkpoint's weights, in eval mode, fp32."""
    from fairseq.models.wav2vec.wav2vec import Wav2VecModel

    cfg = checkpoint_config(state, path)
    arch = cfg.model.get("_name", None) or cfg.model.get("arch", None)
    if arch != "wav2vec":
        raise QuantizerError(f"{path}: fairseq checkpoint of arch {arch!r}, expected a vq-wav2vec ('wav2vec')")
    if cfg.model.get("vq_type", "none") in (None, "none"):
        raise QuantizerError(f"{path}: wav2vec checkpoint without a vector quantizer (vq_type=none)")
    check_layer_specs(cfg.model, path)
    model = Wav2VecModel(cfg.model)  # not build_model: it logs the whole module tree
    try:  # fp16 weights are cast into the fp32 parameters by copy_
        model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    except RuntimeError as e:
        raise QuantizerError(f"{path}: weights do not fit the model its args describe ({e})") from None
    return model.float().eval()


class VqWav2VecQuantizer(Quantizer):
    kind = "vq_wav2vec"

    def __init__(self, model, path=None, device="cpu", merge_repeats=False):
        self.model = model.to(device)
        self.device = torch.device(device)
        self.path = path
        self.merge_repeats = merge_repeats
        self.min_samples, stride = receptive_field(model.feature_extractor)
        self.frame_shift_ms = stride / 16.0
        vq = model.vector_quantizer
        self.groups, self.num_vars = vq.groups, vq.num_vars

    @classmethod
    def from_checkpoint_state(cls, state, path=None, device="cpu"):
        return cls(build_wav2vec(state, path), path=path, device=device)

    def symbols(self):
        ranges = [range(self.num_vars)] * self.groups
        return ["-".join(map(str, c)) for c in itertools.product(*ranges)]

    @torch.inference_mode()
    def frame_indices(self, wav):
        """(T, groups) code indices of a 1-D waveform."""
        z = self.model.feature_extractor(wav.float().to(self.device)[None])
        if isinstance(z, tuple):  # some fairseq versions return (features, ...)
            z = z[0]
        return self.quantize_idx(z)[0].cpu()

    def quantize_idx(self, z, max_frames=_MAX_FRAMES_PER_BLOCK):
        """``vector_quantizer.forward_idx(z)`` indices, (B, T, groups); long k-means
        inputs are done blockwise with the same arithmetic to bound memory."""
        from fairseq.modules import KmeansVectorQuantizer

        vq = self.model.vector_quantizer
        if z.size(2) <= max_frames or not isinstance(vq, KmeansVectorQuantizer) or vq.time_first:
            return vq.forward_idx(z)[1]
        return kmeans_idx_blockwise(vq, z, max_frames)

    def frame_units(self, wav):
        return ["-".join(map(str, row)) for row in self.frame_indices(wav).tolist()]


def kmeans_idx_blockwise(vq, z, max_frames):
    """``KmeansVectorQuantizer.forward``'s argmin, block by block over time.

    The projection (whose GroupNorm pools over the whole utterance) runs on the
    full input; only the per-frame distance to each code is blocked, so the
    indices equal fairseq's (tested)."""
    bsz, _, tsz = z.shape
    ze = vq.projection(z)
    ze_ = ze.view(bsz, vq.groups, vq.var_dim, tsz).permute(0, 3, 1, 2)
    emb = vq.expand_embedding.unsqueeze(1).unsqueeze(1)
    out = []
    for t0 in range(0, tsz, max_frames):
        part = ze_[:, t0:t0 + max_frames]
        d = (part.unsqueeze(0) - emb).view(vq.num_vars, bsz, part.size(1), vq.groups, -1)
        out.append(d.norm(dim=-1, p=2).argmin(dim=0))
    return torch.cat(out, dim=1)
