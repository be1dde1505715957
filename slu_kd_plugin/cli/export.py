"""slu-kd-export: the SLU network of a model directory as one TorchScript or ONNX file.

    slu-kd-export model_dir slu.ts.pt --format torchscript
    slu-kd-export model_dir slu.onnx --format onnx        # needs pip install 'slu-kd[onnx]'

The exported model maps unit ids to intent probabilities:
    probs = torch.jit.load("slu.ts.pt")(units)   # units: (B, T) LongTensor -> (B, n_classes)
    probs = onnxruntime.InferenceSession("slu.onnx").run(["probs"], {"units": units})[0]
``units`` are laid out as in training (``<s>`` units ``</s>``, right-padded with the
unit dictionary's pad index, at most ``max_positions`` long); ``SLUModel.units`` of
``slu_kd_plugin.hub`` makes them from audio. The file carries ``config.json`` and the
label names (``labels.json``: class index -> label) as TorchScript extra files or ONNX
metadata; the ONNX graph has dynamic batch and length axes.

The export is refused unless the saved file reproduces the eager model's
probabilities (atol 1e-5) on sequences of several lengths, alone and padded together.
``--device cuda`` traces (and checks) the TorchScript model on the GPU: the tracer freezes
the devices the model creates tensors on, so the file then runs on that device only. ONNX
files are exported from and checked on the CPU (onnxruntime's CPU provider).
"""
import json
import sys
import warnings

import torch

from . import cli_parser

ATOL = 1e-5
CHECK_LENGTHS = (3, 17, 64, 250)  # with <s> and </s>; 3 = a single unit


def parse_args(argv=None):
    p = cli_parser("slu-kd-export", __doc__)
    p.add_argument("model_dir", help="model directory written by slu-kd-package")
    p.add_argument("out", help="output file (.pt)")
    p.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript", help="export format")
    p.add_argument("--device", default="cpu",
                   help="torch device to trace and check on (e.g. cuda); the file runs on that device")
    return p.parse_args(argv)


def example_units(slu, lengths, seed=0):
    """Random unit sequences ``<s> u... </s>`` of the given total lengths."""
    d, g = slu.unit_dict, torch.Generator().manual_seed(seed)
    lengths = [min(n, slu.max_positions) for n in lengths]
    # real units only: the quantizer never emits specials or <mask>
    first, last = d.nspecial, d.index("<mask>")
    return [torch.cat([torch.tensor([d.bos()]), torch.randint(first, last, (n - 2,), generator=g),
                       torch.tensor([d.eos()])]) for n in lengths]


def pad(seqs, slu):
    from fairseq.data import data_utils

    # on the model's device: a CPU example would trace (and check) a CPU graph only
    return data_utils.collate_tokens(seqs, slu.unit_dict.pad()).to(slu.device)


def trace(slu):
    """torch.jit.trace of the eager scorer on a padded batch.

    A padded example matters: fairseq's TransformerEncoder takes its padding branch
    only when the batch has padding (a Python ``if`` the tracer freezes), and that
    branch is also exact for unpadded input, so the traced graph serves both.
    """
    example = pad(example_units(slu, (40, 25), seed=1), slu)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(slu.scorer.eval(), example, check_trace=False)


def max_difference(module, slu, lengths=CHECK_LENGTHS):
    """Largest |exported - eager| over single sequences and one padded batch of them."""
    seqs = example_units(slu, lengths)
    worst = 0.0
    with torch.no_grad():
        for batch in [pad([s], slu) for s in seqs] + [pad(seqs, slu)]:
            worst = max(worst, (module(batch) - slu.scorer(batch)).abs().max().item())
    return worst


def extra_files(slu):
    return {"config.json": json.dumps(slu.config, indent=1),
            "labels.json": json.dumps(slu.labels, ensure_ascii=False)}


def checked_save(slu, out, save, load, what):
    """``save(tmp)``, check ``load(tmp)`` against the eager model, then move it to ``out``;
    returns the max difference. A file that differs is removed, never written."""
    import os

    from ..utils import atomic_save_bytes

    tmp_check = f"{out}.check"
    try:
        save(tmp_check)
        diff = max_difference(load(tmp_check), slu)
        if not diff <= ATOL:  # NaN is refused too
            raise RuntimeError(f"{out}: the {what} model differs from the eager one by {diff:.2e} "
                               f"(> {ATOL:g}); not written")
        atomic_save_bytes(out, lambda tmp: os.replace(tmp_check, tmp))
    finally:
        if os.path.exists(tmp_check):
            os.remove(tmp_check)
    return diff


def export_torchscript(slu, out):
    """Trace, save atomically, reload the saved file and check it; returns the max difference."""
    traced = trace(slu)
    return checked_save(slu, out, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra_files(slu)),
                        lambda tmp: torch.jit.load(tmp, map_location=slu.device), "traced")


def save_onnx(slu, path):
    """torch.onnx's tracing exporter on a padded example (as :func:`trace`, for fairseq's
    padding branch), batch and length axes dynamic, label names as metadata."""
    import onnx

    from ..onnx_scorer import INPUT, OUTPUT

    example = pad(example_units(slu, (40, 25), seed=1), slu)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # dynamo=False: the dynamo exporter needs onnxscript, which slu-kd does not install
        torch.onnx.export(slu.scorer.eval(), (example,), path, dynamo=False, opset_version=17,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch", 1: "length"}, OUTPUT: {0: "batch"}})
    model = onnx.load(path)
    for key, value in extra_files(slu).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


def export_onnx(slu, out):
    """Export on the CPU, save atomically, check the file under ONNX Runtime; returns the max difference."""
    from ..onnx_scorer import OnnxScorer, require_onnxruntime

    require_onnxruntime()
    if slu.device.type != "cpu":
        raise RuntimeError(f"{out}: ONNX export runs on the CPU; leave out --device {slu.device}")
    return checked_save(slu, out, lambda tmp: save_onnx(slu, tmp), OnnxScorer, "ONNX")


def main(argv=None):
    args = parse_args(argv)
    from ..hub import ModelDirError, SLUModel

    try:
        slu = SLUModel.from_pretrained(args.model_dir, device=args.device)
        export = export_onnx if args.format == "onnx" else export_torchscript
        diff = export(slu, args.out)
    except (ModelDirError, OSError, RuntimeError) as e:
        print(f"slu-kd-export: error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {args.out} ({args.format}, {slu.device}; max |diff| vs eager {diff:.1e} "
          f"on lengths {list(CHECK_LENGTHS)})")


if __name__ == "__main__":
    main()
