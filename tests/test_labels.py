"""The intent label dictionary shared by teacher and student."""
import pytest
from fairseq.data import Dictionary

from slu_kd_plugin.data.labels import (
    check_same_labels,
    label_symbols,
    load_label_dict,
    macro_f1,
    slot_names,
    slot_table,
)

FSC_LIKE = ["activate|lamp|none", "change_language|Korean|none", "decrease|heat|kitchen"]


def label_dict(labels, pad_to=1):
    d = Dictionary()
    for label in labels:
        d.add_symbol(label)
    d.pad_to_multiple_(pad_to)
    return d


def test_same_labels_pass():
    check_same_labels(label_dict(FSC_LIKE), label_dict(FSC_LIKE, pad_to=8), "teacher.pt")


def test_reordered_labels_are_refused_with_the_first_mismatch():
    with pytest.raises(ValueError, match="ordered differently") as err:
        check_same_labels(label_dict(FSC_LIKE), label_dict(FSC_LIKE[::-1]), "teacher.pt")
    assert "teacher.pt" in str(err.value) and "class 0" in str(err.value)


def test_different_label_sets_are_refused():
    other = FSC_LIKE[:2] + ["bring|shoes|none"]
    with pytest.raises(ValueError, match="differ") as err:
        check_same_labels(label_dict(FSC_LIKE), label_dict(other), "teacher.pt")
    assert "decrease|heat|kitchen" in str(err.value) and "bring|shoes|none" in str(err.value)


def test_label_symbols_skip_specials_and_fairseq_padding():
    d = label_dict(FSC_LIKE, pad_to=8)
    assert any(s.startswith("madeupword") for s in d.symbols)
    assert label_symbols(d) == FSC_LIKE


def test_slot_table_gives_value_ids_per_slot():
    d = label_dict(["a|x|k", "b|x|l", "a|y|k"], pad_to=8)
    assert slot_table(d) == [[0, 0, 0], [1, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize("labels", [["on", "off"], ["a|x", "b|x|k"]])
def test_slot_table_is_none_without_consistent_slots(labels):
    assert slot_table(label_dict(labels)) is None


def test_slot_table_with_another_separator():
    assert slot_table(label_dict(["a/x", "b/x"]), separator="/") == [[0, 0], [1, 0]]


@pytest.mark.parametrize("configured, labels, names", [
    ("action,object,location", FSC_LIKE, ["action", "object", "location"]),
    ("action,object", FSC_LIKE, ["slot0", "slot1", "slot2"]),  # names that do not fit
    ("action,object,location", ["on", "off"], []),  # plain intents
    ("action,object", ["a|x", "b|x|k"], []),  # not all the same slots
])
def test_one_slot_name_rule(configured, labels, names):
    assert slot_names(labels, configured) == names


def test_macro_f1_counts_only_classes_that_occur():
    assert macro_f1([0, 0, 1], [0, 1, 1], n_classes=5) == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)


def test_missing_label_dict_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope/dict.txt"):
        load_label_dict(str(tmp_path / "nope" / "dict.txt"))


def test_label_dict_written_by_binarize_round_trips(tmp_path):
    """The real slu-kd-binarize on a tiny manifest: its label dict.txt holds the training
    intents (sorted), and every binarized label reads back as the line it came from."""
    import subprocess

    from conftest import ENV, tool

    from slu_kd_plugin.data.binarized import load_intents

    manifest, data = tmp_path / "manifest", tmp_path / "data-bin"
    manifest.mkdir()
    splits = {"train": FSC_LIKE[::-1] + FSC_LIKE[:1], "valid": [FSC_LIKE[1], FSC_LIKE[0]]}
    for split, labels in splits.items():
        (manifest / f"{split}.label").write_text("".join(f"{label}\n" for label in labels))
    subprocess.run([tool("slu-kd-binarize"), manifest, data, "--splits", *splits, "--streams", "label"],
                   check=True, capture_output=True, env=ENV, timeout=300)
    labels = load_label_dict(str(data / "label" / "dict.txt"))
    names = label_symbols(labels)
    assert names == sorted(FSC_LIKE)
    for split, written in splits.items():
        intents = load_intents(str(data), split, labels)
        assert [names[int(intents[i])] for i in range(len(intents))] == written
