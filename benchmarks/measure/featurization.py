"""Section "featurization": seconds of audio slu-kd-featurize turns into units per
second, for the work dir's quantizer and for vq-wav2vec k-means at the published size
(random weights, saved in the 2019 checkpoint format)."""
import argparse
import logging
import os
import re
import warnings

from . import BenchmarkError
from .process import tool

# vq-wav2vec k-means as fairseq's examples/wav2vec README trains it (the published
# vq-wav2vec_kmeans.pt), under the legacy task/criterion names the 2019 file carries
PUBLISHED_VQ_WAV2VEC = dict(
    arch="wav2vec", task="speech_pretraining", criterion="binary_cross_entropy",
    conv_feature_layers="[(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2), "
                        "(512, 1, 1), (512, 1, 1), (512, 1, 1)]",
    conv_aggregator_layers="[" + ", ".join(f"(512, {k}, 1)" for k in range(2, 14)) + "]",
    activation="gelu", offset="auto", skip_connections_agg=True, skip_connections_feat=False,
    residual_scale=0.5, log_compression=False, aggregator="cnn", vq_type="kmeans", vq_groups=2,
    vq_depth=2, combine_groups=True, vq_vars=320, vq_dim=0, vq_gamma=0.25, prediction_steps=12,
    num_negatives=10, cross_sample_negatives=0, lr=[1e-5], optimizer="adam", fp16=True,
    max_update=400000, data="/nonexistent/librispeech",
)


def measure(bench):
    quantizers = {"mfcc_kmeans": bench.work.quantizer, "vq_wav2vec": vq_wav2vec_checkpoint(bench)}
    subset = bench.manifest_subset("test", bench.args.featurize_utts, bench.scratch / "featurize")
    audio_s = manifest_seconds(subset / "bench.tsv")
    rows = []
    for name, path in quantizers.items():
        run = bench.call(f"featurize_{name}", [
            tool("slu-kd-featurize"), subset, "--quantizer", path, "--split", "bench",
            "--out", bench.scratch / "featurize" / name, "--threads", bench.args.threads,
            "--device", bench.args.device, "--no-progress"])
        rows.append(featurize_row(run, name, audio_s, bench.args.featurize_utts, path))
    return rows


def vq_wav2vec_checkpoint(bench):
    path = bench.scratch / "vq-wav2vec_kmeans.pt"
    if not path.exists():
        write_vq_wav2vec(path)
    return path


def write_vq_wav2vec(path, seed=0):
    """A vq-wav2vec of the published size with random weights, saved as the 2019 file
    is: legacy (non-zip) serialization, an ``args`` Namespace, fp16 weights."""
    import torch
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.wav2vec.wav2vec import Wav2VecModel

    modern = dict(PUBLISHED_VQ_WAV2VEC, task="audio_pretraining", criterion="wav2vec")
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # hydra's deprecation chatter about fairseq's configs
        warnings.simplefilter("ignore")
        logging.getLogger("hydra").setLevel(logging.WARNING)
        model = Wav2VecModel(convert_namespace_to_omegaconf(argparse.Namespace(**modern)).model)
    state = {"args": argparse.Namespace(**PUBLISHED_VQ_WAV2VEC),
             "model": {k: v.half() for k, v in model.state_dict().items()},
             "optimizer_history": [{"criterion_name": "BinaryCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                                    "lr_scheduler_state": {"best": 0.0}, "num_updates": 400000}],
             "extra_state": {"epoch": 1, "train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
             "last_optimizer_state": {}}
    tmp = f"{path}.tmp"
    torch.save(state, tmp, _use_new_zipfile_serialization=False)
    os.replace(tmp, path)


def quantizer_params(path):
    import slu_kd_plugin
    slu_kd_plugin.register()  # fairseq knows the plugin
    from slu_kd_plugin.quantize import load_quantizer

    q = load_quantizer(path)
    if hasattr(q, "model"):
        return sum(p.numel() for p in q.model.parameters())
    return int(q.centroids.numel())


def manifest_seconds(tsv):
    with open(tsv, encoding="utf-8") as f:
        rows = f.read().splitlines()[1:]
    return sum(int(r.split("\t")[1]) for r in rows) / 16000.0


_FEATURIZE_DONE = re.compile(r"(\d+) utterances \((\d+) resumed\), (\d+) s of audio at ([\d.]+)x real time")


def featurize_row(run, name, audio_s, n_utts, path):
    """slu-kd-featurize's own speed (its encode loop: audio reading + quantizer) and the
    span from the quantizer being loaded to the last line (adds the dictionary and the
    quantizer file's fingerprint)."""
    done = [m for _, text in run.lines for m in [_FEATURIZE_DONE.search(text)] if m]
    if not done:
        raise BenchmarkError(f"{run.log}: slu-kd-featurize did not report its speed")
    loaded = run.time_of("quantizer from")
    span = run.time_of("real time", last=True) - loaded
    return {"quantizer": name, "params": quantizer_params(path), "utterances": n_utts, "audio_s": audio_s,
            "audio_s_per_s": float(done[-1].group(4)), "loaded_to_done_s": span,
            "audio_s_per_s_incl_overhead": audio_s / span if span > 0 else None,
            "startup_s": loaded, "wall_s": run.wall_s, "max_rss_mb": run.max_rss_mb}
