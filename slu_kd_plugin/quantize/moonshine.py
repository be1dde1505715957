"""A second opinion for phrase decoding: Moonshine tiny, asked which training phrase it hears.

pocketsphinx's phrase search (:mod:`.pocketsphinx_phones`) fails on a few voices far from
its acoustic model's speakers (on the seed-71 FSC-layout corpus: espeak-ng's Caribbean
accent, one flite voice), where a modern end-to-end recogniser hears them better, and the
other way round on others.  Moonshine tiny (MIT licensed) ships as ONNX inside npm's
``@moonshine-ai/moonshine-js`` and its tokenizer inside PyPI's ``useful-moonshine-onnx``;
``scripts/setup.sh`` installs both (:func:`asset_paths` says where and what is missing).

Used here as a phrase-constrained recogniser: its decoder is run only along the token
prefix tree of the training phrases (each spelt as Moonshine writes: capitalised or not,
with or without a full stop), a beam search with the decoder's key/value cache.
:meth:`MoonshinePhraseScorer.overrule` first scores pocketsphinx's phrase (one decoder
call) and searches only for phrases that could beat it by the margin: where Moonshine
finds that phrase near-certain, as for most utterances, nothing can, and no search runs.
The phrase pocketsphinx gives, or Moonshine's, is then written as its phones, as before.
"""
import functools
import hashlib
import importlib.util
import os
import sys

import numpy as np

from . import QuantizerError

NPM_PACKAGE = "@moonshine-ai/moonshine-js@0.1.29"  # scripts/setup.sh fetches this version
MODEL_FILES = ("encoder_model.onnx", "decoder_model_merged.onnx")
START, EOS = 1, 2  # the decoder's start and end-of-sentence token ids
LAYERS, KV_HEADS, HEAD_DIM = 6, 8, 36  # Moonshine tiny's decoder


def model_dir():
    """Where scripts/setup.sh puts the npm package's tiny quantized ONNX files
    (``SLU_KD_MOONSHINE_DIR`` overrides)."""
    return os.environ.get("SLU_KD_MOONSHINE_DIR") or os.path.join(sys.prefix, "share", "slu-kd", "moonshine-tiny")


def tokenizer_path():
    spec = importlib.util.find_spec("moonshine_onnx")  # found, not imported: only its asset is used
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "assets", "tokenizer.json")


def asset_paths():
    """(encoder, decoder, tokenizer.json) paths, or a QuantizerError naming what is missing."""
    files = [os.path.join(model_dir(), f) for f in MODEL_FILES]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise QuantizerError(f"Moonshine's ONNX model is not installed ({', '.join(missing)} missing): "
                             f"scripts/setup.sh fetches it from npm's {NPM_PACKAGE}")
    tok = tokenizer_path()
    if tok is None or not os.path.isfile(tok):
        raise QuantizerError("Moonshine's tokenizer is not installed: pip install --no-deps "
                             "useful-moonshine-onnx (scripts/setup.sh does)")
    return files[0], files[1], tok


@functools.lru_cache(maxsize=1)
def fingerprint():
    """sha1 of the two ONNX files (a quantizer that uses them refuses others)."""
    h = hashlib.sha1()
    for path in asset_paths()[:2]:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def spellings(words):
    """How Moonshine may write a phrase given as lower-case words: capitalised or not,
    with or without a full stop (it writes sentences; teacher-forcing only "turn on the
    lights" would charge every phrase for the unusual spelling)."""
    text = " ".join(words)
    cap = text[:1].upper() + text[1:]
    return sorted({cap + ".", cap, text + ".", text})


class MoonshinePhraseScorer:
    """Moonshine tiny constrained to ``phrases`` (sequences of lower-case words).

    Its softmax runs over the phrases' tokens and the end of sentence only, not the
    32768 of the vocabulary: on the seed-71 FSC-layout corpus's valid voices both chose as
    well (333-334 of 340 with pocketsphinx, README), and the restricted one in 60% of the
    time.  ``beam``: hypotheses kept per step (8 found the same phrases as teacher-forcing
    every phrase in tests; 4 saved little: a step's cost is mostly the session call)."""

    def __init__(self, phrases, beam=8, threads=1):
        import onnxruntime
        import tokenizers

        encoder, decoder, tok = asset_paths()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads  # featurize runs a process per core
        self.encoder = onnxruntime.InferenceSession(encoder, opts, providers=["CPUExecutionProvider"])
        graph, projection = _without_projection(decoder)
        self.decoder = onnxruntime.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        # the outputs in the order of the cache's inputs ("present.0.decoder.key" -> "past_key_values.0...")
        self._outputs = [HIDDEN] + [k.replace("past_key_values", "present") for k in _empty_cache(1)]
        self.beam = int(beam)
        self.phrases = [tuple(p) for p in phrases]
        self._index = {p: i for i, p in enumerate(self.phrases)}
        self._build_tree(tokenizers.Tokenizer.from_file(tok))
        self._projection = projection[self._tokens]  # rows in the order of the local token ids

    def _build_tree(self, tokenizer):
        """The prefix tree of every spelling of every phrase, over local token ids (0: end
        of sentence, then the phrases' tokens in order of first use)."""
        local = {EOS: 0}
        self._spelt = {}  # phrase index -> local token ids of each spelling
        self._children, self._ends = [{}], [set()]
        for i, phrase in enumerate(self.phrases):
            for text in spellings(phrase):
                ids = [local.setdefault(t, len(local)) for t in tokenizer.encode(text, add_special_tokens=False).ids]
                self._spelt.setdefault(i, []).append(ids)
                node = 0
                for t in ids:
                    if t not in self._children[node]:
                        self._children[node][t] = len(self._children)
                        self._children.append({})
                        self._ends.append(set())
                    node = self._children[node][t]
                self._ends[node].add(i)
        self._tokens = np.array(sorted(local, key=local.get))  # local id -> Moonshine token id

    # -------------------------------------------------------------- the model

    def encode(self, wav):
        """Encoder states of a 1-D float 16 kHz waveform (numpy or torch)."""
        audio = np.asarray(wav, dtype=np.float32).reshape(1, -1)
        return self.encoder.run(None, {"input_values": audio})[0]

    def _step(self, ids, states, past):
        """log-probabilities of the next local token after Moonshine tokens ``ids``
        ([batch, 1]), and the new cache (``past`` None: the first step)."""
        batch, first = len(ids), past is None
        if first:  # the cache inputs are required but unread
            past = _empty_cache(batch)
        hidden, *present = self.decoder.run(self._outputs, {
            **past, "input_ids": np.asarray(ids, dtype=np.int64),
            "encoder_hidden_states": np.repeat(states, batch, axis=0),
            "use_cache_branch": np.array([not first])})
        # the encoder's keys/values are computed once, at the first step
        new = {k: v if first or ".decoder." in k else past[k] for k, v in zip(past, present)}
        return self._log_probs(hidden[:, -1]), new

    def _log_probs(self, hidden):
        """log-softmax over the local tokens of the decoder's states ([..., 288])."""
        logits = hidden.astype(np.float32) @ self._projection.T
        top = logits.max(-1, keepdims=True)
        return logits - (top + np.log(np.exp(logits - top).sum(-1, keepdims=True)))

    # -------------------------------------------------------------- searches

    def logprob(self, states, phrase_index):
        """log P(phrase, end of sentence), the best of its spellings (teacher-forced, all
        spellings in one batch: padded at the end, which a causal decoder never reads)."""
        spelt = self._spelt[phrase_index]
        width = max(map(len, spelt))
        ids = [[START, *self._tokens[s], *[EOS] * (width - len(s))] for s in spelt]
        hidden = self.decoder.run([HIDDEN], {
            **_empty_cache(len(ids)), "input_ids": np.asarray(ids, dtype=np.int64),
            "encoder_hidden_states": np.repeat(states, len(ids), axis=0),
            "use_cache_branch": np.array([False])})[0]
        lp = self._log_probs(hidden)
        return max(float(sum(lp[row, t, tok] for t, tok in enumerate(s + [0]))) for row, s in enumerate(spelt))

    def best(self, states, floor=-np.inf):
        """(phrase index, log P) of the best phrase above ``floor`` the beam search
        reaches, or None."""
        hyps = [(0, 0.0)]  # (tree node, log P so far), each a row of the cache
        ids, past = [[START]], None
        found, found_lp = None, floor
        while hyps:
            lp, past = self._step(ids, states, past)
            grown = []
            for row, (node, score) in enumerate(hyps):
                for i in self._ends[node]:
                    if score + lp[row, 0] > found_lp:
                        found, found_lp = i, score + lp[row, 0]
                grown += [(score + lp[row, t], child, row, t) for t, child in self._children[node].items()]
            # a hypothesis below the best finished phrase (or the floor) can only fall further
            grown = sorted((g for g in grown if g[0] > found_lp), key=lambda g: -g[0])[:self.beam]
            if not grown:
                break
            rows = np.array([g[2] for g in grown])
            past = {k: v[rows] if ".decoder." in k else np.repeat(v[:1], len(rows), axis=0)
                    for k, v in past.items()}
            hyps = [(child, score) for score, child, _, _ in grown]
            ids = [[self._tokens[t]] for _, _, _, t in grown]
        return None if found is None else (found, float(found_lp))

    def overrule(self, wav, heard, margin):
        """The phrase (word tuple) Moonshine hears in ``wav`` if it prefers it to ``heard``
        (pocketsphinx's phrase, or None where it reached none) by more than ``margin`` nats
        of log-probability; else ``heard``."""
        states = self.encode(wav)
        floor = -np.inf
        if heard in self._index:
            floor = self.logprob(states, self._index[heard]) + margin
            if floor >= 0:  # no phrase is likelier than certain: the usual case, no search
                return heard
        best = self.best(states, floor)  # only what could overrule is searched
        if best is None or self.phrases[best[0]] == heard:
            return heard
        # compared teacher-forced: the beam's cached steps round differently (int8 activations)
        return self.phrases[best[0]] if heard is None or self.logprob(states, best[0]) > floor else heard


def _empty_cache(batch):
    empty = np.zeros((batch, KV_HEADS, 0, HEAD_DIM), dtype=np.float32)
    return {f"past_key_values.{i}.{a}.{b}": empty
            for i in range(LAYERS) for a in ("decoder", "encoder") for b in ("key", "value")}


HIDDEN = "hidden_states"


def _without_projection(path):
    """(serialized decoder, float output projection [vocab, 288]) of the merged ONNX decoder,
    rewritten to end at the final norm: as shipped, every step transposes and dequantizes
    the 32768 x 288 int8 embedding before multiplying by it (most of a step's time), so it
    is dequantized once here and the projection done in numpy."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    (branch_node,) = model.graph.node  # one If: with or without the cache
    for attr in branch_node.attribute:
        graph = attr.g
        (proj,) = [n for n in graph.node if "logits" in n.output]
        graph.node.remove(proj)  # its now unused inputs are pruned when the session loads
        graph.node.append(onnx.helper.make_node("Identity", [proj.input[0]], [HIDDEN]))
        graph.output[0].name = HIDDEN
        graph.output[0].type.tensor_type.shape.dim[-1].dim_value = 288
    branch_node.output[0] = model.graph.output[0].name = HIDDEN
    model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value = 288
    prefix = "model.decoder.embed_tokens.weight_merged_0"
    q, scale, zero = (weights[prefix + s] for s in ("_quantized", "_scale", "_zero_point"))
    return model.SerializeToString(), ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
