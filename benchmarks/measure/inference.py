"""Section "inference": per-utterance latency from an audio file to the intent (p50/p95,
real-time factor) of SLUModel (eager), the slu-kd-export TorchScript file and, on CPU
with onnxruntime installed, the ONNX file."""
import os
import shutil
import statistics
import time

from .machine import package_version
from .process import tool


def measure(bench):
    bench.ft_base()
    model_dir, ts_path = bench.scratch / "model", bench.scratch / "model.ts.pt"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    package = bench.call("package", [tool("slu-kd-package"), bench.ft_checkpoint, model_dir, "--data",
                                    bench.work.fsc, "--quantizer", bench.work.quantizer,
                                    "--manifest-dir", bench.work.manifests])
    export = bench.call("export", [tool("slu-kd-export"), model_dir, ts_path, "--format", "torchscript",
                                  "--device", bench.args.device])
    exports = {"torchscript": export.wall_s}
    onnx_path = None
    if bench.args.device == "cpu" and package_version("onnxruntime"):
        onnx_path = bench.scratch / "model.onnx"
        exports["onnx"] = bench.call("export_onnx", [tool("slu-kd-export"), model_dir, onnx_path,
                                                    "--format", "onnx"]).wall_s
    subset = bench.manifest_subset("test", bench.args.latency_utts, bench.scratch / "latency")
    rows = measure_latency(model_dir, ts_path, subset / "bench.tsv", bench.args, onnx_path=onnx_path)
    for row in rows:
        row["package_s"], row["export_s"] = package.wall_s, exports.get(row["path"])
    return rows


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure_latency(model_dir, ts_path, tsv, args, warmup=2, onnx_path=None):
    """Per-utterance latency, audio file -> intent, of SLUModel.predict (eager), of the
    quantizer + TorchScript file and (when given) of the quantizer + ONNX file under ONNX
    Runtime; the paths alternate utterance by utterance, so a busy moment on a shared
    machine hits them alike."""
    import torch

    from slu_kd_plugin.hub import SLUModel

    torch.set_num_threads(args.threads)
    slu = SLUModel.from_pretrained(model_dir, device=args.device)
    scripted = torch.jit.load(str(ts_path), map_location=args.device)
    with open(tsv, encoding="utf-8") as f:
        root, *rows = f.read().splitlines()
    utts = [(os.path.join(root, r.split("\t")[0]), int(r.split("\t")[1]) / 16000.0) for r in rows]

    def timed(score):
        def predict(path):
            units = slu.units(path)
            t = time.perf_counter()
            with torch.no_grad():
                probs = score(units[None].to(slu.device)).cpu()
            model_s = time.perf_counter() - t
            return slu.describe(probs[0]), model_s
        return predict

    paths = {"eager": timed(slu.scorer), "torchscript": timed(scripted)}
    if onnx_path is not None:
        from slu_kd_plugin.onnx_scorer import OnnxScorer

        paths["onnx"] = timed(OnnxScorer(onnx_path, threads=args.threads))
    timings = {name: [] for name in paths}
    agree = dict.fromkeys(paths, 0)
    for i, (path, _) in enumerate(utts[:warmup] + utts):  # the first calls pay one-off costs
        intents = {}
        for name, fn in paths.items():
            t = time.perf_counter()
            prediction, model_s = fn(path)
            if i >= warmup:
                timings[name].append((time.perf_counter() - t, model_s))
            intents[name] = prediction["intent"]
        if i >= warmup:
            for name in paths:
                agree[name] += intents[name] == intents["eager"]
    audio_s = sum(d for _, d in utts)
    return [latency_row(name, rows_, audio_s, agree[name] / len(utts)) for name, rows_ in timings.items()]


def latency_row(name, rows, audio_s, agreement):
    total = [t for t, _ in rows]
    model = [m for _, m in rows]
    return {"path": name, "utterances": len(rows), "audio_s": audio_s,
            "p50_ms": 1000 * percentile(total, 50), "p95_ms": 1000 * percentile(total, 95),
            "mean_ms": 1000 * statistics.mean(total), "rtf": sum(total) / audio_s,
            "model_p50_ms": 1000 * percentile(model, 50), "model_p95_ms": 1000 * percentile(model, 95),
            "same_intent_as_eager": agreement}
