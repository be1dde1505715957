"""The settings table as shell code the recipes ``eval`` (``slu-kd-profile NAME --shell``).

Scalars for what the shell itself uses (unit sources, sizes recorded in assets.env,
the fine-tuning grid), and one function per stage, ``args_STAGE VALUE...``, that sets
the array ARGS to the stage's fairseq-train arguments: the stage function of
``settings`` rendered with its run-time values (paths, the training split, recorded
sizes) as the shell function's arguments, so the flags themselves are written once.
"""
import inspect
import shlex

from . import settings as S

STAGES = {  # shell function -> stage function
    "args_speech_bert": S.speech_bert, "args_text_model": S.text_model, "args_teacher": S.teacher,
    "args_hf_teacher": S.hf_teacher, "args_pt_kd": S.pt_kd, "args_am_pt": S.am_pt,
    "args_fine_tuning": S.fine_tuning,
}


def _marker(i):
    return f"\x00{i}\x00"


def _word(arg, refs):
    """One argument: literal (quoted) or a run-time value ("$N"; sizes unquoted, split)."""
    if arg in refs:
        return refs[arg]
    if "\x00" in arg:
        raise ValueError(f"a run-time value inside an argument: {arg!r}")
    return shlex.quote(arg)


def render_stage(name, fn, p):
    """``name() { ARGS=(...); }`` with the stage's run-time parameters as $1, $2, ...;
    ``*_arch`` parameters are word-split, ``method`` takes the remaining arguments."""
    params = list(inspect.signature(fn).parameters)[1:]
    values, refs = {}, {}
    for i, param in enumerate(params, 1):
        if param == "method":
            refs[_marker(i)] = f'"${{@:{i}}}"'
            values[param] = [_marker(i)]
        else:
            refs[_marker(i)] = f"${i}" if param.endswith("_arch") else f'"${i}"'
            values[param] = _marker(i)
    if fn is S.hf_teacher and p.hf_teacher is None:
        return ""
    words = " ".join(_word(a, refs) for a in fn(p, **values))
    return f"{name}() {{  # {' '.join(x.upper() for x in params)}\n  ARGS=({words})\n}}\n"


def scalars(p):
    t, ft = p.teacher, p.ft
    out = {
        "KMEANS_K": p.kmeans_k, "KMEANS_FRAMES": p.kmeans_frames, "PHONE_FRAME_MS": p.phone_frame_ms,
        "SPM_VOCAB": p.spm_vocab, "MAX_POS": p.bert.max_positions, "TEXT_VECTOR": p.text_vector or "cls",
        # recorded in assets.env: the teacher and the SLU model are built at these sizes
        "TEXT_ARCH": " ".join(p.text.flags()), "DS2_ARCH": " ".join(p.ds2.flags()),
        "AUGMENT": p.augment, "PARALLEL": p.parallel,
        "TEACHER_EPOCHS_FULL": t.epochs, "TEACHER_EPOCHS_10PCT": t.epochs * p.teacher_10pct_scale,
        "TEACHER_EVERY_10PCT": p.teacher_10pct_scale,
        "FT_EPOCHS_FULL": ft.epochs, "FT_EPOCHS_10PCT": p.ft_epochs_10pct, "FT_EVERY_10PCT": p.ft_every_10pct,
        "FT_BATCH_FULL": ft.batch, "FT_BATCH_10PCT": p.ft_batch_10pct or ft.batch,
    }
    if p.hf_teacher:
        out.update(HF_TEACHER_EPOCHS_FULL=p.hf_teacher.epochs, HF_TEACHER_EVERY_10PCT=p.teacher_10pct_scale,
                   HF_TEACHER_EPOCHS_10PCT=p.hf_teacher.epochs * p.teacher_10pct_scale)
    if p.corpus:
        c = p.corpus
        out.update(SYN_SPEAKERS=c.speakers, SYN_UTTS=c.utts_per_speaker, SYN_VALID=c.valid_speakers,
                   SYN_TEST=c.test_speakers, SYN_PAIRED=c.paired, SYN_UNITS=c.units,
                   SYN_MIN_PER_INTENT=c.min_per_intent_10pct)
    return out


def render_method(p):
    """``args_method ROW TEACHER AM PAIRS``: ARGS <- the row's fine-tuning flags (``S.method``)
    and ROW_BERT <- the assets.env key of the speech BERT it starts from."""
    teacher, am, pairs = _marker(2), _marker(3), _marker(4)
    refs = {teacher: '"$2"', am: '"$3"', pairs: '"$4"'}
    cases = "".join(f"    {row}) ROW_BERT={S.row_speech_bert(row)}; "
                    f"ARGS=({' '.join(_word(a, refs) for a in S.method(p, row, teacher, am, pairs))});;\n"
                    for row in S.ROWS)
    return (f"args_method() {{  # ROW TEACHER AM PAIRS\n  case $1 in\n{cases}"
            f"    *) echo \"args_method: no row '$1' ({'|'.join(S.ROWS)})\" >&2; return 1;;\n  esac\n}}\n")


def render(p):
    lines = [f"# slu-kd-profile {p.name}: slu_kd_plugin/recipe/settings.py"]
    lines += [f"{k}={shlex.quote(str(v))}" for k, v in scalars(p).items()]
    stages = "".join(render_stage(n, fn, p) for n, fn in STAGES.items())
    return "\n".join(lines) + "\n" + stages + render_method(p)
