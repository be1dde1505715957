"""The settings table (slu_kd_plugin/recipe/settings.py) is what everything runs: the
committed hydra yaml is its rendering, and the shell functions the recipes eval give
the same fairseq-train arguments as the Python stage functions.  (That a recipe's
logged fairseq config equals the table's: tests/test_recipes.py.)"""
import inspect
import shlex
import subprocess

import pytest

from conftest import BIN, ENV, REPO
from slu_kd_plugin.recipe import hydra, settings, shell

STAGES_SH = REPO / "examples" / "common" / "stages.sh"
# run-time values to call each stage with, by parameter name
VALUES = {"subset": "train10", "text_model": "/ck/text model.pt", "speech_bert": "/ck/bert.pt",
          "text_arch": "--encoder-layers 3 --max-positions 64", "ds2_arch": "--ds2-conv-channels 2",
          "num_classes": "7", "epochs": "9", "every": "3", "batch": "5", "text_vector": "mean", "max_positions": "256",
          "method": ["--criterion", "slu_kd", "--teacher-path", "/ck/t t.pt"]}


@pytest.mark.parametrize("stage", list(hydra.HEADERS))
def test_committed_yaml_is_the_rendering(stage):
    committed = (REPO / "slu_kd_plugin" / "config" / f"{stage}.yaml").read_text()
    assert committed == hydra.render(settings.PROFILES["paper"], stage), \
        "run: python -m slu_kd_plugin.cli.profile paper --write-yaml"


def shell_args(name, recipe, calls):
    """ARGS of each ``args_STAGE VALUE...`` call after stages.sh's recipe_profile."""
    script = f'ROOT="{REPO}"; source "{STAGES_SH}"; recipe_profile {name} {recipe}\n'
    for fn, values in calls:
        script += f'{shlex.join([fn, *values])}; printf "%s\\0" "${{ARGS[@]}}"; printf "\\1"\n'
    env = dict(ENV, PATH=f"{BIN}:{ENV['PATH']}")  # as the recipes set it: the venv's python
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=str(REPO))
    assert res.returncode == 0, res.stderr
    return [out.split("\0")[:-1] for out in res.stdout.split("\1")[:-1]]


@pytest.mark.parametrize("name,recipe", [("debug", "corpus"), ("demo", "synthetic")])
def test_shell_functions_give_the_table_arguments(name, recipe):
    p = settings.profile(name, recipe)
    calls, expected = [], []
    for fn_name, fn in shell.STAGES.items():
        if fn is settings.hf_teacher and p.hf_teacher is None:
            continue
        params = list(inspect.signature(fn).parameters)[1:]
        values = {k: VALUES[k] for k in params}
        flat = [x for k in params for x in (values[k] if k == "method" else [values[k]])]
        calls.append((fn_name, flat))
        expected.append(fn(p, **values))
    assert shell_args(name, recipe, calls) == expected


@pytest.mark.parametrize("name,recipe,augment", [("debug", "corpus", ""), ("demo", "synthetic", ""),
                                                 ("demo", "corpus", "units,hidden")])
def test_table2_rows_in_shell_are_the_tables(name, recipe, augment):
    """args_method ROW (the grid's rows and the recipes' one full run) gives the table's
    flags, each row keeping every step of the one before; --augment sets the + DA row's DA."""
    script = f'ROOT="{REPO}"; source "{STAGES_SH}"; recipe_profile {name} {recipe} {augment}\n'
    for row in settings.ROWS:
        script += f'args_method {row} "/ck/t t.pt" /ck/am.pt /d/pairs; printf "%s\\0" "$ROW_BERT" "${{ARGS[@]}}"; printf "\\1"\n'
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=str(REPO),
                         env=dict(ENV, PATH=f"{BIN}:{ENV['PATH']}"))
    assert res.returncode == 0, res.stderr
    got = [out.split("\0")[:-1] for out in res.stdout.split("\1")[:-1]]
    p = settings.profile(name, recipe)
    if augment:
        p = settings.replace(p, augment=augment)
    assert got == [[settings.row_speech_bert(row), *settings.method(p, row, "/ck/t t.pt", "/ck/am.pt", "/d/pairs")]
                   for row in settings.ROWS]
    flags = [set(g[1:]) - {"slu_cross_entropy"} for g in got]
    assert all(a <= b for a, b in zip(flags, flags[1:])) and got[0][0] == "SPEECH_BERT"
    assert got[-1][1:] == settings.full_method(p, "/ck/t t.pt", "/ck/am.pt", "/d/pairs", p.augment)
    assert ("--augment-hidden" in got[-1]) == ("hidden" in p.augment)


def test_bad_augment_is_a_usage_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train_data.csv").write_text("")
    res = subprocess.run(["bash", str(REPO / "examples" / "fsc" / "run.sh"), str(tmp_path), str(tmp_path / "w"),
                          "--augment", "units,chorus"], capture_output=True, text=True, env=ENV)
    assert res.returncode == 2, res.stderr
    assert "--augment takes units,hidden | units | hidden | none, not 'units,chorus'" in res.stderr
    assert "usage: examples/fsc/run.sh" in res.stderr and not (tmp_path / "w").exists()


def test_unknown_profile_is_a_usage_error():
    res = subprocess.run(["bash", str(REPO / "examples" / "librispeech" / "run.sh"), str(REPO), "/tmp/unused-work",
                          "--profile", "huge"], capture_output=True, text=True, env=ENV)
    assert res.returncode == 2 and "unknown profile 'huge' (debug|demo|paper)" in res.stderr
    assert "usage: examples/librispeech/run.sh" in res.stderr


def test_the_demo_overlay_is_what_differs():
    """The offline demo differs from the recipes' demo profile only where SYNTHETIC says."""
    demo, syn = settings.PROFILES["demo"], settings.SYNTHETIC["demo"]
    differ = {f for f in demo.__dataclass_fields__ if getattr(demo, f) != getattr(syn, f)}
    assert differ == {"teacher", "ft", "batch_multiple", "skip_invalid", "teacher_10pct_scale",
                      "ft_every_10pct", "ft_epochs_10pct", "ft_patience", "hf_teacher", "corpus", "parallel",
                      "pt_kd_text", "unit_mask_rate", "kd_temperature", "ft_batch_10pct", "kd_unlabeled"}
    assert (syn.teacher.lr, syn.ft.epochs, demo.teacher.lr, demo.ft.epochs) == ("5e-4", 4, "1e-4", 30)
    # the demo's +DA row masks units at its measured rate; the rows before it do not mask
    da = settings.method(syn, "da", "t.pt", "am.pt", "p")
    assert da[-3:] == ["--augment-units", "--unit-mask-rate", "0.1"]
    assert "--unit-mask-rate" not in settings.method(syn, "am_pt", "t.pt", "am.pt", "p")
    assert "--unit-mask-rate" not in settings.method(demo, "da", "t.pt", "am.pt", "p")
    # the demo's FT-KD rows distil over the PT-KD pairs too; the recipes' keep to the SLU split
    assert settings.method(syn, "ft_kd", "t.pt", "am.pt", "p")[-2:] == ["--kd-unlabeled-data", "p"]
    assert "--kd-unlabeled-data" not in settings.method(syn, "pt_kd", "t.pt", "am.pt", "p")
    assert "--kd-unlabeled-data" not in settings.method(demo, "da", "t.pt", "am.pt", "p")
    # the demo's FT-KD softens by its measured temperature; its 10% runs take batches of 16
    assert settings.method(syn, "ft_kd", "t.pt", "am.pt", "p")[:6] == \
        ["--criterion", "slu_kd", "--kd-distance", "kl", "--kd-temperature", "4"]
    assert (shell.scalars(syn)["FT_BATCH_10PCT"], shell.scalars(syn)["FT_BATCH_FULL"]) == (16, 32)
    assert shell.scalars(demo)["FT_BATCH_10PCT"] == 32
    # the recipes stop flat fine-tuning runs early; the demo's 4 epochs all run
    assert (demo.ft_patience, syn.ft_patience) == (5, None)


def test_recipe_helpers_do_not_load_fairseq_and_training_still_knows_the_plugin():
    """The recipes read the table and metric files in a process each: importing the plugin
    for that must not load fairseq (~5 s of CPU a call); slu-kd-train, which imports the
    plugin before fairseq (so --user-dir finds it imported), still has every task."""
    import sys
    code = "import sys, slu_kd_plugin.recipe.shell, slu_kd_plugin.cli.recipe; sys.exit('fairseq' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=ENV).returncode == 0
    res = subprocess.run([sys.executable, "-m", "slu_kd_plugin.cli.train", "/nonexistent", "--user-dir", "slu_kd_plugin",
                          "--task", "slu_finetuning", "--arch", "slu_ds2", "--criterion", "slu_kd", "--cpu",
                          "--batch-size", "2"], capture_output=True, text=True, env=ENV, cwd=str(REPO))
    # the task and criterion were found (the task's own error on the missing data dir)
    assert "/nonexistent/label/dict.txt: label dictionary not found" in res.stderr, res.stderr[-2000:]
