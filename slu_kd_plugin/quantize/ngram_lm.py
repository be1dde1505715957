"""A small back-off n-gram LM in ARPA text, for pocketsphinx's word decoding.

Absolute discounting with back-off: a seen n-gram keeps (count - D) / context count,
the freed mass goes to the next lower order, scaled so that every context sums to 1;
unigrams are add-one smoothed, so every word of the vocabulary stays decodable.  A
few thousand training transcripts are all it is fitted on, hence the small D.
"""
import collections
import math

DISCOUNT = 0.5


def _counts(sentences, order):
    counts = [collections.Counter() for _ in range(order)]
    for words in sentences:
        seq = ["<s>"] + list(words) + ["</s>"]
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                if not (n == 1 and seq[i] == "<s>"):  # <s> is a context, never predicted
                    counts[n - 1][tuple(seq[i:i + n])] += 1
    return counts


def _back_off_prob(probs, gram):
    p = probs[len(gram) - 1].get(gram)
    return p if p is not None else _back_off_prob(probs, gram[1:])


def arpa_lm(sentences, order=3):
    """ARPA text of the LM of ``sentences`` (lists of words)."""
    counts = _counts(sentences, order)
    words = sorted({g[0] for g in counts[0]} | {"</s>"})
    total = sum(counts[0].values()) + len(words)
    probs = [{(w,): (counts[0][(w,)] + 1) / total for w in words}]
    probs[0][("<s>",)] = 0.0
    back_off = [{} for _ in range(order - 1)]
    for n in range(2, order + 1):
        by_context = collections.defaultdict(list)
        for gram, c in counts[n - 1].items():
            by_context[gram[:-1]].append((gram[-1], c))
        probs.append({})
        for ctx, seen in by_context.items():
            ctx_total = sum(c for _, c in seen)
            for w, c in seen:
                probs[n - 1][ctx + (w,)] = (c - DISCOUNT) / ctx_total
            freed = DISCOUNT * len(seen) / ctx_total
            lower = sum(_back_off_prob(probs, ctx[1:] + (w,)) for w, _ in seen)
            back_off[n - 2][ctx] = freed / max(1.0 - lower, 1e-9)
    return _format(probs, back_off)


def _format(probs, back_off):
    def log10(p):
        return -99.0 if p <= 0 else math.log10(p)

    lines = ["\\data\\"] + [f"ngram {n + 1}={len(t)}" for n, t in enumerate(probs)] + [""]
    for n, table in enumerate(probs):
        lines.append(f"\\{n + 1}-grams:")
        for gram in sorted(table):
            bo = back_off[n].get(gram) if n < len(back_off) else None
            tail = f"\t{log10(bo):.4f}" if bo is not None else ""
            lines.append(f"{log10(table[gram]):.4f}\t{' '.join(gram)}{tail}")
        lines.append("")
    return "\n".join(lines + ["\\end\\", ""])
