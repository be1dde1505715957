"""Run an ONNX file written by ``slu-kd-export --format onnx`` with ONNX Runtime.

``OnnxScorer(path)(units)`` maps a (B, T) LongTensor of unit ids, laid out and padded
as in training, to (B, n_classes) intent probabilities, like the eager
``hub.UnitsToProbs``: the export's parity check and ``SLUModel`` call it in its place.
onnxruntime is an optional dependency (``pip install slu-kd[onnx]``), imported here only.
"""
import json

import torch

INPUT, OUTPUT = "units", "probs"


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeError("ONNX needs onnxruntime: pip install 'slu-kd[onnx]' "
                           "(or pip install onnx onnxruntime)") from e
    return onnxruntime


class OnnxScorer:
    """An ONNX Runtime session on CPU behind the eager scorer's call signature."""

    def __init__(self, path, threads=None):
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        # one pool size for torch and onnxruntime: --threads of the CLIs sets both
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own (non-OSError) classes for bad files
            raise RuntimeError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from e
        self.path = str(path)
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    def labels(self):
        """Class index -> label, as the export stored it (``labels.json`` metadata)."""
        return json.loads(self.metadata["labels.json"])

    def __call__(self, units):
        probs = self.session.run([OUTPUT], {INPUT: units.detach().cpu().long().numpy()})[0]
        return torch.from_numpy(probs).to(units.device)
