"""slu-kd-predict: intents of audio files with a packaged model (slu-kd-package).

    slu-kd-predict model_dir a.wav b.flac ...
    slu-kd-predict model_dir a.wav --onnx slu.onnx     # the network run by ONNX Runtime
    find audio/ -name '*.wav' | slu-kd-predict model_dir -

One JSON line per file on stdout, in input order:
    {"path": "a.wav", "intent": "activate|lights|none",
     "slots": {"action": "activate", "object": "lights", "location": "none"}, "probability": 0.97}
("slots" is null for labels without slots). Any sample rate or channel count is read.
A file that cannot be used gets an error line naming it on stderr; the others are still
predicted, and the exit status is 1 at the end.
"""
import json
import sys

from . import cli_parser


def parse_args(argv=None):
    p = cli_parser("slu-kd-predict", __doc__)
    p.add_argument("model_dir", help="model directory written by slu-kd-package")
    p.add_argument("audio", nargs="+", help="audio files; '-' reads one path per line from stdin")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per forward pass")
    p.add_argument("--device", default="cpu", help="torch device (e.g. cuda)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of torch and ONNX Runtime (default: torch's choice)")
    p.add_argument("--onnx", default=None,
                   help="score with this file from slu-kd-export --format onnx (ONNX Runtime, CPU) "
                        "instead of the eager model")
    return p.parse_args(argv)


def iter_paths(args):
    """Paths from the command line, with '-' expanded to stdin's lines (read lazily)."""
    for item in args:
        if item == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield item


def chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def report_error(path, error):
    message = str(error)
    if not message.startswith(path):  # every error line names its file
        message = f"{path}: {message}"
    print(f"slu-kd-predict: error: {message}", file=sys.stderr, flush=True)


def predict_chunk(slu, paths):
    """Print the predictions of ``paths``; returns the number of files that failed."""
    from ..audio import AudioError
    from ..quantize import QuantizerError

    seqs, good = [], []
    for path in paths:
        try:
            seqs.append(slu.units(path))
            good.append(path)
        except (AudioError, QuantizerError, ValueError, OSError) as e:
            report_error(path, e)
    if seqs:
        for path, row in zip(good, slu.probabilities(seqs)):
            result = slu.describe(row)
            line = {"path": path, "intent": result["intent"], "slots": result.get("slots"),
                    "probability": round(result["probability"], 6)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
    return len(paths) - len(good)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from ..hub import ModelDirError, SLUModel

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        slu = SLUModel.from_pretrained(args.model_dir, device=args.device, onnx=args.onnx)
    except (ModelDirError, OSError, ValueError, RuntimeError) as e:
        print(f"slu-kd-predict: error: {e}", file=sys.stderr)
        sys.exit(2)
    failed = sum(predict_chunk(slu, chunk) for chunk in chunks(iter_paths(args.audio), args.batch_size))
    if failed:
        print(f"slu-kd-predict: {failed} file(s) could not be predicted", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
