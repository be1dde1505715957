"""Evaluate an SLU checkpoint on a binarized split: metrics JSON, per-utterance
predictions (JSON lines) and a confusion-matrix PNG.  With ``--manifest-dir`` holding
``{subset}.spk``, metrics.json also scores each speaker (``per_speaker``, with the voice
from the manifest dir's speakers.tsv when there is one).

    slu-kd-evaluate DATA_BIN --path ckpt/checkpoint_best.pt --subset test --out-dir eval/
    slu-kd-evaluate DATA_BIN --path ckpt/checkpoint_best.pt --subset valid,test --out-dir 'eval/{subset}'
    slu-kd-evaluate DATA_BIN --path runs/a/checkpoint_best.pt runs/b/checkpoint_best.pt --out-dir '{run}/eval'

Several checkpoints or subsets are evaluated in one process (torch and fairseq are
imported once, ~5 s of CPU each time saved); ``--out-dir`` then names each output dir
with ``{subset}`` and ``{run}`` (the checkpoint's directory).  Each result is written
as it is done, so what finished before a failure is kept.
"""
import json
import os
import sys

import torch

from ..data.labels import label_symbols, macro_f1, slot_accuracies, slot_names
from ..utils import atomic_write
from . import cli_parser


def parse_args(argv=None):
    p = cli_parser("slu-kd-evaluate", __doc__)
    p.add_argument("data", help="data-bin dir (units/, label/)")
    p.add_argument("--path", required=True, nargs="+", help="SLU checkpoint(s) (slu_ds2)")
    p.add_argument("--subset", default="test", help="split(s) of DATA, comma-separated (default: test)")
    p.add_argument("--out-dir", help="where to write metrics.json, predictions.jsonl, confusion.png; "
                   "with several checkpoints or subsets it must name each: {run} (the checkpoint's "
                   "directory) and {subset}")
    p.add_argument("--manifest-dir", help="manifest dir, to name utterances by their {subset}.id "
                   "and, where it has {subset}.spk, score each speaker (metrics.json per_speaker)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="torch device (e.g. cuda)")
    args = p.parse_args(argv)
    missing = [path for path in args.path if not os.path.isfile(path)]
    if missing:  # before the first model is loaded
        p.error(f"no such checkpoint: {', '.join(missing)}")
    args.subsets = [x for x in args.subset.split(",") if x]
    if not args.subsets:
        p.error(f"--subset names no split: '{args.subset}'")
    if args.out_dir and len(out_dirs(args)) < len(args.path) * len(args.subsets):
        p.error(f"--out-dir '{args.out_dir}' would write {len(args.path)} checkpoint(s) x "
                f"{len(args.subsets)} subset(s) into the same place: name each with {{run}} and {{subset}}")
    return args


def out_dir(template, path, subset):
    """An output dir of ``--out-dir``: {run} the checkpoint's directory, {subset} the split."""
    return template.replace("{run}", os.path.dirname(os.path.abspath(path))).replace("{subset}", subset)


def out_dirs(args):
    return {out_dir(args.out_dir, path, subset) for path in args.path for subset in args.subsets}


@torch.no_grad()
def predict_split(model, task, subset, batch_size, device="cpu"):
    """(ids, refs, preds, probs) in dataset order, the model run on ``device``."""
    from fairseq import utils

    model.to(device)  # before load_dataset: with --cache-speech-states it runs the model there
    task.load_dataset(subset)
    itr = task.get_batch_iterator(task.dataset(subset), max_sentences=batch_size).next_epoch_itr(shuffle=False)
    rows = []
    for sample in itr:
        # batches are collated on CPU; the model may sit on a GPU
        sample = utils.apply_to_sample(lambda t: t.to(device), sample)
        probs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=False)
        conf, pred = probs.max(-1)
        rows += zip(sample["id"].tolist(), sample["target"].view(-1).tolist(), pred.tolist(), conf.tolist())
    rows.sort()
    return [list(col) for col in zip(*rows)] if rows else [[], [], [], []]


def compute_metrics(task, refs, preds):
    names, separator = label_symbols(task.label_dict), task.cfg.slot_separator
    metrics = {"n": len(refs), "accuracy": 100.0 * sum(r == p for r, p in zip(refs, preds)) / max(len(refs), 1),
               "macro_f1": macro_f1(refs, preds, len(names))}
    slots = slot_names(names, task.cfg.slot_names, separator)
    if slots:
        metrics["slot_accuracy"] = slot_accuracies(refs, preds, names, slots, separator)
    return metrics, names


def read_lines(path, n, what):
    """The lines of a manifest file that must have one line per utterance of the split."""
    with open(path) as f:
        lines = [line.rstrip("\n") for line in f]
    if len(lines) != n:
        raise ValueError(f"{path}: {len(lines)} lines, but the split has {n} utterances ({what})")
    return lines


def read_speakers(manifest_dir, subset, n):
    """(speaker per utterance, {speaker: voice}) from ``{subset}.spk`` and speakers.tsv,
    or (None, {}) for manifests written before speakers were recorded."""
    from ..corpora.speakers import SPEAKERS_TSV
    from ..corpora.speakers import read_speakers as read_voices

    path = os.path.join(manifest_dir, f"{subset}.spk")
    if not os.path.isfile(path):
        return None, {}
    speakers = read_lines(path, n, "one speaker id per utterance")
    listing = os.path.join(manifest_dir, SPEAKERS_TSV)
    voices = read_voices(listing)[0] if os.path.isfile(listing) else {}
    return speakers, voices


def per_speaker(speakers, voices, ids, refs, preds):
    """``{speaker: {utterances, accuracy, voice}}``, speakers sorted; ``ids`` index
    ``speakers`` (dataset order = manifest line order)."""
    counts = {}
    for i, r, p in zip(ids, refs, preds):
        n, right = counts.get(speakers[i], (0, 0))
        counts[speakers[i]] = (n + 1, right + (r == p))
    return {spk: {"utterances": n, "accuracy": 100.0 * right / n, "voice": voices.get(spk)}
            for spk, (n, right) in sorted(counts.items())}


def speaker_table(table):
    """Plain-text table of per_speaker, for the log."""
    lines = [f"{'speaker':<24} {'utts':>5} {'acc %':>7}  voice"]
    for spk, row in table.items():
        lines.append(f"{spk:<24} {row['utterances']:>5} {row['accuracy']:>7.2f}  {row['voice'] or '-'}")
    return "\n".join(lines)


def write_outputs(out_dir, metrics, names, ids, refs, preds, probs, utt_ids):
    os.makedirs(out_dir, exist_ok=True)
    with atomic_write(os.path.join(out_dir, "metrics.json")) as f:
        json.dump(metrics, f, indent=2)
    with atomic_write(os.path.join(out_dir, "predictions.jsonl")) as f:
        for i, r, p, c in zip(ids, refs, preds, probs):
            uid = utt_ids[i] if utt_ids else i
            f.write(json.dumps({"id": uid, "reference": names[r], "prediction": names[p], "probability": round(c, 4)}) + "\n")
    confusions = sorted(((names[r], names[p]) for r, p in zip(refs, preds) if r != p))
    with atomic_write(os.path.join(out_dir, "confusions.txt")) as f:
        f.write("".join(f"{r}\t->\t{p}\n" for r, p in confusions))
    plot_confusion(os.path.join(out_dir, "confusion.png"), names, refs, preds)


def plot_confusion(path, names, refs, preds):
    from ..utils import pyplot

    plt = pyplot()

    n = len(names)
    m = torch.zeros(n, n)
    for r, p in zip(refs, preds):
        m[r, p] += 1
    fig, ax = plt.subplots(figsize=(max(6, n * 0.3), max(5, n * 0.3)))
    ax.imshow(m.numpy(), cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=6)
    ax.set_yticks(range(n), names, fontsize=6)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def main(argv=None):
    args = parse_args(argv)
    from ..hub import load_slu

    for path in args.path:
        try:
            model, task = load_slu(path, args.data)
        except (OSError, ValueError, RuntimeError) as e:  # the checkpoint or DATA at fault
            sys.exit(f"slu-kd-evaluate: error: {e}")
        for subset in args.subsets:
            metrics = evaluate(model, task, path, subset, args)
            shown = {k: v for k, v in metrics.items() if k != "checkpoint" or len(args.path) > 1}
            print(json.dumps(shown), flush=True)


def evaluate(model, task, path, subset, args):
    """metrics of ``model`` on ``subset``, its files written to --out-dir when given."""
    ids, refs, preds, probs = predict_split(model, task, subset, args.batch_size, args.device)
    metrics, names = compute_metrics(task, refs, preds)
    metrics.update(subset=subset, checkpoint=path)
    utt_ids = None
    if args.manifest_dir:
        n = len(task.dataset(subset))
        try:
            utt_ids = read_lines(os.path.join(args.manifest_dir, f"{subset}.id"), n, "utterance ids")
            speakers, voices = read_speakers(args.manifest_dir, subset, n)
        except (OSError, ValueError) as e:  # the manifest dir does not match DATA
            sys.exit(f"slu-kd-evaluate: error: {e}")
        if speakers is not None:
            metrics["per_speaker"] = per_speaker(speakers, voices, ids, refs, preds)
            print(f"{subset} accuracy per speaker ({path}):\n{speaker_table(metrics['per_speaker'])}",
                  file=sys.stderr)
    if args.out_dir:
        write_outputs(out_dir(args.out_dir, path, subset), metrics, names, ids, refs, preds, probs, utt_ids)
    return metrics


if __name__ == "__main__":
    main()
