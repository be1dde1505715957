"""The DA schedule (--augment-start-epoch, --augment-ramp-epochs): no unit or hidden
masking before the start epoch, then rates growing linearly to the full ones; counted on
the real batches of the slu_finetuning task and the real slu_ds2 model; the default is
today's DA (full rates from epoch 1); a resumed fairseq-train run continues the schedule
from the epoch its checkpoint holds."""
import math

import pytest
import torch

from conftest import TRAIN_COMMON, log_records, run, tool
from test_bad_input import TINY_BERT, fairseq_checkpoint

from slu_kd_plugin.data.augment import AugmentSchedule
from slu_kd_plugin.recipe.settings import TESTS

DS2 = TESTS.ds2.flags()  # the tiny pipeline's DS2 sizes

DA = ["--augment-units", "--augment-hidden"]


def test_schedule_scales():
    assert [AugmentSchedule().scale(e) for e in (1, 2, 10)] == [1.0, 1.0, 1.0]  # no schedule
    assert [AugmentSchedule(3).scale(e) for e in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    assert [AugmentSchedule(2, 4).scale(e) for e in range(1, 8)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [AugmentSchedule(1, 2).scale(e) for e in (1, 2, 3)] == [0.5, 1.0, 1.0]
    for bad in ((0, 0), (1, -1)):
        with pytest.raises(ValueError, match="augment schedule"):
            AugmentSchedule(*bad)


@pytest.fixture(scope="module")
def bert(pipeline, tmp_path_factory):
    """An untrained speech BERT over the pipeline's units (masking needs no good weights),
    long enough for whole utterances (the span counts round up on short ones)."""
    return fairseq_checkpoint(tmp_path_factory.mktemp("da_bert") / "bert.pt", pipeline.data / "units", "--task",
                              "masked_lm", "--criterion", "masked_lm", *TINY_BERT, "--tokens-per-sample", "1024")


def slu_setup(pipeline, bert, *args):
    """(task, model) of slu_finetuning as fairseq-train builds them, its train split loaded."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    argv = [str(a) for a in (pipeline.data, "--cpu", "--task", "slu_finetuning", "--arch", "slu_ds2", *DS2,
                             "--criterion", "slu_cross_entropy", "--speech-bert-path", bert,
                             "--train-subset", "train", "--seed", "1", *DA, *args)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    task.load_dataset("train")
    return task, model


def masked_shares(task, model, epochs):
    """Per epoch, as fairseq-train runs it (dataset set_epoch, task.begin_epoch, training
    mode): (share of real units that are <mask>, share of speech-BERT state entries on
    real frames but <s> that reach the DS2 block zeroed)."""
    dataset = task.dataset("train")
    epoch_itr = task.get_batch_iterator(dataset, max_sentences=8, seed=1, epoch=1, required_batch_size_multiple=1)
    seen = []
    model.ds2.register_forward_pre_hook(lambda mod, inputs: seen.append(inputs))
    mask, pad = task.unit_dict.index("<mask>"), task.unit_dict.pad()
    shares = []
    for _ in range(epochs):
        batches = epoch_itr.next_epoch_itr(shuffle=True)
        task.begin_epoch(epoch_itr.epoch, model)
        model.train()
        units = [0, 0]
        states = [0, 0]
        for batch in batches:
            tokens = batch["net_input"]["src_tokens"]
            units[0] += int(tokens.eq(mask).sum())
            units[1] += int(tokens.ne(pad).sum())
            seen.clear()
            with torch.no_grad():
                model(**batch["net_input"])
            x, padding = seen[0]
            real = ~padding
            real[:, 0] = False  # <s> (right-padded batches: every sequence starts at 0)
            states[0] += int(x.eq(0)[real].sum())
            states[1] += int(real.sum()) * x.size(-1)
        shares.append((units[0] / units[1], states[0] / states[1]))
    return shares


def unit_share(task, rate, span=5):
    """The share of units span_mask_units masks at ``rate``: ceil(M * rate / span) spans
    of ``span`` units per utterance, M its units but <s> and </s>."""
    sizes = task.dataset("train").sizes[0]
    masked = sum(span * min(math.ceil((n - 2) * rate / span - 1e-9), (n - 2) // span) for n in sizes)
    return masked / sum(sizes)


def test_masking_off_before_the_start_epoch_then_ramped(pipeline, bert):
    task, model = slu_setup(pipeline, bert, "--augment-start-epoch", "2", "--augment-ramp-epochs", "2")
    (u1, h1), (u2, h2), (u3, h3) = masked_shares(task, model, 3)
    assert u1 == 0 and h1 == 0  # epoch 1: no masking at all
    # epoch 2: half of each rate; epoch 3: the full rates. Units: exactly the spans the
    # rate asks for; states: time masks 50% of frames + channel masks 40% of the rest =
    # 70% of the entries, half rates 25% + 20% * 75% = 40% (span counts rounded at random)
    assert (u2, u3) == (unit_share(task, 0.1), unit_share(task, 0.2))
    assert 0.3 < h2 < 0.5 and 0.6 < h3 < 0.8, (h2, h3)


def test_no_schedule_masks_from_the_first_epoch_and_is_seeded(pipeline, bert):
    task, model = slu_setup(pipeline, bert)
    (u1, h1), = masked_shares(task, model, 1)
    assert u1 == unit_share(task, 0.2) and 0.6 < h1 < 0.8, (u1, h1)
    torch.manual_seed(5)  # hidden masks come from torch's RNG (fairseq seeds it with --seed)
    first = masked_shares(*slu_setup(pipeline, bert, "--augment-start-epoch", "2"), 2)
    torch.manual_seed(5)
    again = masked_shares(*slu_setup(pipeline, bert, "--augment-start-epoch", "2"), 2)
    assert first == again and first[0] == (0.0, 0.0) and first[1][0] > 0.15, first


def da_run(pipeline, bert, save_dir, max_epoch):
    save_dir.mkdir(exist_ok=True)
    log = save_dir / f"train{max_epoch}.log"
    run([tool("fairseq-train"), pipeline.data, *TRAIN_COMMON, "--save-dir", save_dir, "--task", "slu_finetuning",
         "--arch", "slu_ds2", *DS2, "--criterion", "slu_cross_entropy", "--speech-bert-path", bert,
         "--train-subset", "train", "--max-positions", "1024", "--lr", "1e-3", *DA,
         "--augment-start-epoch", "3", "--augment-ramp-epochs", "2", "--max-epoch", max_epoch], log)
    return {int(r["epoch"]): float(r["train_unit_mask"]) for r in log_records(log, "train")}, log


@pytest.mark.slow
def test_a_resumed_run_continues_the_schedule(pipeline, bert, tmp_path):
    whole, _ = da_run(pipeline, bert, tmp_path / "whole", 4)
    first, _ = da_run(pipeline, bert, tmp_path / "resumed", 2)
    rest, log = da_run(pipeline, bert, tmp_path / "resumed", 4)  # resumes from checkpoint_last.pt
    assert first == {1: 0.0, 2: 0.0} and set(rest) == {3, 4}, (first, rest)
    task, _ = slu_setup(pipeline, bert)
    # half the rate, then all of it (unit_mask: the % of units the batches had masked)
    assert rest == {3: round(100 * unit_share(task, 0.1), 2), 4: round(100 * unit_share(task, 0.2), 2)}, rest
    assert {**first, **rest} == whole  # the same masks as the uninterrupted run
    assert "epoch 3: DA masking at 0.50 of its rates" in log.read_text()
