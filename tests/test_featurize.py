"""Featurization of manifest splits: outputs, determinism, sharding + merge,
resume after interruption, errors naming file and manifest line, the CLIs."""
import json
import os
import shutil

import numpy as np
import pytest

import slu_kd_plugin

slu_kd_plugin.register()  # fairseq knows the plugin
from slu_kd_plugin.quantize import load_quantizer
from slu_kd_plugin.quantize import featurize as F
from slu_kd_plugin.quantize.featurize import (
    FeaturizeError,
    featurize_split,
    merge_shards,
    read_manifest,
)
from test_quantize import fit_tiny_quantizer, make_corpus, make_legacy_vq_wav2vec


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(scope="module")
def quantizer(corpus, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("q") / "kmeans.pt")
    fit_tiny_quantizer(corpus, path)
    return load_quantizer(path)


@pytest.fixture(scope="module")
def reference(corpus, quantizer, tmp_path_factory):
    """Unsharded, uninterrupted output: what every other way of running must equal."""
    out = str(tmp_path_factory.mktemp("ref"))
    featurize_split(quantizer, corpus, "train", out, progress=False)
    return out


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_units_line_aligned_with_dictionary(corpus, quantizer, reference):
    lines = read(os.path.join(reference, "train.units")).splitlines()
    assert len(lines) == len(read_manifest(os.path.join(corpus, "train.tsv")))
    dict_lines = read(os.path.join(reference, "dict.units.txt")).splitlines()
    assert dict_lines == [f"{i} 1" for i in range(12)]
    symbols = {d.split()[0] for d in dict_lines}
    assert all(line and set(line.split()) <= symbols for line in lines)
    assert not [p for p in os.listdir(reference) if ".partial" in p or p.endswith(".tmp")]


def test_deterministic(corpus, quantizer, reference, tmp_path):
    featurize_split(quantizer, corpus, "train", str(tmp_path), progress=False)
    assert read(tmp_path / "train.units") == read(os.path.join(reference, "train.units"))


def test_shards_merge_to_unsharded(corpus, quantizer, reference, tmp_path):
    out = str(tmp_path)
    for rank in (2, 0):  # order of shard jobs does not matter; shard 1 not run yet
        featurize_split(quantizer, corpus, "train", out, rank=rank, nshard=3, progress=False)
    with pytest.raises(FeaturizeError, match=r"train\.1_3\.units: shard 1 of 3 is missing"):
        merge_shards(corpus, "train", 3, out)
    featurize_split(quantizer, corpus, "train", out, rank=1, nshard=3, progress=False)
    with open(os.path.join(out, "train.1_3.units"), "a") as f:
        f.write("0 1\n")  # a shard with a line too many must not be merged
    with pytest.raises(FeaturizeError, match=r"train\.1_3\.units: 3 lines, shard 1 of 3 should have 2"):
        merge_shards(corpus, "train", 3, out)
    featurize_split(quantizer, corpus, "train", out, rank=1, nshard=3, progress=False)
    merge_shards(corpus, "train", 3, out, quantizer=quantizer)
    assert read(os.path.join(out, "train.units")) == read(os.path.join(reference, "train.units"))
    assert read(os.path.join(out, "dict.units.txt")) == read(os.path.join(reference, "dict.units.txt"))


def test_resume_after_interruption(corpus, quantizer, reference, tmp_path, monkeypatch):
    calls, real = [], F.encode_entry

    def dies_after_three(q, entry):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(entry.path)
        return real(q, entry)

    monkeypatch.setattr(F, "encode_entry", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        featurize_split(quantizer, corpus, "train", str(tmp_path), progress=False)
    partial = tmp_path / "train.units.partial"
    assert not (tmp_path / "train.units").exists() and len(read(partial).splitlines()) == 3
    with open(partial, "a") as f:
        f.write("5 5 7")  # torn line: the process died mid-write
    monkeypatch.setattr(F, "encode_entry", real)
    stats = featurize_split(quantizer, corpus, "train", str(tmp_path), progress=False)
    assert stats.n_resumed == 3 and stats.n_utts == 7
    assert read(tmp_path / "train.units") == read(os.path.join(reference, "train.units"))
    assert not partial.exists() and not (tmp_path / "train.units.partial.json").exists()


def test_partial_of_other_quantizer_is_refused(corpus, quantizer, tmp_path):
    partial = tmp_path / "train.units.partial"
    partial.write_text("1 2\n")
    fp = F.run_fingerprint(quantizer, os.path.join(corpus, "train.tsv"), 0, 1)
    (tmp_path / "train.units.partial.json").write_text(json.dumps({**fp, "quantizer": "0" * 64}))
    with pytest.raises(FeaturizeError, match=r"train\.units\.partial: left by a run with a different quantizer"):
        featurize_split(quantizer, corpus, "train", str(tmp_path), progress=False)


def test_errors_name_file_and_manifest_line(quantizer, tmp_path):
    root = str(tmp_path / "c")
    short = ("short", np.zeros(300, dtype=np.float32))
    make_corpus(root, signals={"ok": np.ones(800, dtype=np.float32)}, extra=[short])
    with pytest.raises(FeaturizeError, match=r"train\.tsv:3: .*wavs/short\.wav: 300 samples"):
        featurize_split(quantizer, root, "train", progress=False)
    os.remove(os.path.join(root, "wavs", "ok.wav"))
    with pytest.raises(FeaturizeError, match=r"train\.tsv:2: .*wavs/ok\.wav: file not found"):
        featurize_split(quantizer, root, "train", str(tmp_path / "fresh"), progress=False)
    with open(os.path.join(root, "valid.tsv"), "w") as f:
        f.write("/root\nno_tab_here.wav\n")
    with pytest.raises(FeaturizeError, match=r"valid\.tsv:2: expected 'relpath<TAB>n_samples'"):
        featurize_split(quantizer, root, "valid", progress=False)


def test_vq_wav2vec_featurization(corpus, tmp_path):
    ckpt = str(tmp_path / "vq-wav2vec_kmeans.pt")
    make_legacy_vq_wav2vec(ckpt)
    q = load_quantizer(ckpt)
    featurize_split(q, corpus, "train", str(tmp_path), progress=False)
    lines = read(tmp_path / "train.units").splitlines()
    entries = read_manifest(os.path.join(corpus, "train.tsv"))
    assert [len(ln.split()) for ln in lines] == [1 + (e.n_samples - 465) // 160 for e in entries]
    assert read(tmp_path / "dict.units.txt").splitlines()[:2] == ["0-0 1", "0-1 1"]
    assert len(read(tmp_path / "dict.units.txt").splitlines()) == 64


@pytest.fixture
def keep_torch_threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # the CLIs set it process-wide


def test_clis(corpus, reference, tmp_path, keep_torch_threads):
    from slu_kd_plugin.cli import featurize, fit_quantizer

    qpath = str(tmp_path / "kmeans.pt")
    fit_quantizer.main([corpus, "--split", "train", "--n-clusters", "12", "--max-frames", "2000",
                        "--n-iter", "30", "--seed", "1", "--out", qpath, "--no-progress"])
    for split in ("train", "valid"):  # manifests hold absolute roots: copies still work
        shutil.copy(os.path.join(corpus, "train.tsv"), tmp_path / f"{split}.tsv")
    out = str(tmp_path / "units")
    for rank in (0, 1):
        featurize.main([str(tmp_path), "--quantizer", qpath, "--split", "train,valid",
                        "--out", out, "--rank", str(rank), "--nshard", "2", "--no-progress"])
    os.rename(os.path.join(out, "train.1_2.units"), os.path.join(out, "train.1_2.units.partial"))
    with pytest.raises(SystemExit, match=r"train\.1_2\.units: shard 1 of 2 is only partially done"):
        featurize.main([str(tmp_path), "--quantizer", qpath, "--split", "train",
                        "--out", out, "--nshard", "2", "--merge"])
    os.rename(os.path.join(out, "train.1_2.units.partial"), os.path.join(out, "train.1_2.units"))
    featurize.main([str(tmp_path), "--quantizer", qpath, "--split", "train,valid",
                    "--out", out, "--nshard", "2", "--merge"])
    expected = read(os.path.join(reference, "train.units"))
    assert read(os.path.join(out, "train.units")) == expected  # same data + seed: same units
    assert read(os.path.join(out, "valid.units")) == expected


def test_a_subset_split_takes_its_units_from_the_whole(corpus, quantizer, reference, tmp_path):
    """--subset-of: a split whose utterances are some of another's (train10 of train) gets
    exactly the units featurizing it gives, decoding nothing; an utterance the whole split
    lacks is refused, naming its manifest line, with nothing written."""
    from slu_kd_plugin.cli import featurize

    lines = read(os.path.join(corpus, "train.tsv")).splitlines()
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "sub.tsv").write_text("\n".join([lines[0], lines[3], lines[1]]) + "\n")
    shutil.copy(os.path.join(reference, "train.units"), tmp_path / "train.units")
    featurize.main([str(tmp_path), "--split", "sub", "--subset-of", "train"])
    featurize_split(quantizer, str(tmp_path), "sub", str(tmp_path / "direct"), progress=False)
    assert read(tmp_path / "sub.units") == read(tmp_path / "direct" / "sub.units")

    (tmp_path / "other.tsv").write_text("\n".join([lines[0], lines[1], "wavs/elsewhere.wav\t16000"]) + "\n")
    with pytest.raises(SystemExit, match=r"other\.tsv:3: .*elsewhere\.wav is not in train\.tsv"):
        featurize.main([str(tmp_path), "--split", "other", "--subset-of", "train"])
    assert not (tmp_path / "other.units").exists()
