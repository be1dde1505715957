"""Offline MFCC + k-means quantizer, fitted on the project's own audio.

The paper's vq-wav2vec cannot be downloaded here, so this is the default
quantizer: Kaldi-style MFCCs (25 ms window, 10 ms shift, 13 cepstra + deltas +
delta-deltas, per-utterance mean normalisation), standardised with statistics of
the fitting data, assigned to the nearest k-means centroid.  k-means is written in
torch (k-means++ init, Lloyd iterations) in float64 on CPU, seeded, so a given
frame sample always gives the same centroids.

The saved file holds only tensors and primitive types, so it opens with
``torch.load(weights_only=True)`` and needs no allow-listing.
"""
import logging
from dataclasses import asdict, dataclass, field

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

from . import Quantizer, QuantizerError

logger = logging.getLogger(__name__)

KIND = "mfcc_kmeans"
VERSION = 1
SAMPLE_RATE = 16000
_CHUNK = 65536  # frames per distance block: bounds memory to CHUNK x k floats


@dataclass
class MfccConfig:
    num_ceps: int = field(default=13, metadata={"help": "cepstral coefficients per frame"})
    num_mel_bins: int = field(default=23, metadata={"help": "mel filterbank size (Kaldi default)"})
    frame_length_ms: float = field(default=25.0, metadata={"help": "analysis window"})
    frame_shift_ms: float = field(default=10.0, metadata={"help": "hop between frames"})
    deltas: int = field(default=2, metadata={"help": "0: static only, 1: +deltas, 2: +delta-deltas"})
    cmn: bool = field(default=True, metadata={"help": "subtract the per-utterance mean"})

    @property
    def window_samples(self):
        return int(SAMPLE_RATE * self.frame_length_ms / 1000)


def mfcc_features(wav, cfg: MfccConfig):
    """(T, num_ceps * (1 + deltas)) float32 features of a 1-D 16 kHz waveform."""
    feats = kaldi.mfcc(
        wav.float().unsqueeze(0),
        sample_frequency=SAMPLE_RATE,
        frame_length=cfg.frame_length_ms,
        frame_shift=cfg.frame_shift_ms,
        num_ceps=cfg.num_ceps,
        num_mel_bins=cfg.num_mel_bins,
        dither=0.0,  # dither is random noise: featurization must be deterministic
    )
    if cfg.cmn:
        feats = feats - feats.mean(dim=0, keepdim=True)
    parts, cur = [feats], feats.t()
    for _ in range(cfg.deltas):
        cur = AF.compute_deltas(cur)  # over time: (feature, time) layout
        parts.append(cur.t())
    return torch.cat(parts, dim=1)


# ---------------------------------------------------------------- k-means


def sq_distances(x, c):
    """Squared Euclidean distances (N, k), clamped at 0 against rounding."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * (x @ c.t()) + (c * c).sum(1)
    return d.clamp_min_(0.0)


def assign(x, c):
    """Nearest centroid and its squared distance per row, in memory-bounded blocks."""
    idx, dist = [], []
    for start in range(0, x.size(0), _CHUNK):
        d = sq_distances(x[start:start + _CHUNK], c)
        best = d.min(dim=1)
        dist.append(best.values)
        idx.append(best.indices)
    return torch.cat(idx), torch.cat(dist)


def kmeans_pp_init(x, k, gen):
    """k-means++ (Arthur & Vassilvitskii 2007): each new centre is drawn with
    probability proportional to its squared distance to the nearest centre so far."""
    n = x.size(0)
    centres = [x[torch.randint(n, (1,), generator=gen).item()]]
    nearest = sq_distances(x, centres[0][None]).squeeze(1)
    for _ in range(1, k):
        if nearest.sum() <= 0:  # fewer distinct points than k: any point will do
            i = torch.randint(n, (1,), generator=gen).item()
        else:
            i = torch.multinomial(nearest, 1, generator=gen).item()
        centres.append(x[i])
        nearest = torch.minimum(nearest, sq_distances(x, x[i][None]).squeeze(1))
    return torch.stack(centres)


def lloyd_step(x, c):
    """One assignment + update; empty clusters are re-seeded with the worst-fitted
    points so that all k units stay in use. Returns new centroids and inertia."""
    idx, dist = assign(x, c)
    k = c.size(0)
    counts = torch.bincount(idx, minlength=k).to(x.dtype)
    sums = torch.zeros_like(c).index_add_(0, idx, x)
    new = c.clone()
    used = counts > 0
    new[used] = sums[used] / counts[used, None]
    empty = (~used).nonzero().squeeze(1)
    if len(empty):
        new[empty] = x[dist.topk(len(empty)).indices]
    return new, dist.sum().item()


def fit_kmeans(x, k, seed=1, n_iter=50, tol=1e-5, progress=False):
    """k-means on rows of ``x`` in float64; deterministic for a given ``seed``.
    Stops when inertia improves by less than ``tol`` (relative)."""
    from tqdm import tqdm

    if x.size(0) < k:
        raise QuantizerError(f"k-means: {x.size(0)} frames cannot make {k} clusters")
    x = x.double()
    gen = torch.Generator().manual_seed(seed)
    c = kmeans_pp_init(x, k, gen)
    prev = float("inf")
    bar = tqdm(range(n_iter), desc="k-means", disable=not progress)
    for _ in bar:
        c, inertia = lloyd_step(x, c)
        bar.set_postfix(inertia=f"{inertia / x.size(0):.4f}")
        if inertia >= prev * (1.0 - tol):  # converged (never true at step 1: prev = inf)
            break
        prev = inertia
    _, dist = assign(x, c)
    return c.float(), dist.mean().item()


# ---------------------------------------------------------------- quantizer


class MfccKmeansQuantizer(Quantizer):
    kind = KIND

    def __init__(self, centroids, feat_mean, feat_std, mfcc: MfccConfig,
                 merge_repeats=True, info=None, path=None):
        self.centroids = centroids.float()
        self.feat_mean = feat_mean.float()
        self.feat_std = feat_std.float()
        self.mfcc = mfcc
        self.merge_repeats = merge_repeats
        self.info = dict(info or {})
        self.path = path
        self.min_samples = mfcc.window_samples  # one analysis window -> one frame
        self.frame_shift_ms = mfcc.frame_shift_ms

    @property
    def n_clusters(self):
        return self.centroids.size(0)

    def features(self, wav):
        return (mfcc_features(wav, self.mfcc) - self.feat_mean) / self.feat_std

    def frame_units(self, wav):
        # float64 distances: ties and rounding cannot flip a frame between runs
        idx, _ = assign(self.features(wav).double(), self.centroids.double())
        return [str(i) for i in idx.tolist()]

    def symbols(self):
        return [str(i) for i in range(self.n_clusters)]

    def state_dict(self):
        return {
            "kind": KIND,
            "version": VERSION,
            "centroids": self.centroids,
            "feat_mean": self.feat_mean,
            "feat_std": self.feat_std,
            "mfcc": asdict(self.mfcc),
            "merge_repeats": self.merge_repeats,
            "info": self.info,
        }

    @classmethod
    def from_state(cls, state, path=None):
        cls.check_version(state, path, VERSION)
        try:
            return cls(state["centroids"], state["feat_mean"], state["feat_std"],
                       MfccConfig(**state["mfcc"]), merge_repeats=state["merge_repeats"],
                       info=state.get("info"), path=path)
        except (KeyError, TypeError) as e:
            raise QuantizerError(f"{path}: malformed {KIND} file ({e!r})") from None


def fit_quantizer(frames, n_clusters, seed=1, n_iter=50, mfcc=None,
                  merge_repeats=True, progress=False, info=None):
    """Fit on (N, D) feature frames from :func:`mfcc_features` (CMN already applied)."""
    mfcc = mfcc or MfccConfig()
    mean = frames.mean(dim=0)
    std = frames.std(dim=0).clamp_min(1e-5)  # a constant dimension must not divide by 0
    x = (frames - mean) / std
    centroids, mse = fit_kmeans(x, n_clusters, seed=seed, n_iter=n_iter, progress=progress)
    info = dict(info or {}, n_frames=int(frames.size(0)), seed=seed, mse=mse)
    logger.info("k-means: %d clusters on %d frames, mean sq. distance %.4f",
                n_clusters, frames.size(0), mse)
    return MfccKmeansQuantizer(centroids, mean, std, mfcc, merge_repeats, info)


def _frames_in(n_samples, mfcc):
    """Frames Kaldi's snip_edges framing gives for ``n_samples``."""
    win, hop = mfcc.window_samples, int(SAMPLE_RATE * mfcc.frame_shift_ms / 1000)
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


def sample_training_frames(entries, max_frames, seed=1, mfcc=None, frame_fraction=0.25,
                           progress=False):
    """A seeded random subset of at most ``max_frames`` MFCC frames of ``entries``
    (objects with ``.path``, ``.n_samples``, ``.where``, e.g. manifest entries).

    Utterances are visited in a seeded random order and a random ``fraction`` of each
    one's frames is kept, so a large corpus is sampled across many utterances without
    decoding all of it; a corpus smaller than ``max_frames`` is used whole."""
    from tqdm import tqdm

    from ..audio import AudioError, read_audio

    mfcc = mfcc or MfccConfig()
    gen = torch.Generator().manual_seed(seed)
    total = sum(_frames_in(e.n_samples, mfcc) for e in entries)
    fraction = min(1.0, max(frame_fraction, max_frames / max(total, 1)))
    chunks, n = [], 0
    with tqdm(total=min(max_frames, total), unit="frame", desc="sampling frames",
              disable=not progress) as bar:
        for i in torch.randperm(len(entries), generator=gen).tolist():
            try:
                wav = read_audio(entries[i].path)
            except AudioError as e:
                raise QuantizerError(f"{entries[i].where}: {e}") from e
            if wav.numel() < mfcc.window_samples:
                continue  # shorter than one window: no frame to learn from
            feats = mfcc_features(wav, mfcc)
            keep = max(1, round(feats.size(0) * fraction))
            chunks.append(feats[torch.randperm(feats.size(0), generator=gen)[:keep]])
            n += keep
            bar.update(keep)
            if n >= max_frames:
                break
    if not chunks:
        raise QuantizerError("no utterance is long enough for one MFCC frame")
    frames = torch.cat(chunks)
    return frames[torch.randperm(frames.size(0), generator=gen)[:max_frames]]
