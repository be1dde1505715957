"""Section "ratios": FT-KD epoch time with and without each of three design choices
(cached speech-BERT states, precomputed teacher logits, length-bucketed batches), and
the one-off cost each pays when the training split is loaded."""
import statistics

TARGETS = {"cache_speech_states": 3.0, "teacher_logits": 1.3}


def measure(bench):
    base, w = bench.ft_base(), bench.work
    no_cache = bench.train("ft_kd", "no_cache", bench.ft_args(cache=False), w.fsc)
    on_the_fly = bench.train("ft_kd", "teacher_on_the_fly", bench.ft_args(teacher_logits="on-the-fly"), w.fsc)
    max_tokens = max_tokens_for(bench, bench.args.ft_batch_size)
    bucketed = bench.train("ft_kd", "max_tokens", bench.ft_args(batching=["--max-tokens", str(max_tokens)]), w.fsc)
    horizon = bench.args.horizon_epochs
    rows = [ratio_row("cache_speech_states", "states cached once (--cache-speech-states)",
                      "BERT recomputed every step", base, no_cache, horizon),
            ratio_row("teacher_logits", "logits precomputed (--teacher-logits precompute)",
                      "teacher every batch (--teacher-logits on-the-fly)", base, on_the_fly, horizon),
            ratio_row("length_bucketing", f"--max-tokens {max_tokens} (length-bucketed)",
                      f"--batch-size {bench.args.ft_batch_size}", bucketed, base, horizon)]
    rows[2]["padding"] = padding(bench, max_tokens)
    return rows


def split_lengths(bench):
    """Tokens per training utterance as fairseq batches them: <s> + units (+ </s>),
    capped at max_positions (tasks.common.encoder_input)."""
    from fairseq.data import Dictionary, data_utils

    max_pos = bench.profile().bert.max_positions  # checked against WORK's checkpoints
    data = data_utils.load_indexed_dataset(str(bench.work.fsc / "units" / bench.subset()),
                                           Dictionary.load(str(bench.work.fsc / "units" / "dict.txt")))
    return [min(int(n), max_pos - 1) + 1 for n in data.sizes]

def max_tokens_for(bench, batch_size):
    """--max-tokens giving about ``batch_size`` utterances per update on average:
    length-sorted batches of N tokens number about sum(lengths) / N."""
    lengths = split_lengths(bench)
    return max(max(lengths), round(batch_size * statistics.mean(lengths)))

def padding(bench, max_tokens):
    """Padding share of the batches fairseq forms from the length-sorted split."""
    import numpy as np
    from fairseq.data import data_utils

    lengths = np.array(split_lengths(bench))
    order = np.argsort(lengths, kind="mergesort")
    fixed = [order[i:i + bench.args.ft_batch_size] for i in range(0, len(order), bench.args.ft_batch_size)]
    bucketed = data_utils.batch_by_size(order, lambda i: lengths[i], max_tokens=max_tokens,
                                        required_batch_size_multiple=1)
    share = lambda batches: 1 - lengths.sum() / sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    return {"fixed_batch": float(share(fixed)), "max_tokens": float(share(bucketed)),
            "fixed_batches": len(fixed), "max_tokens_batches": len(bucketed)}


def ratio_row(name, candidate_label, reference_label, candidate, reference, horizon):
    """How much faster ``candidate``'s epochs are than ``reference``'s (below 1: slower),
    and what the candidate pays once: the extra time loading the training split takes
    (caching states, precomputing logits), also folded into a run of ``horizon`` epochs."""
    total = lambda r: r.train_load_s + horizon * r.stats.epoch_s  # noqa: E731
    row = {"name": name, "candidate": candidate_label, "reference": reference_label,
           "candidate_epoch_s": candidate.stats.epoch_s, "reference_epoch_s": reference.stats.epoch_s,
           "speedup": reference.stats.epoch_s / candidate.stats.epoch_s,
           "candidate_train_load_s": candidate.train_load_s, "reference_train_load_s": reference.train_load_s,
           "one_off_s": candidate.train_load_s - reference.train_load_s, "horizon_epochs": horizon,
           "speedup_incl_one_off": total(reference) / total(candidate),
           "candidate_utts_per_update": candidate.stats.utts_per_update,
           "reference_utts_per_update": reference.stats.utts_per_update,
           "candidate_max_rss_mb": candidate.max_rss_mb, "reference_max_rss_mb": reference.max_rss_mb}
    if name in TARGETS:
        row["target"] = TARGETS[name]
        row["target_met"] = row["speedup"] >= TARGETS[name]
    return row
