"""The CUDA paths, on a real GPU (skipped where there is none).

Every training stage (speech BERT, text model, teacher, PT-KD, AM-PT, FT-KD) runs as the
real ``fairseq-train --user-dir slu_kd_plugin`` on the GPU in fp32, ``--fp16`` and
``--amp``, each stage restoring the previous stage's checkpoint of the same precision;
then ``fairseq-validate``, ``slu-kd-evaluate``, ``slu-kd-package`` + ``slu-kd-predict`` +
``SLUModel`` and ``slu-kd-export`` run on the GPU and agree with the CPU.

fairseq 0.12's ``--bf16`` implies ``--tpu`` (it needs torch_xla), so bf16 is not
offered on GPUs; ``--amp`` (fp16 autocast, fp32 weights) is the other mixed precision.
fairseq's launcher spawns one process per visible GPU, so a world size above the GPU
count waits forever for the missing ranks: the DDP test needs two GPUs.

The data is conftest's tiny TTS pipeline.  On a GPU machine without the TTS voices,
set SLU_KD_TEST_PIPELINE to a directory where ``conftest.build_data`` already ran.
"""
import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ENV, PLUGIN, REPO, TRAIN_COMMON, Pipeline, log_records, run_all

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PRECISIONS = {"fp32": [], "fp16": ["--fp16"], "amp": ["--amp"]}
GPU_COMMON = [a for a in TRAIN_COMMON if a != "--cpu"]  # no --cpu: fairseq takes the GPU
SHORT = ["--max-epoch", "3"]  # a few updates per stage are enough here
# FT-KD variants beside the full one: cached (frozen) speech-BERT states with hidden-state
# masking on them, and the teacher run on every batch (on the GPU) instead of precomputed
# ((arguments added), (arguments dropped)) to the stage's own
FT_VARIANTS = {
    "ft_kd": (["--cache-speech-states"], []),
    "ft_kd_cached_hidden": (["--cache-speech-states"], ["--augment-units"]),
    "ft_kd_on_the_fly": (["--teacher-logits", "on-the-fly"], []),
}


def fairseq(name, *args):
    """argv of a fairseq command line tool, by module (the console script may not be on PATH)."""
    return [sys.executable, "-m", f"fairseq_cli.{name}", *map(str, args)]


def tool(module, *args):
    return [sys.executable, "-m", f"slu_kd_plugin.cli.{module}", *map(str, args)]


def run(argv, timeout=300):
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=str(REPO), timeout=timeout)


@pytest.fixture(scope="module")
def data(request):
    given = os.environ.get("SLU_KD_TEST_PIPELINE")
    if not given:
        return request.getfixturevalue("pipeline")
    p = Pipeline(given)
    assert (p.data / "label" / "dict.txt").is_file(), f"{given}: conftest.build_data has not run there"
    return p


def chain(p, root, precision):
    """A copy of the pipeline whose checkpoints of every stage go to root/precision."""
    q = copy.copy(p)
    q.ck = Path(root) / precision
    return q


def train_job(q, stage, precision, extra=(), save=None):
    """(argv, log) of one stage on the GPU; FT-KD variants save under their own names."""
    base = "ft_kd" if stage.startswith("ft_kd") else stage
    save = Path(save or q.ck / stage)
    save.mkdir(parents=True, exist_ok=True)
    data, args = q.stage_args(base)
    added, dropped = FT_VARIANTS.get(stage, ([], []))
    args = [a for a in args if a not in dropped]
    argv = fairseq("train", data, *GPU_COMMON, "--save-dir", save, *args, *SHORT,
                   *PRECISIONS[precision], *added, *extra)
    return argv, save / "train.log"


@pytest.fixture(scope="module")
def chains(data, tmp_path_factory):
    """Every stage in every precision, precisions side by side; {(precision, stage): code}."""
    root = tmp_path_factory.mktemp("cuda_chains")
    chains = {prec: chain(data, root, prec) for prec in PRECISIONS}
    codes = {}

    def step(*stages):
        jobs = [(prec, stage, *train_job(q, stage, prec))
                for prec, q in chains.items() for stage in stages]
        for (prec, stage, *_), code in zip(jobs, run_all(*[(a, log) for _, _, a, log in jobs], check=False)):
            codes[prec, stage] = code

    step("speech_bert", "text_model")
    step("teacher", "pt_kd")
    for q in chains.values():  # as the recipes do: the labels the teacher was trained with
        shutil.copy(q.data / "label" / "dict.txt", q.ck / "teacher" / "label_dict.txt")
    step("am_pt")
    step(*FT_VARIANTS)
    return chains, codes


STAGES = ("speech_bert", "text_model", "teacher", "pt_kd", "am_pt", *FT_VARIANTS)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_stage_trains_on_the_gpu(chains, precision, stage):
    q, codes = chains[0][precision], chains[1]
    log = q.ck / stage / "train.log"
    text = log.read_text(errors="replace")
    assert codes[precision, stage] == 0, f"{stage} ({precision}) failed:\n{text[-3000:]}"
    assert "CUDA enviroments for all 1 workers" in text or "CUDA environments" in text, "not on the GPU"
    records = log_records(log)  # one per epoch, keys prefixed "train_"
    assert records, "no training statistics logged"
    for record in records:
        assert math.isfinite(float(record["train_loss"])), record
    if precision == "fp16":
        assert "train_loss_scale" in records[-1]  # fairseq's FP16Optimizer ran
    assert (q.ck / stage / "checkpoint_best.pt").is_file() and (q.ck / stage / "checkpoint_last.pt").is_file()


def test_fp16_checkpoints_are_saved_in_fp32(chains):
    """fairseq saves a --fp16 model's weights as float32 (utils.move_to_cpu), so the next
    stage, fairseq-validate and the CPU inference path load them like fp32 ones."""
    from slu_kd_plugin.checkpoints import load_state

    q = chains[0]["fp16"]
    for stage in ("pt_kd", "am_pt", "ft_kd"):
        state = load_state(str(q.ckpt(stage)))
        assert {v.dtype for v in state["model"].values() if v.is_floating_point()} == {torch.float32}, stage


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_fairseq_validate_on_the_gpu(chains, precision):
    q = chains[0][precision]
    res = run(fairseq("validate", q.data, "--user-dir", PLUGIN, "--task", "slu_finetuning",
                      "--path", q.ckpt("ft_kd"), "--valid-subset", "test", "--batch-size", "32",
                      *(["--fp16"] if precision == "fp16" else [])))
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr  # without --cpu, fairseq-validate runs on the GPU
    assert "| accuracy " in out and "| macro_f1 " in out


def evaluate(q, out_dir, device):
    res = run(tool("evaluate", q.data, "--path", q.ckpt("ft_kd"), "--subset", "test",
                   "--out-dir", out_dir, "--device", device))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    return json.loads((out_dir / "metrics.json").read_text()), rows


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_evaluate_on_the_gpu_matches_the_cpu(chains, precision, tmp_path):
    q = chains[0][precision]
    gpu, gpu_rows = evaluate(q, tmp_path / "cuda", "cuda")
    cpu, cpu_rows = evaluate(q, tmp_path / "cpu", "cpu")
    assert gpu["n"] == cpu["n"] > 0
    assert [r["prediction"] for r in gpu_rows] == [r["prediction"] for r in cpu_rows]
    assert all(abs(g["probability"] - c["probability"]) < 2e-3 for g, c in zip(gpu_rows, cpu_rows))


def test_ddp_world_size_two_needs_two_gpus(chains, tmp_path):
    """Two workers (fairseq's launcher spawns one per GPU): the run finishes and pools metrics."""
    if torch.cuda.device_count() < 2:
        pytest.skip("fairseq's launcher starts one worker per GPU: world size 2 needs 2 GPUs")
    q = chains[0]["fp32"]
    argv, log = train_job(q, "ft_kd", "fp32", ["--distributed-world-size", "2"], save=tmp_path)
    assert run_all((argv, log), check=False)[0] == 0, log.read_text()[-3000:]


def test_bf16_is_refused_by_fairseq_0_12(chains, tmp_path):
    """fairseq 0.12 turns --bf16 into --tpu: documented here so a future fairseq that runs
    bf16 on GPUs shows up as a failing test to update, not as a silent change."""
    q = chains[0]["fp32"]
    argv, log = train_job(q, "am_pt", "fp32", ["--bf16"], save=tmp_path)
    code = run_all((argv, log), check=False)[0]
    assert code != 0 and "xla" in log.read_text(errors="replace").lower()


# --- inference: model directory, hub API, predict CLI, TorchScript ---------------------------------------

def corpus_wavs(q, split="test", n=6):
    """Absolute paths of a split's first recordings, in manifest order (the root line names
    where build_data ran; a moved pipeline has them at the same place under its root)."""
    root, *rows = (q.manifests / "fsc" / f"{split}.tsv").read_text().splitlines()
    if not os.path.isdir(root):
        parts = Path(root).parts
        root = q.root.joinpath(*parts[parts.index("corpus"):])
    return [os.path.join(root, row.split("\t")[0]) for row in rows[:n]]


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def model_dir(chains, request, tmp_path_factory):
    q = chains[0][request.param]
    out = tmp_path_factory.mktemp(f"model_{request.param}") / "model"
    res = run(tool("package", q.ckpt("ft_kd"), out, "--data", q.data, "--quantizer", q.root / "quantizer.pt",
                   "--manifest-dir", q.manifests / "fsc"))
    assert res.returncode == 0, res.stderr[-3000:]
    return q, out


def test_hub_and_predict_cli_on_the_gpu_match_the_cpu(model_dir):
    from slu_kd_plugin.hub import SLUModel

    q, out = model_dir
    wavs = corpus_wavs(q)
    gpu = SLUModel.from_pretrained(out, device="cuda")
    assert gpu.device.type == "cuda"
    on_gpu = gpu.predict_batch(wavs, batch_size=4)
    on_cpu = SLUModel.from_pretrained(out).predict_batch(wavs, batch_size=4)
    assert [r["intent"] for r in on_gpu] == [r["intent"] for r in on_cpu]
    assert all(abs(g["probability"] - c["probability"]) < 1e-3 for g, c in zip(on_gpu, on_cpu))
    res = run(tool("predict", out, *wavs, "--device", "cuda", "--batch-size", "4"))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["path"], r["intent"]) for r in lines] == [(w, r["intent"]) for w, r in zip(wavs, on_gpu)]


def test_torchscript_export_on_the_gpu_matches_eager(model_dir, tmp_path):
    from slu_kd_plugin.hub import SLUModel

    q, out = model_dir
    ts = tmp_path / "slu.ts.pt"
    res = run(tool("export", out, ts, "--device", "cuda"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "cuda" in res.stdout and "max |diff|" in res.stdout
    slu = SLUModel.from_pretrained(out, device="cuda")
    scripted = torch.jit.load(str(ts), map_location="cuda")
    seqs = [slu.units(w) for w in corpus_wavs(q)]
    from fairseq.data import data_utils

    batch = data_utils.collate_tokens(seqs, slu.unit_dict.pad()).cuda()
    with torch.no_grad():
        assert (scripted(batch) - slu.scorer(batch)).abs().max().item() <= 1e-5


def test_vq_wav2vec_quantizer_on_the_gpu(tmp_path):
    """slu-kd-featurize --device cuda (what the recipes pass for vq-wav2vec on a GPU):
    the same tokens as on the CPU, but for rare near-ties (cuDNN convolutions may use TF32)."""
    from test_quantize import make_corpus, make_legacy_vq_wav2vec, manifest_entries

    from slu_kd_plugin.audio import read_audio
    from slu_kd_plugin.quantize import load_quantizer

    corpus = make_corpus(str(tmp_path / "corpus"))
    vq = tmp_path / "vq-wav2vec_kmeans.pt"
    make_legacy_vq_wav2vec(str(vq))
    on_gpu, on_cpu = load_quantizer(vq, device="cuda"), load_quantizer(vq)
    same = total = 0
    for entry in manifest_entries(corpus):
        wav = read_audio(entry.path)
        a, b = on_gpu.encode(wav), on_cpu.encode(wav)
        assert len(a) == len(b)
        same, total = same + sum(x == y for x, y in zip(a, b)), total + len(a)
    assert same / total >= 0.98, f"{same}/{total} tokens agree"
    res = run(tool("featurize", corpus, "--quantizer", vq, "--split", "train", "--device", "cuda", "--no-progress"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert len((Path(corpus) / "train.units").read_text().splitlines()) == len(manifest_entries(corpus))
