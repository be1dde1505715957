"""Speaker-independent phone units from CMU's pretrained en-us acoustic model.

MFCC k-means units fitted on a few voices learn those voices: a new speaker gets
other units for the same words.  The ``pocketsphinx`` wheel ships a continuous
acoustic model trained on many human speakers, a pronouncing dictionary and a phone
language model; all-phone decoding with it turns any voice into phone segments on
10 ms frames.  This quantizer writes each segment as one phone token per
``frame_ms`` of its duration (durations kept, as vq-wav2vec's frame-level tokens
keep them: merged to one token per phone, the same phones lost half the accuracy).

Three decodings:

* ``phones``: all-phone decoding with pocketsphinx's generic phone LM; knows nothing
  of the corpus.
* ``words`` (:func:`fit_word_lm`): word decoding with a trigram LM of the training
  transcripts and the shipped dictionary cut down to their words, written as the
  phones of the decoded words (each word's frames shared out over its phones).  The
  same word then gives the same phones in every voice, which all-phone decoding of an
  unfamiliar voice does not; a misrecognised word becomes another word's phones.  The
  LM and dictionary are stored in the quantizer file, so the file alone reproduces
  the units.
* ``phrases`` (:func:`fit_word_lm` with ``phrases``): word decoding constrained to the
  training transcripts' phrases (a grammar of every distinct one, each equally likely,
  its words shared as a prefix tree), the trigram decoding where no phrase fits.  For
  corpora whose test commands are phrased as the training ones (FSC): a misheard word
  can only turn the command into another command, not into a phrase nobody says, and
  the tree's search is about twice as fast as the trigram's (README: "Phrase decoding").
  With a ``second_opinion`` (the default for new files), Moonshine tiny
  (:mod:`.moonshine`) is asked which phrase it hears, and its phrase is taken where it
  is likelier than pocketsphinx's by more than ``margin`` nats (or where pocketsphinx
  reached none): the two recognisers fail on different voices (README: "A second
  opinion").

Decoding is deterministic: the decoder is reset before each utterance (pocketsphinx
carries its noise and cepstral-mean estimates from one utterance to the next, which
moved word boundaries by a few frames with the order of decoding), so an utterance
gives the same tokens in any shard, in a resumed run and alone in slu-kd-predict.

``topn``: the model is phonetically tied (one codebook of 128 Gaussians per phone and
feature stream); pocketsphinx scores only the ``topn`` best of each per frame, 4 by
default.  Voices far from the model's training speakers lose most there: in word
decoding, on the demo's valid voices word errors fall from 10.6% (4) to 8.1% (16), on four
other unseen espeak-ng accents from 47% to 40%, for 1.6x the decoding time (README).
All-phone decoding keeps 4 (not measured better).  Files without the field were made
before it and keep 4.

``phone_tokens``: in word decoding a phone's duration is not heard but made up (its
word's frames shared out evenly), so it carries only how fast the voice speaks: each
decoded phone (and each pause) is written as ``phone_tokens`` tokens instead, and the
same words give the same tokens at any speaking rate.  3 keeps the sequences about as
long as 30 ms frames did (AM-PT's CTC over them needs no fewer positions than
characters); the demo's units rewritten to it scored better on its unseen test voices,
and its fine-tuning grid trains 13% faster (README: "Tokens per phone").  0 keeps
durations (one token per ``frame_ms``): the default for all-phone decoding, whose
durations are heard, and for files written before the field.

``prime_ms`` (0, off, by default): the reset costs word errors, because the noise and
cepstral-mean estimates need about a second of a voice; with ``prime_ms`` the first
that many ms of each utterance are decoded once before the whole (on the demo's test
voices 1000 gives back the word errors the carried-over estimates had: 8.86% -> 6.88%,
for ~40% more decoding time; not yet measured end to end, so not the default).
"""
import collections
import functools
import hashlib
import logging
import os
import tempfile

import torch

from . import Quantizer, QuantizerError

logger = logging.getLogger(__name__)

KIND = "pocketsphinx_phones"
VERSION = 1
LEGACY_TOPN = 4  # pocketsphinx's own default: files written before topn was stored
DEFAULT_TOPN = {"words": 16, "phrases": 64, "phones": LEGACY_TOPN}  # new quantizers, by decoding (README: "Gaussians scored per frame")
SECOND_OPINION_TOPN = 16  # phrases with a second opinion: as good as 64 on valid voices, half the decoding time
LEGACY_PHONE_TOKENS = 0  # durations kept: files written before phone_tokens was stored
DEFAULT_PHONE_TOKENS = {"words": 3, "phrases": 3, "phones": LEGACY_PHONE_TOKENS}  # README: "Tokens per phone"
MAX_PHONE_TOKENS = 10
MAX_PRIME_MS = 5000
SECOND_OPINIONS = ("moonshine",)  # phrases: asked on every utterance (README: "A second opinion")
DEFAULT_MARGIN = 4.0  # nats by which Moonshine must prefer its phrase to overrule pocketsphinx (chosen on valid voices)


def _package():
    try:
        import pocketsphinx
    except ImportError:
        raise QuantizerError("the pocketsphinx quantizer needs the pocketsphinx package "
                             "(pip install pocketsphinx; scripts/setup.sh installs it)") from None
    return pocketsphinx


def model_dir():
    return os.path.join(_package().get_model_path(), "en-us")


@functools.lru_cache(maxsize=1)
def acoustic_model_fingerprint():
    """sha1 of the acoustic model's mdef and means (read once per process): a quantizer
    file refuses another model."""
    h = hashlib.sha1()
    for name in ("mdef", "means"):
        with open(os.path.join(model_dir(), "en-us", name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def phone_set():
    """The phones decoding can emit: those of the shipped dictionary and the fillers of
    the acoustic model's noise dictionary (SIL, +NSN+, +SPN+), sorted; a new list each
    call, of a set read once per process."""
    return list(_phones())


@functools.lru_cache(maxsize=1)
def _phones():
    phones = {p for pron in read_pronunciations().values() for p in pron}
    with open(os.path.join(model_dir(), "en-us", "noisedict"), encoding="utf-8") as f:
        phones.update(line.split()[1] for line in f if len(line.split()) == 2)
    return tuple(sorted(phones))


@functools.lru_cache(maxsize=1)
def read_pronunciations():
    """word -> first pronunciation (list of phones) of the shipped CMU dictionary."""
    prons = {}
    with open(os.path.join(model_dir(), "cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            if "(" not in word:
                prons.setdefault(word, phones)
    return prons


# ------------------------------------------------------------------ quantizer


FILLERS = ("<s>", "</s>", "<sil>")  # the decoder's silence words


class PocketsphinxPhoneQuantizer(Quantizer):
    kind = KIND
    merge_repeats = False

    def __init__(self, frame_ms=30, lw=2.0, info=None, path=None, fingerprint=None, word_lm=None,
                 topn=None, phone_tokens=None, prime_ms=0, second_opinion=None):
        if frame_ms < 10 or frame_ms % 10:
            raise QuantizerError(f"frame_ms must be a multiple of 10 ms, not {frame_ms}")
        # None (all-phone decoding) or {"arpa": text, "dict": text[, "fsg": text (phrases)]}
        self.word_lm = word_lm
        phone_tokens = DEFAULT_PHONE_TOKENS[self.decoding] if phone_tokens is None else int(phone_tokens)
        if not 0 <= phone_tokens <= MAX_PHONE_TOKENS:
            raise QuantizerError(f"phone_tokens must be 0 (durations kept) to {MAX_PHONE_TOKENS}, not {phone_tokens}")
        self.frame_ms, self.lw, self.phone_tokens = int(frame_ms), float(lw), phone_tokens
        # None, or {"kind": "moonshine", "margin": nats, "fingerprint": of its ONNX files}
        self.second_opinion = self._check_second_opinion(second_opinion)
        self._moonshine = None
        if topn is None:
            topn = SECOND_OPINION_TOPN if self.second_opinion else DEFAULT_TOPN[self.decoding]
        if not 1 <= int(topn) <= 128:
            raise QuantizerError(f"topn must be 1-128 (Gaussians per codebook), not {topn}")
        self.topn = int(topn)
        if not 0 <= int(prime_ms) <= MAX_PRIME_MS:
            raise QuantizerError(f"prime_ms must be 0 (off) to {MAX_PRIME_MS}, not {prime_ms}")
        self.prime_ms = int(prime_ms)
        self.info, self.path = dict(info or {}), path
        self.fingerprint = fingerprint or acoustic_model_fingerprint()
        self.min_samples = 400  # one 25 ms analysis window
        self.frame_shift_ms = float(frame_ms)
        self._decoder = None
        self._fallback = None  # phrases: the trigram decoder, for an utterance no phrase fits
        self._prons = None
        self._lm_dir = None

    @property
    def decoding(self):
        if not self.word_lm:
            return "phones"
        return "phrases" if self.word_lm.get("fsg") else "words"

    def _check_second_opinion(self, opinion):
        if not opinion:
            return None
        if opinion.get("kind") not in SECOND_OPINIONS:
            raise QuantizerError(f"unknown second opinion {opinion.get('kind')!r} (known: {', '.join(SECOND_OPINIONS)})")
        if self.decoding != "phrases":
            raise QuantizerError(f"a second opinion chooses among the training phrases: it needs phrase "
                                 f"decoding, not {self.decoding}")
        if not self.phone_tokens:
            raise QuantizerError("a second opinion's phrase has no heard durations: it needs phone_tokens > 0")
        margin = float(opinion.get("margin", DEFAULT_MARGIN))
        if not margin >= 0:
            raise QuantizerError(f"the second opinion's margin must be >= 0 nats, not {margin}")
        return {"kind": opinion["kind"], "margin": margin, "fingerprint": opinion.get("fingerprint")}

    def _make_moonshine(self):
        from . import moonshine

        installed = moonshine.fingerprint()
        if self.second_opinion["fingerprint"] is None:
            self.second_opinion["fingerprint"] = installed  # a new quantizer records the model it used
        elif self.second_opinion["fingerprint"] != installed:
            raise QuantizerError(f"{self.path}: made with another Moonshine model "
                                 f"({self.second_opinion['fingerprint']}, installed {installed})")
        return moonshine.MoonshinePhraseScorer(fsg_phrases(self.word_lm["fsg"]))

    def _make_decoder(self):
        ps = _package()
        if self.fingerprint != acoustic_model_fingerprint():
            raise QuantizerError(f"{self.path}: made with another pocketsphinx acoustic model "
                                 f"({self.fingerprint}, installed {acoustic_model_fingerprint()})")
        common = dict(hmm=os.path.join(model_dir(), "en-us"), topn=self.topn, loglevel="FATAL")
        if not self.word_lm:
            return ps.Decoder(ps.Config(allphone=os.path.join(model_dir(), "en-us-phone.lm.bin"),
                                        lw=self.lw, beam=1e-20, pbeam=1e-20, **common))
        self._prons = {line.split()[0]: line.split()[1:] for line in self.word_lm["dict"].splitlines()}
        # the files live as long as the decoder: its reinit() before each utterance reads them
        self._lm_dir = tempfile.TemporaryDirectory(prefix="slu-kd-ps-")
        paths = {k: os.path.join(self._lm_dir.name, k) for k in ("arpa", "dict", "fsg") if k in self.word_lm}
        for k, path in paths.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.word_lm[k])
        trigram = ps.Decoder(ps.Config(lm=paths["arpa"], dict=paths["dict"], **common))
        if "fsg" not in paths:
            return trigram
        self._fallback = trigram
        return ps.Decoder(ps.Config(fsg=paths["fsg"], dict=paths["dict"], **common))

    def segments(self, wav):
        """[(phone, n_10ms_frames)] of a 1-D float 16 kHz waveform."""
        if self._decoder is None:
            self._decoder = self._make_decoder()
        pcm = (wav.float().clamp(-1, 1) * 32767).to(torch.int16).numpy().tobytes()
        segs = self._decode(self._decoder, pcm)
        if self.second_opinion:
            segs = self._ask_second(wav, segs)
        if self._fallback is not None and not any(self._is_word(w) for w, _ in segs):
            segs = self._decode(self._fallback, pcm)  # the search reached no phrase's end
        return segs if not self.word_lm else self._word_phones(segs)

    def _ask_second(self, wav, segs):
        """The segments of the phrase Moonshine prefers by the margin, else ``segs``."""
        if self._moonshine is None:
            self._moonshine = self._make_moonshine()
        heard = tuple(w for w, _ in segs if self._is_word(w)) or None
        phrase = self._moonshine.overrule(wav.float().numpy(), heard, self.second_opinion["margin"])
        if phrase is None or phrase == heard:
            return segs
        # its words' phones, each a frame: with phone_tokens their durations are not written
        return [("<sil>", 1)] + [(w, len(self._prons[w])) for w in phrase] + [("<sil>", 1)]

    def _decode(self, d, pcm):
        """[(word or phone, n_10ms_frames)] of 16-bit PCM, by decoder ``d``."""
        d.reinit()  # its noise and cepstral-mean estimates would carry over from the last utterance
        if self.prime_ms:  # ...and they need about a second of a voice: its start decoded once first
            d.start_utt()
            d.process_raw(pcm[:self.prime_ms * 32], full_utt=True)  # 16 samples of 2 bytes a ms
            d.end_utt()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        return [(s.word, s.end_frame - s.start_frame + 1) for s in d.seg() or ()]  # none: no phrase fits

    @staticmethod
    def _is_word(word):
        return not (word in FILLERS or word.startswith("["))

    def _word_phones(self, word_segments):
        """Words -> their phones, a word's frames shared out evenly (the first phones get
        the remainder), fillers -> SIL."""
        out = []
        for word, frames in word_segments:
            phones = self._prons.get(word)
            if not self._is_word(word) or not phones:
                out.append(("SIL", frames))
                continue
            base, extra = divmod(frames, len(phones))
            # with phone_tokens every phone is written, however short its share
            out += [(ph, base + (i < extra)) for i, ph in enumerate(phones)
                    if base + (i < extra) > 0 or self.phone_tokens]
        return out

    def frame_units(self, wav):
        per = self.frame_ms // 10
        units = []
        for phone, frames in self.segments(wav):
            if not self.phone_tokens:
                units += [phone] * max(1, round(frames / per))
            elif not (phone == "SIL" and units[-1:] == ["SIL"]):  # one pause, however many fillers
                units += [phone] * self.phone_tokens
        return units or ["SIL"]

    def symbols(self):
        return phone_set()

    def state_dict(self):
        return {"kind": KIND, "version": VERSION, "frame_ms": self.frame_ms, "lw": self.lw,
                "fingerprint": self.fingerprint, "word_lm": self.word_lm, "topn": self.topn,
                "phone_tokens": self.phone_tokens, "prime_ms": self.prime_ms,
                "second_opinion": self.second_opinion, "info": self.info}

    @classmethod
    def from_state(cls, state, path=None):
        cls.check_version(state, path, VERSION)
        try:
            return cls(state["frame_ms"], state["lw"], state.get("info"), path, state["fingerprint"],
                       state.get("word_lm"), state.get("topn", LEGACY_TOPN),
                       state.get("phone_tokens", LEGACY_PHONE_TOKENS), state.get("prime_ms", 0),
                       state.get("second_opinion"))
        except KeyError as e:
            raise QuantizerError(f"{path}: malformed {KIND} file (no {e})") from None

    def describe(self):
        how = {"words": "word trigram of the training transcripts", "phones": "all-phone",
               "phrases": "training-phrase (trigram where none fits)"}[self.decoding]
        rate = f"{self.phone_tokens} tokens per phone" if self.phone_tokens else f"durations kept at {self.frame_ms} ms"
        primed = f", each utterance's first {self.prime_ms} ms decoded first" if self.prime_ms else ""
        second = (f", Moonshine tiny overruling by {self.second_opinion['margin']:g} nats"
                  if self.second_opinion else "")
        return (super().describe() + f", pocketsphinx en-us {how} decoding, top {self.topn} Gaussians, "
                f"{rate}{primed}{second}")


def transcript_words(texts):
    """Word lists of transcripts as the dictionary spells words (lower case, no punctuation)."""
    table = str.maketrans({c: " " for c in ".,?!;:\"-"})
    return [t.lower().translate(table).split() for t in texts]


def fit_word_lm(texts, order=3, phrases=False):
    """{"arpa", "dict"} of the transcripts' words, and with ``phrases`` the "fsg" of their
    phrases (:func:`phrase_fsg`).  Words the dictionary lacks cannot be decoded: a
    sentence holding one is left out of the LM, with a warning that counts them."""
    from .ngram_lm import arpa_lm

    prons = read_pronunciations()
    sentences = [s for s in transcript_words(texts) if s]
    missing = collections.Counter(w for s in sentences for w in s if w not in prons)
    kept = [s for s in sentences if all(w in prons for w in s)]
    if missing:
        logger.warning("%d of %d transcripts hold words pocketsphinx's dictionary lacks and are left "
                       "out of the word LM (%d distinct, e.g. %s)", len(sentences) - len(kept),
                       len(sentences), len(missing), ", ".join(w for w, _ in missing.most_common(5)))
    if not kept:
        raise QuantizerError("no transcript is spelled only with words of pocketsphinx's dictionary: "
                             "use --units phones or kmeans")
    vocab = sorted({w for s in kept for w in s})
    lexicon = "".join(f"{w} {' '.join(prons[w])}\n" for w in vocab)
    out = {"arpa": arpa_lm(kept, order), "dict": lexicon}
    return dict(out, fsg=phrase_fsg(kept)) if phrases else out


def phrase_fsg(sentences):
    """pocketsphinx's FSG text of the distinct sentences (word lists): a prefix tree of
    words whose every sentence is equally likely (an arc's probability is the share of
    the node's sentences under it), each sentence's last node joined to one final state.
    As a tree, a word that starts many phrases is searched once, not once per phrase."""
    children, ends = [{}], set()
    for sentence in sorted({tuple(s) for s in sentences}):
        node = 0
        for word in sentence:
            if word not in children[node]:
                children[node][word] = len(children)
                children.append({})
            node = children[node][word]
        ends.add(node)
    below = [0] * len(children)  # sentences ending at or under each node
    for node in reversed(range(len(children))):  # a child's number is larger than its parent's
        below[node] = (node in ends) + sum(below[c] for c in children[node].values())
    final = len(children)
    arcs = [f"TRANSITION {node} {child} {below[child] / below[node]:.8f} {word}"
            for node, kids in enumerate(children) for word, child in sorted(kids.items())]
    arcs += [f"TRANSITION {node} {final} {1 / below[node]:.8f}" for node in sorted(ends)]
    return "\n".join(["FSG_BEGIN phrases", f"NUM_STATES {final + 1}", "START_STATE 0",
                      f"FINAL_STATE {final}", *arcs, "FSG_END", ""])


def fsg_phrases(fsg):
    """The sentences (word tuples) of a :func:`phrase_fsg` text, sorted: every path from the
    start state to the final one."""
    arcs, final = {}, None
    for line in fsg.splitlines():
        parts = line.split()
        if parts[:1] == ["FINAL_STATE"]:
            final = int(parts[1])
        elif parts[:1] == ["TRANSITION"]:
            arcs.setdefault(int(parts[1]), []).append((int(parts[2]), parts[4] if len(parts) > 4 else None))
    out, stack = [], [(0, ())]
    while stack:
        node, words = stack.pop()
        for child, word in arcs.get(node, ()):
            if child == final:
                out.append(words)
            else:
                stack.append((child, words + (word,)))
    return sorted(out)
