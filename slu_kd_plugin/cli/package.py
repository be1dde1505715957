"""slu-kd-package: turn an SLU checkpoint into a model directory holding exactly what
inference needs (see ``slu_kd_plugin.hub``):

    slu-kd-package runs/train/da/seed1/checkpoint_best.pt model_dir \\
        --data data-bin/fsc --quantizer quantizer.pt --manifest-dir manifests/fsc

    model_dir/config.json       format version, label separator, slot names, provenance
    model_dir/model.pt          model weights + cfg; no optimizer state, no teacher path
    model_dir/quantizer.pt      the quantizer the units were made with
    model_dir/units/dict.txt    unit dictionary   (DATA/units/dict.txt)
    model_dir/label/dict.txt    label dictionary  (DATA/label/dict.txt)
    model_dir/labels.json       slot values as the corpus wrote them (with --manifest-dir)

The directory is built beside MODEL_DIR and renamed into place only once the packaged
model has loaded and predicted, so MODEL_DIR is never half-written.
"""
import copy
import json
import os
import shutil
import sys
import tempfile


from .. import hub
from . import cli_parser


def parse_args(argv=None):
    p = cli_parser("slu-kd-package", __doc__)
    p.add_argument("checkpoint", help="SLU checkpoint (slu_ds2, e.g. checkpoint_best.pt)")
    p.add_argument("model_dir", help="model directory to write")
    p.add_argument("--data", required=True, help="the data-bin the model was trained on (units/, label/)")
    p.add_argument("--quantizer", required=True, help="the quantizer the data's units were made with")
    p.add_argument("--manifest-dir", help="manifest dir whose labels.json names the slots as the corpus did")
    p.add_argument("--merge-repeats", choices=["yes", "no"], default=None,
                   help="as given to slu-kd-featurize, if it was overridden there")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    return p.parse_args(argv)


def strip_checkpoint(state):
    """Weights + cfg, and the bare bookkeeping fairseq's loader insists on."""
    from ..tasks.slu_finetuning import TRAINING_ONLY

    cfg = copy.deepcopy(state["cfg"])
    # inference needs no teacher, and a model rebuilt from speech_bert_args reads
    # neither the speech BERT nor the AM file (config.json keeps them as provenance);
    # `data` stays, as in any fairseq checkpoint: loaders override it (the hub with
    # the model dir, slu-kd-evaluate with its DATA argument)
    cfg["task"].update(TRAINING_ONLY)
    cfg["model"].update(speech_bert_path=None, am_path=None)
    last = (state.get("optimizer_history") or [{}])[-1]
    history = {"criterion_name": last.get("criterion_name"), "optimizer_name": last.get("optimizer_name"),
               "lr_scheduler_state": {}, "num_updates": last.get("num_updates", 0)}
    # _upgrade_state_dict needs optimizer_history[-1] and extra_state["train_iterator"]
    return {"args": None, "cfg": cfg, "model": state["model"], "optimizer_history": [history],
            "extra_state": {"train_iterator": None}}


def read_labels_json(manifest_dir, labels):
    """labels.json restricted to this model's labels; None without a manifest dir."""
    if not manifest_dir:
        return None
    path = os.path.join(manifest_dir, hub.LABELS)
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    missing = [t for t in labels if t not in info]
    if len(missing) == len(labels):
        raise ValueError(f"{path}: names none of the model's {len(labels)} labels (another corpus?)")
    if missing:
        print(f"warning: {path} lacks {len(missing)} labels (e.g. {missing[0]}); "
              "their slots are decoded from the label token", file=sys.stderr)
    return {t: info[t] for t in labels if t in info}


def slot_names(task_cfg, labels, label_info):
    """Slot names as labels.json gives them when every label has the same slots, else
    by the task's rule (data.labels.slot_names); [] for plain intents."""
    from ..data.labels import slot_names as slots_by_rule

    if label_info:
        keys = {tuple(v) for v in label_info.values()}
        return list(keys.pop()) if len(keys) == 1 and keys != {("intent",)} else []
    return slots_by_rule(labels, task_cfg.get("slot_names"), task_cfg.get("slot_separator", "|"))


def check_quantizer(quantizer_path, unit_dict_path, merge_repeats):
    """The quantizer must be the one the dictionary's units were made with."""
    from fairseq.data import Dictionary

    from ..quantize import check_unit_dictionary, load_quantizer

    q = load_quantizer(quantizer_path, merge_repeats=merge_repeats)
    check_unit_dictionary(q, Dictionary.load(unit_dict_path), unit_dict_path)


def write_quantizer(src, dst):
    """Our own quantizer file as is; a fairseq (vq-wav2vec) checkpoint without its
    optimizer state and training meters, which the quantizer never reads."""
    import torch

    from ..quantize import safe_torch_load

    state = safe_torch_load(src)
    if "kind" in state:
        shutil.copyfile(src, dst)
        return
    last = (state.get("optimizer_history") or [{}])[-1]
    history = {k: last[k] for k in ("criterion_name", "optimizer_name", "num_updates") if k in last}
    # _upgrade_state_dict (run by the loader) needs these two keys to exist
    keep = {"args": state.get("args"), "cfg": state.get("cfg"), "model": state["model"],
            "optimizer_history": [{**history, "lr_scheduler_state": {}}], "extra_state": {"train_iterator": None}}
    torch.save(keep, dst)


def write_model_dir(args, out):
    """Fill directory ``out``; returns the config written."""
    import torch

    from ..checkpoints import check_slu, torch_load

    # the raw dict, not fairseq's upgraded DictConfig: the model dir's model.pt must
    # stay loadable with weights_only=True, which refuses pickled omegaconf objects
    state = check_slu(torch_load(args.checkpoint), args.checkpoint)
    merge = None if args.merge_repeats is None else args.merge_repeats == "yes"
    # checkpoint, data and quantizer must belong together: refuse before copying anything
    labels = hub.check_fits_data(state, args.checkpoint, args.data)
    check_quantizer(args.quantizer, os.path.join(args.data, hub.UNIT_DICT), merge)
    for name in (hub.UNIT_DICT, hub.LABEL_DICT):
        os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
        shutil.copyfile(os.path.join(args.data, name), os.path.join(out, name))
    write_quantizer(args.quantizer, os.path.join(out, hub.QUANTIZER))
    torch.save(strip_checkpoint(state), os.path.join(out, hub.CHECKPOINT))
    label_info = read_labels_json(args.manifest_dir, labels)
    if label_info is not None:
        with open(os.path.join(out, hub.LABELS), "w", encoding="utf-8") as f:
            json.dump(label_info, f, indent=1, ensure_ascii=False)
    task_cfg = state["cfg"]["task"]
    config = {"format_version": hub.FORMAT_VERSION, "label_separator": task_cfg.get("slot_separator", "|"),
              "slot_names": slot_names(task_cfg, labels, label_info), "n_classes": len(labels),
              "merge_repeats": merge, "max_positions": task_cfg.get("max_positions"),
              "source": {"checkpoint": os.path.abspath(args.checkpoint), "data": os.path.abspath(args.data),
                         "quantizer": os.path.abspath(args.quantizer),
                         "teacher_path": task_cfg.get("teacher_path"),
                         "speech_bert_path": state["cfg"]["model"].get("speech_bert_path"),
                         "am_path": state["cfg"]["model"].get("am_path"),
                         "num_updates": (state.get("optimizer_history") or [{}])[-1].get("num_updates")}}
    with open(os.path.join(out, hub.CONFIG), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return config


def smoke_test(model_dir):
    """Load the packaged model the way users will, and predict one second of noise."""
    import torch

    slu = hub.SLUModel.from_pretrained(model_dir)
    slu.predict(torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1)


def commit(tmp, final, overwrite):
    """Rename the finished ``tmp`` to ``final`` (an old ``final`` only after it is built)."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-", dir=os.path.dirname(final))
        os.replace(final, os.path.join(old, "dir"))
    os.replace(tmp, final)
    if old:
        shutil.rmtree(old)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sizes(model_dir):
    """[(relative path, bytes)] of every file, largest first."""
    rows = []
    for root, _, files in os.walk(model_dir):
        for name in files:
            path = os.path.join(root, name)
            rows.append((os.path.relpath(path, model_dir), os.path.getsize(path)))
    return sorted(rows, key=lambda r: -r[1])


def human(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def package(args):
    final = os.path.abspath(args.model_dir)
    if os.path.exists(final) and not args.overwrite:
        raise FileExistsError(f"{final}: exists; pass --overwrite to replace it")
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=os.path.dirname(final))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the model dir is not
    try:
        write_model_dir(args, tmp)
        smoke_test(tmp)
        commit(tmp, final, args.overwrite)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return final


def main(argv=None):
    args = parse_args(argv)
    try:
        final = package(args)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"slu-kd-package: error: {e}", file=sys.stderr)
        sys.exit(1)
    rows = sizes(final)
    for rel, n in rows:
        print(f"{human(n):>10}  {rel}")
    print(f"{human(sum(n for _, n in rows)):>10}  total: {final}")


if __name__ == "__main__":
    main()
