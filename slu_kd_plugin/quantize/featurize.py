"""Featurize a manifest split into unit sequences (``{split}.units``) and write
the shared unit dictionary (``dict.units.txt``).

* Line-aligned with ``{split}.tsv``; one line of space-separated tokens per utterance.
* Sharding: ``rank``/``nshard`` take a contiguous block of the manifest and write
  ``{split}.{rank}_{nshard}.units``; :func:`merge_shards` concatenates them in order
  after checking each is complete.
* Resumable: output goes to ``<final>.partial`` (line-flushed) with a small
  ``<final>.partial.json`` recording which quantizer/manifest/shard it belongs to;
  a rerun keeps its complete lines and continues after them.  The final name
  appears only when every line is there (``os.replace``).
* Deterministic for a given quantizer: utterances are encoded one by one, in order.
"""
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass

from tqdm import tqdm

from ..utils import atomic_write
from . import QuantizerError

logger = logging.getLogger(__name__)

DICT_NAME = "dict.units.txt"


class FeaturizeError(ValueError):
    """A featurization failure; the message names the file (and manifest line)."""


@dataclass
class ManifestEntry:
    path: str  # absolute (root joined)
    n_samples: int
    where: str  # "manifest.tsv:LINE", for error messages


@dataclass
class FeaturizeStats:
    path: str
    n_utts: int  # utterances in the output
    n_resumed: int  # of which taken over from a .partial
    audio_s: float  # seconds of audio encoded in this run
    wall_s: float

    @property
    def speed(self):
        """Seconds of audio per wall-clock second (0 when nothing was encoded)."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


def read_manifest(tsv):
    """Entries of a fairseq audio manifest (root line, then ``relpath<TAB>n_samples``)."""
    if not os.path.isfile(tsv):
        raise FeaturizeError(f"{tsv}: manifest not found")
    with open(tsv, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise FeaturizeError(f"{tsv}: empty manifest (no root line)")
    root, entries = lines[0].strip(), []
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise FeaturizeError(f"{tsv}:{lineno}: expected 'relpath<TAB>n_samples', got {line!r}")
        entries.append(ManifestEntry(os.path.join(root, parts[0]), int(parts[1]), f"{tsv}:{lineno}"))
    return entries


def shard_bounds(n, rank, nshard):
    """Contiguous [start, end) block of ``n`` items for shard ``rank`` of ``nshard``."""
    if nshard < 1 or not 0 <= rank < nshard:
        raise FeaturizeError(f"invalid shard {rank} of {nshard}")
    return n * rank // nshard, n * (rank + 1) // nshard


def units_path(out_dir, split, rank=0, nshard=1):
    name = f"{split}.units" if nshard == 1 else f"{split}.{rank}_{nshard}.units"
    return os.path.join(out_dir, name)


def write_dictionary(quantizer, out_dir):
    """fairseq dictionary of every symbol the quantizer can emit (count 1 each)."""
    path = os.path.join(out_dir, DICT_NAME)
    text = "".join(f"{s} 1\n" for s in quantizer.symbols())
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return path
        logger.warning("%s: replacing a dictionary of a different quantizer; units of other "
                       "splits in this directory no longer match it", path)
    with atomic_write(path, encoding="utf-8") as f:
        f.write(text)
    return path


def file_sha256(path, block=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def run_fingerprint(quantizer, tsv, rank, nshard):
    """What a .partial file depends on; resuming with anything else would mix units."""
    q_hash = file_sha256(quantizer.path) if quantizer.path else repr(quantizer)
    return {"quantizer": q_hash, "kind": quantizer.kind, "merge_repeats": quantizer.merge_repeats,
            "manifest": file_sha256(tsv), "rank": rank, "nshard": nshard}


def count_complete_lines(path, cut_torn=False):
    """Number of newline-terminated lines; with ``cut_torn`` a torn last line (a crash
    mid-write of a .partial) is truncated away so appending continues cleanly."""
    with open(path, "rb+" if cut_torn else "rb") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if cut_torn and keep != len(data):
            f.truncate(keep)
    return data[:keep].count(b"\n")


def resume_point(partial, fingerprint):
    """Lines of ``partial`` to keep (0 when starting fresh); refuses a foreign partial."""
    meta = partial + ".json"
    if os.path.isfile(partial) and os.path.isfile(meta):
        with open(meta, encoding="utf-8") as f:
            old = json.load(f)
        if old != fingerprint:
            diff = sorted(k for k in fingerprint if old.get(k) != fingerprint[k])
            raise FeaturizeError(f"{partial}: left by a run with a different {', '.join(diff)}; "
                                 f"delete it (and {meta}) to start over")
        return count_complete_lines(partial, cut_torn=True)
    with atomic_write(meta, encoding="utf-8") as f:
        json.dump(fingerprint, f, indent=1)
    open(partial, "w").close()  # a partial without its meta cannot be trusted: restart
    return 0


def encode_entry(quantizer, entry):
    """(output line, seconds of audio); audio and quantizer errors get the manifest
    line prefixed."""
    from ..audio import AudioError, read_audio

    try:
        wav = read_audio(entry.path)
        return " ".join(quantizer.encode(wav, name=entry.path)), wav.numel() / 16000.0
    except (AudioError, QuantizerError) as e:
        raise FeaturizeError(f"{entry.where}: {e}") from e


def _encode_into(f, quantizer, todo, bar):
    audio_s, t0 = 0.0, time.perf_counter()
    for i, entry in enumerate(todo):
        line, seconds = encode_entry(quantizer, entry)
        f.write(line + "\n")
        f.flush()  # every finished line survives an interruption
        audio_s += seconds
        bar.update(1)
        if i % 20 == 0:  # speed as audio seconds per wall second
            bar.set_postfix(realtime=f"{audio_s / (time.perf_counter() - t0):.1f}x")
    return audio_s


def featurize_split(quantizer, manifest_dir, split, out_dir=None, rank=0, nshard=1,
                    progress=True, skip_existing=False):
    """Encode (one shard of) ``{split}.tsv``; returns :class:`FeaturizeStats`."""
    out_dir = out_dir or manifest_dir
    os.makedirs(out_dir, exist_ok=True)
    tsv = os.path.join(manifest_dir, f"{split}.tsv")
    entries = read_manifest(tsv)
    start, end = shard_bounds(len(entries), rank, nshard)
    entries, final = entries[start:end], units_path(out_dir, split, rank, nshard)
    if rank == 0:  # one writer per directory: shards run concurrently
        write_dictionary(quantizer, out_dir)
    if skip_existing and os.path.isfile(final) and count_complete_lines(final) == len(entries):
        logger.info("%s: complete, skipped", final)
        return FeaturizeStats(final, len(entries), len(entries), 0.0, 0.0)
    partial = final + ".partial"
    done = resume_point(partial, run_fingerprint(quantizer, tsv, rank, nshard))
    if done > len(entries):
        raise FeaturizeError(f"{partial}: {done} lines but the shard has only {len(entries)}")
    t0 = time.perf_counter()
    with open(partial, "a", encoding="utf-8") as f, tqdm(
        total=len(entries), initial=done, unit="utt", desc=os.path.basename(final),
        disable=not progress, mininterval=1.0,
    ) as bar:
        audio_s = _encode_into(f, quantizer, entries[done:], bar)
        os.fsync(f.fileno())
    stats = FeaturizeStats(final, len(entries), done, audio_s, time.perf_counter() - t0)
    os.replace(partial, final)
    os.remove(partial + ".json")
    logger.info("%s: %d utterances (%d resumed), %.0f s of audio at %.1fx real time",
                final, len(entries), done, audio_s, stats.speed)
    return stats


def merge_shards(manifest_dir, split, nshard, out_dir=None, quantizer=None):
    """Concatenate ``{split}.{r}_{nshard}.units`` in rank order into ``{split}.units``."""
    out_dir = out_dir or manifest_dir
    n = len(read_manifest(os.path.join(manifest_dir, f"{split}.tsv")))
    shards = []
    for rank in range(nshard):
        path = units_path(out_dir, split, rank, nshard)
        start, end = shard_bounds(n, rank, nshard)
        if not os.path.isfile(path):
            state = "only partially done" if os.path.isfile(path + ".partial") else "missing"
            raise FeaturizeError(f"{path}: shard {rank} of {nshard} is {state}")
        if count_complete_lines(path) != end - start:
            raise FeaturizeError(f"{path}: {count_complete_lines(path)} lines, shard {rank} "
                                 f"of {nshard} should have {end - start}")
        shards.append(path)
    final = units_path(out_dir, split)
    with atomic_write(final, encoding="utf-8") as out:
        for path in shards:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    out.write(line)
    if quantizer is not None:
        write_dictionary(quantizer, out_dir)
    logger.info("%s: merged %d shards, %d utterances", final, nshard, n)
    return final


def subset_units(manifest_dir, split, source, out_dir=None):
    """``{split}.units`` copied from ``{source}.units`` for a split whose every utterance is
    one of source's (the recipes' 10% subset of train): no utterance is decoded twice, and
    it gets exactly the tokens it has in the whole split."""
    out_dir = out_dir or manifest_dir
    whole = read_manifest(os.path.join(manifest_dir, f"{source}.tsv"))
    src = units_path(out_dir, source)
    if not os.path.isfile(src) or count_complete_lines(src) != len(whole):
        raise FeaturizeError(f"{src}: missing or incomplete: featurize {source} first")
    with open(src, encoding="utf-8") as f:
        units = {e.path: line for e, line in zip(whole, f)}
    entries = read_manifest(os.path.join(manifest_dir, f"{split}.tsv"))
    for e in entries:
        if e.path not in units:
            raise FeaturizeError(f"{e.where}: {e.path} is not in {source}.tsv: featurize {split} itself")
    final = units_path(out_dir, split)
    with atomic_write(final, encoding="utf-8") as out:
        out.writelines(units[e.path] for e in entries)
    logger.info("%s: %d utterances taken from %s", final, len(entries), src)
    return final
