"""slu-kd-export: the TorchScript file gives the eager model's probabilities (atol 1e-5)
on real utterances of different lengths, alone and padded together, also in a
process that imports neither slu_kd_plugin nor fairseq; a wrong trace is refused."""
import json
import subprocess
import sys

import pytest
import torch

from conftest import ENV
from test_predict import cli, manifest_wavs, package_args

pytestmark = pytest.mark.slow  # the model comes from the real fairseq-train (conftest `trained`)
ATOL = 1e-5


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    from slu_kd_plugin.cli import package

    out = tmp_path_factory.mktemp("export") / "model"
    package.main([str(a) for a in package_args(trained, out)])
    return out


@pytest.fixture(scope="module")
def exported(model_dir):
    out = model_dir.parent / "slu.ts.pt"
    result = cli("export", model_dir, out, "--format", "torchscript")
    assert result.returncode == 0, result.stderr
    assert "max |diff|" in result.stdout
    return out


@pytest.fixture(scope="module")
def slu(model_dir):
    from slu_kd_plugin.hub import SLUModel

    return SLUModel.from_pretrained(model_dir)


def real_units(slu, trained):
    """Unit sequences of real utterances, shortest to longest (distinct lengths)."""
    seqs = sorted((slu.units(w) for w in manifest_wavs(trained)), key=len)
    return [seqs[0], seqs[len(seqs) // 2], seqs[-1]]


def test_exported_matches_eager_on_different_lengths(exported, slu, trained):
    ts = torch.jit.load(str(exported))
    seqs = real_units(slu, trained)
    assert len({len(s) for s in seqs}) == 3
    with torch.no_grad():
        for seq in seqs:
            one = seq[None]
            assert torch.allclose(ts(one), slu.scorer(one), atol=ATOL, rtol=0)
        batch = slu_pad(slu, seqs)
        got = ts(batch)
        assert torch.allclose(got, slu.scorer(batch), atol=ATOL, rtol=0)
        # and padding changes nothing: each row equals its unpadded run
        assert torch.allclose(got, torch.cat([ts(s[None]) for s in seqs]), atol=ATOL, rtol=0)


def slu_pad(slu, seqs):
    from fairseq.data import data_utils

    return data_utils.collate_tokens(seqs, slu.unit_dict.pad())


def test_exported_file_runs_without_the_plugin(exported, slu, trained, tmp_path):
    batch = slu_pad(slu, real_units(slu, trained))
    torch.save(batch, tmp_path / "units.pt")
    code = ("import sys, json, torch; files = {'labels.json': ''}; "
            "m = torch.jit.load(sys.argv[1], _extra_files=files); "
            "torch.save(m(torch.load(sys.argv[2])), sys.argv[3]); "
            "print(json.dumps([sorted(k for k in sys.modules if k.split('.')[0] in ('fairseq', 'slu_kd_plugin')), "
            "json.loads(files['labels.json'])]))")
    result = subprocess.run([sys.executable, "-c", code, str(exported), str(tmp_path / "units.pt"),
                             str(tmp_path / "probs.pt")], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    imported, labels = json.loads(result.stdout)
    assert imported == [] and labels == slu.labels
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "probs.pt"), slu.scorer(batch), atol=ATOL, rtol=0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_trace_that_ignores_padding_is_refused(slu, tmp_path, monkeypatch):
    from slu_kd_plugin.cli import export

    def batch_one_trace(model):  # no padding seen: fairseq's padding branch is traced away
        example = export.pad(export.example_units(model, (40,)), model)
        return torch.jit.trace(model.scorer, example, check_trace=False)

    monkeypatch.setattr(export, "trace", batch_one_trace)
    out = tmp_path / "bad.pt"
    with pytest.raises(RuntimeError, match="differs from the eager one"):
        export.export_torchscript(slu, str(out))
    assert list(tmp_path.iterdir()) == []


# ---- ONNX (slu-kd-export --format onnx; onnx + onnxruntime are the [onnx] extra) ----

@pytest.fixture(scope="module")
def exported_onnx(model_dir):
    pytest.importorskip("onnxruntime")
    out = model_dir.parent / "slu.onnx"
    result = cli("export", model_dir, out, "--format", "onnx")
    assert result.returncode == 0, result.stderr
    assert "(onnx, cpu; max |diff| vs eager" in result.stdout
    return out


def test_onnx_file_matches_eager_on_any_batch_and_length(exported_onnx, slu, trained):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported_onnx), providers=["CPUExecutionProvider"])
    seqs = real_units(slu, trained)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels.json"]) == slu.labels
    with torch.no_grad():
        # batch sizes 1 and 3, lengths other than the export example's: the axes are dynamic
        for batch in [s[None] for s in seqs] + [slu_pad(slu, seqs)]:
            got = torch.from_numpy(session.run(["probs"], {"units": batch.numpy()})[0])
            assert torch.allclose(got, slu.scorer(batch), atol=ATOL, rtol=0)


def test_predict_runs_the_onnx_file_and_gives_the_eager_intents(exported_onnx, model_dir, trained):
    from slu_kd_plugin.hub import SLUModel

    wavs = manifest_wavs(trained)[:6]
    eager = SLUModel.from_pretrained(model_dir).predict_batch(wavs)
    onnx = SLUModel.from_pretrained(model_dir, onnx=exported_onnx)
    assert onnx.onnx is not None
    got = onnx.predict_batch(wavs)
    assert [g["intent"] for g in got] == [e["intent"] for e in eager]
    assert all(abs(g["probability"] - e["probability"]) < ATOL for g, e in zip(got, eager))
    result = cli("predict", model_dir, *wavs, "--onnx", exported_onnx, "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["intent"] for line in result.stdout.splitlines()] == [e["intent"] for e in eager]


def test_an_onnx_file_of_other_labels_is_refused(exported_onnx, model_dir, tmp_path):
    import onnx

    from slu_kd_plugin.hub import ModelDirError, SLUModel

    model = onnx.load(str(exported_onnx))
    for prop in model.metadata_props:
        if prop.key == "labels.json":
            prop.value = json.dumps(list(reversed(json.loads(prop.value))))
    onnx.save(model, str(tmp_path / "other.onnx"))
    with pytest.raises(ModelDirError, match="other.onnx: its labels are not those"):
        SLUModel.from_pretrained(model_dir, onnx=tmp_path / "other.onnx")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_an_onnx_export_that_ignores_padding_is_refused(slu, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from slu_kd_plugin.cli import export

    real_units_of = export.example_units
    # an unpadded example: fairseq's padding branch is exported away, padded batches go wrong
    monkeypatch.setattr(export, "example_units", lambda model, lengths, seed=0: real_units_of(
        model, lengths if len(lengths) != 2 else (40,), seed))
    out = tmp_path / "bad.onnx"
    with pytest.raises(RuntimeError, match="bad.onnx: the ONNX model differs from the eager one"):
        export.export_onnx(slu, str(out))
    assert list(tmp_path.iterdir()) == []
