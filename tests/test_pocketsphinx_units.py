"""The pocketsphinx phone quantizer (the offline default unit source): real TTS speech
of different engines and genders through CMU's pretrained en-us acoustic model."""
import os
import subprocess

import editdistance
import pytest
import soundfile as sf
import torch

import slu_kd_plugin

slu_kd_plugin.register()  # safe-loading allow-list
from slu_kd_plugin.quantize import QuantizerError, load_quantizer, merge_consecutive
from slu_kd_plugin.quantize.featurize import featurize_split, merge_shards
from slu_kd_plugin.quantize.pocketsphinx_phones import PocketsphinxPhoneQuantizer, phone_set, read_pronunciations
from slu_kd_plugin.synth.tts import synthesize
from slu_kd_plugin.synth.voices import Speaker

from conftest import tool, ENV

SENTENCES = ("turn on the lights in the kitchen", "bring me my shoes please")
VOICES = {  # a male espeak-ng voice, flite's female voice, festival's male diphone voice
    "espeak": Speaker("espeak-ng", "en-us", "m3", 170, 50, "white", 30.0, 0.5),
    "flite": Speaker("flite", "slt", "", 170, 50, "white", 30.0, 0.5),
    "festival": Speaker("festival", "kal_diphone", "", 170, 50, "white", 30.0, 0.5),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """{(voice, sentence index): wav path} and a manifest dir with all of them."""
    root = tmp_path_factory.mktemp("ps")
    paths, lines = {}, [str(root)]
    for name, spk in VOICES.items():
        for i, text in enumerate(SENTENCES):
            wav = synthesize(text, spk, seed=i)
            rel = f"{name}_{i}.wav"
            sf.write(str(root / rel), wav, 16000, subtype="PCM_16")
            paths[name, i] = str(root / rel)
            lines.append(f"{rel}\t{len(wav)}")
    (root / "train.tsv").write_text("\n".join(lines) + "\n")
    return root, paths


@pytest.fixture(scope="module")
def quantizer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "phones.pt"
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--decoding", "phones",
                          "--frame-ms", "30", "--out", str(path)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    return path


@pytest.fixture(scope="module")
def words_file(corpus, tmp_path_factory):
    """A word-decoding quantizer whose LM knows the two sentences and some others."""
    root, _ = corpus
    (root / "train.txt").write_text("\n".join(SENTENCES + ("turn off the music", "bring me my socks")) + "\n")
    path = tmp_path_factory.mktemp("qw") / "words.pt"
    res = subprocess.run([tool("slu-kd-fit-quantizer"), str(root), "--kind", "pocketsphinx", "--split", "train",
                          "--out", str(path)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    return path


def _phones(q, path):
    wav, _ = sf.read(path, dtype="float32")
    return merge_consecutive(q.encode(torch.from_numpy(wav)))


def test_file_round_trip_and_symbols(quantizer_file):
    q = load_quantizer(quantizer_file)
    assert q.kind == "pocketsphinx_phones" and q.frame_ms == 30
    assert {"AA", "IY", "SH", "SIL"} <= set(q.symbols()) and q.symbols() == phone_set()


def test_same_words_give_close_phones_across_engines_and_genders(corpus, quantizer_file):
    """The point of the unit source: another engine or gender changes the phones less
    than other words do (MFCC k-means units fitted on one voice change wholesale)."""
    _, paths = corpus
    q = load_quantizer(quantizer_file)
    seqs = {k: [p for p in _phones(q, v) if p != "SIL"] for k, v in paths.items()}

    def dist(a, b):
        return editdistance.eval(seqs[a], seqs[b]) / max(len(seqs[a]), len(seqs[b]))

    for i in range(len(SENTENCES)):
        same_words = dist(("flite", i), ("festival", i))
        other_words = dist(("flite", i), ("festival", 1 - i))
        assert same_words < 0.6 and same_words < other_words - 0.25, (same_words, other_words)
    assert {"L", "AY", "K", "CH"} <= set(seqs["flite", 0])  # "lights", "kitchen"


def test_durations_kept_one_token_per_frame_ms(corpus, quantizer_file):
    _, paths = corpus
    wav, _ = sf.read(paths["flite", 0], dtype="float32")
    wav = torch.from_numpy(wav)
    q30, q10 = load_quantizer(quantizer_file), PocketsphinxPhoneQuantizer(frame_ms=10)
    n30, n10 = len(q30.encode(wav)), len(q10.encode(wav))
    assert abs(n10 - len(wav) / 160) <= 3  # every 10 ms frame has its phone
    assert abs(n30 - n10 / 3) <= 0.15 * n10 / 3
    assert merge_consecutive(q30.encode(wav)) == merge_consecutive(q10.encode(wav)) or n30 < n10


def test_sharded_featurization_equals_one_pass(corpus, quantizer_file, tmp_path):
    """Decoding carries nothing between utterances: shards give the one-pass tokens."""
    root, _ = corpus
    q = load_quantizer(quantizer_file)
    featurize_split(q, str(root), "train", str(tmp_path / "one"), progress=False)
    for rank in range(2):
        featurize_split(q, str(root), "train", str(tmp_path / "two"), rank=rank, nshard=2, progress=False)
    merge_shards(str(root), "train", 2, out_dir=str(tmp_path / "two"))
    one = (tmp_path / "one" / "train.units").read_text()
    assert one == (tmp_path / "two" / "train.units").read_text() and len(one.splitlines()) == 6


def test_an_utterance_gives_its_tokens_whatever_was_decoded_before(words_file):
    """The decoder carries nothing from one utterance to the next (pocketsphinx's own
    would: its noise and cepstral-mean estimates): decoding A, B, A gives A's tokens
    twice, as a fresh quantizer gives them (slu-kd-predict decodes one wav alone)."""
    word_lm = load_quantizer(words_file).word_lm
    q, fresh = (PocketsphinxPhoneQuantizer(word_lm=word_lm, phone_tokens=0) for _ in range(2))  # durations: boundaries show
    slow, fast = (torch.from_numpy(synthesize(SENTENCES[0], Speaker("flite", "slt", "", rate, 50, "white", 30.0, 0.5),
                                              seed=0)) for rate in (120, 220))
    first = q.encode(slow)
    q.encode(fast)
    assert q.encode(slow) == first == fresh.encode(slow)


def test_file_of_another_acoustic_model_is_refused(quantizer_file, tmp_path):
    state = torch.load(quantizer_file, weights_only=True)
    state["fingerprint"] = "0123456789abcdef"
    torch.save(state, tmp_path / "other.pt")
    q = load_quantizer(tmp_path / "other.pt")
    with pytest.raises(QuantizerError, match="another pocketsphinx acoustic model"):
        q.encode(torch.zeros(16000))


def test_bad_frame_size_is_refused(tmp_path):
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--decoding", "phones", "--frame-ms", "25",
                          "--out", str(tmp_path / "q.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "multiple of 10 ms" in res.stderr
    assert not os.path.exists(tmp_path / "q.pt")


def test_word_decoding_gives_the_words_phones_in_every_voice(corpus, words_file):
    """Decoded as words, a sentence becomes its dictionary phones whatever the voice."""
    _, paths = corpus
    q = load_quantizer(words_file)
    assert q.decoding == "words"
    expected = {i: [p for w in text.split() for p in read_pronunciations()[w]] for i, text in enumerate(SENTENCES)}
    right = 0
    for (voice, i), path in paths.items():
        phones = [p for p in _phones(q, path) if p != "SIL"]
        right += phones == expected[i]
    assert right >= 5, right  # of 6: espeak-ng's voice may lose a word


def test_word_decoding_needs_transcripts(tmp_path):
    res = subprocess.run([tool("slu-kd-fit-quantizer"), str(tmp_path), "--kind", "pocketsphinx",
                          "--out", str(tmp_path / "q.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "train.txt" in res.stderr and "no transcripts" in res.stderr
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--out", str(tmp_path / "q.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "needs MANIFEST_DIR" in res.stderr
    assert not os.path.exists(tmp_path / "q.pt")


def _read_arpa(text):
    tables, order = {}, 0
    for line in text.splitlines():
        if line.endswith("-grams:"):
            order = int(line[1])
            continue
        parts = line.split("\t")
        if order and len(parts) >= 2:
            tables[tuple(parts[1].split())] = (10 ** float(parts[0]), 10 ** float(parts[2]) if len(parts) > 2 else 1.0)
    return tables


def test_word_lm_is_a_distribution_in_every_context():
    """The back-off weights make P(. | context) sum to 1, seen contexts or not."""
    from slu_kd_plugin.quantize.ngram_lm import arpa_lm

    lm = _read_arpa(arpa_lm([s.split() for s in ("turn on the lights", "turn off the lights", "turn on the music")]))
    vocab = [g[0] for g in lm if len(g) == 1 and g[0] != "<s>"]

    def prob(gram):
        if gram in lm:
            return lm[gram][0]
        return lm.get(gram[:-1], (0, 1.0))[1] * prob(gram[1:])

    for ctx in [("<s>",), ("turn",), ("<s>", "turn"), ("turn", "on"), ("the",), ("music", "lights")]:
        assert abs(sum(prob(ctx + (w,)) for w in vocab) - 1) < 1e-3, ctx


def test_like_keeps_the_units_and_fits_only_a_new_lm(corpus, tmp_path):
    """--like QUANTIZER (a corpus decoded with its own LM over a pretrained dir's units):
    QUANTIZER's frame rate is kept, the LM is the split's; other unit sources are refused."""
    root, _ = corpus
    fit = [tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx"]
    base = tmp_path / "base20.pt"
    assert subprocess.run([*fit, "--decoding", "phones", "--frame-ms", "20", "--out", str(base)], env=ENV).returncode == 0
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "train.txt").write_text("turn off the music\nbring me my socks\n")
    res = subprocess.run([*fit, str(tmp_path / "m"), "--split", "train", "--like", str(base), "--out", str(tmp_path / "own.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    own = load_quantizer(tmp_path / "own.pt")
    assert own.decoding == "words" and own.frame_ms == 20
    assert sorted(line.split()[0] for line in own.word_lm["dict"].splitlines()) == \
        sorted("turn off the music bring me my socks".split())

    kmeans = tmp_path / "kmeans.pt"
    assert subprocess.run([tool("slu-kd-fit-quantizer"), str(root), "--n-clusters", "4", "--max-frames", "2000",
                           "--out", str(kmeans), "--no-progress"], env=ENV, capture_output=True).returncode == 0
    state = torch.load(base, weights_only=True)
    state["fingerprint"] = "0123456789abcdef"
    torch.save(state, tmp_path / "other_am.pt")
    for like, msg in ((kmeans, "--like takes a pocketsphinx quantizer"), (tmp_path / "other_am.pt", "another pocketsphinx acoustic model")):
        res = subprocess.run([*fit, str(tmp_path / "m"), "--like", str(like), "--out", str(tmp_path / "bad.pt")],
                             capture_output=True, text=True, env=ENV)
        assert res.returncode != 0 and str(like) in res.stderr and msg in res.stderr, res.stderr
    assert not (tmp_path / "bad.pt").exists()


def test_topn_is_stored_and_used_old_files_keep_four(words_file, corpus, tmp_path):
    """Word decoding scores 16 Gaussians per codebook unless told otherwise; a file written
    before topn was stored decodes as it did (pocketsphinx's 4); a bad value writes nothing."""
    _, paths = corpus
    q = load_quantizer(words_file)
    assert q.topn == 16 and q._make_decoder().config["topn"] == 16
    state = torch.load(words_file, weights_only=True)
    del state["topn"]
    torch.save(state, tmp_path / "old.pt")
    old = load_quantizer(tmp_path / "old.pt")
    four = PocketsphinxPhoneQuantizer(frame_ms=30, word_lm=q.word_lm, topn=4)
    assert old.topn == 4 and old._make_decoder().config["topn"] == 4
    wav = torch.from_numpy(sf.read(paths["espeak", 0], dtype="float32")[0])
    assert old.encode(wav) == four.encode(wav)
    assert PocketsphinxPhoneQuantizer().topn == 4  # all-phone decoding keeps pocketsphinx's default
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--decoding", "phones",
                          "--topn", "200", "--out", str(tmp_path / "q.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "topn must be 1-128" in res.stderr
    assert not os.path.exists(tmp_path / "q.pt")


def test_phone_tokens_give_the_same_words_the_same_tokens_at_any_speaking_rate(words_file, tmp_path):
    """Word decoding writes each phone as 3 tokens: the same sentence, slow and fast, gives
    one token sequence (with durations kept the fast one is shorter).  A file written
    before phone_tokens was stored keeps durations; --like keeps the tokens per phone; a
    bad value writes nothing."""
    q = load_quantizer(words_file)
    assert q.phone_tokens == 3 and "3 tokens per phone" in q.describe()
    durations = PocketsphinxPhoneQuantizer(frame_ms=30, word_lm=q.word_lm, phone_tokens=0)
    slow, fast = (torch.from_numpy(synthesize(SENTENCES[0], Speaker("flite", "slt", "", rate, 50, "white", 30.0, 0.5),
                                              seed=0)) for rate in (120, 220))
    assert q.encode(slow) == q.encode(fast)
    units = q.encode(slow)
    assert units[:3] == ["SIL"] * 3 and units[3:6] == ["T"] * 3 and len(units) % 3 == 0  # "<s> turn ..."
    assert len(durations.encode(fast)) < len(durations.encode(slow))
    assert merge_consecutive(durations.encode(slow)) == merge_consecutive(units)

    state = torch.load(words_file, weights_only=True)
    del state["phone_tokens"]
    torch.save(state, tmp_path / "old.pt")
    assert load_quantizer(tmp_path / "old.pt").encode(slow) == durations.encode(slow)
    assert PocketsphinxPhoneQuantizer().phone_tokens == 0  # all-phone decoding: durations are heard

    fit = [tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx"]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "train.txt").write_text("turn off the music\n")
    res = subprocess.run([*fit, str(tmp_path / "m"), "--like", str(tmp_path / "old.pt"), "--phone-tokens", "3",
                          "--out", str(tmp_path / "own.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    assert load_quantizer(tmp_path / "own.pt").phone_tokens == 0  # the units the old file's speech BERT knows
    res = subprocess.run([*fit, "--decoding", "phones", "--phone-tokens", "11", "--out", str(tmp_path / "q.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "phone_tokens must be 0 (durations kept) to 10" in res.stderr
    assert not os.path.exists(tmp_path / "q.pt")


def test_prime_ms_decodes_the_start_first_and_keeps_each_utterance_its_own(words_file, corpus, tmp_path):
    """--prime-ms 1000: stored, each utterance's first second decoded before the whole;
    an utterance still gives its tokens whatever was decoded before; files without the
    field and the default do not prime; a bad value writes nothing."""
    _, paths = corpus
    fit = [tool("slu-kd-fit-quantizer"), str(corpus[0]), "--kind", "pocketsphinx", "--split", "train"]
    res = subprocess.run([*fit, "--prime-ms", "1000", "--out", str(tmp_path / "primed.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    primed, fresh = load_quantizer(tmp_path / "primed.pt"), load_quantizer(tmp_path / "primed.pt")
    assert primed.prime_ms == 1000 and "first 1000 ms decoded first" in primed.describe()
    wav = {k: torch.from_numpy(sf.read(p, dtype="float32")[0]) for k, p in paths.items()}
    first = primed.encode(wav["espeak", 0])
    primed.encode(wav["flite", 1])
    assert primed.encode(wav["espeak", 0]) == first == fresh.encode(wav["espeak", 0])
    assert load_quantizer(words_file).prime_ms == 0
    # the primed decoder starts the utterance with other estimates: other word boundaries
    word_lm = primed.word_lm
    assert PocketsphinxPhoneQuantizer(word_lm=word_lm, phone_tokens=0, prime_ms=1000).segments(wav["flite", 0]) != \
        PocketsphinxPhoneQuantizer(word_lm=word_lm, phone_tokens=0).segments(wav["flite", 0])
    res = subprocess.run([*fit, "--prime-ms", "-5", "--out", str(tmp_path / "bad.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "prime_ms must be 0 (off) to 5000" in res.stderr
    assert not os.path.exists(tmp_path / "bad.pt")


def test_phrase_grammar_makes_every_training_phrase_equally_likely():
    """phrase_fsg: each distinct phrase (a phrase inside another, repeats) one path from the
    start to the final state, all equally likely; every state's arcs sum to 1."""
    from slu_kd_plugin.quantize.pocketsphinx_phones import phrase_fsg

    phrases = [s.split() for s in ("turn on", "turn on the lights", "stop", "stop", "turn off the lights")]
    arcs, final = {}, None
    for line in phrase_fsg(phrases).splitlines():
        parts = line.split()
        if parts[0] == "FINAL_STATE":
            final = int(parts[1])
        if parts[0] == "TRANSITION":
            arcs.setdefault(int(parts[1]), []).append((int(parts[2]), float(parts[3]), parts[4] if len(parts) > 4 else None))
    for state, out in arcs.items():
        assert abs(sum(p for _, p, _ in out) - 1) < 1e-6, state

    def paths(state, words, prob):
        if state == final:
            yield " ".join(words), prob
        for to, p, word in arcs.get(state, ()):
            yield from paths(to, words + [word] if word else words, prob * p)

    found = dict(paths(0, [], 1.0))
    assert set(found) == {"turn on", "turn on the lights", "stop", "turn off the lights"}
    assert all(abs(p - 1 / 4) < 1e-6 for p in found.values()), found


def test_phrase_decoding_gives_training_phrases_and_the_trigram_where_none_fits(corpus, words_file, tmp_path):
    """--decoding phrases: each recording decodes as the phones of one training phrase (its
    own in every voice but at most one); silence, which no phrase fits, gets exactly the
    trigram decoding's tokens; --like keeps the file's units and refits both."""
    root, paths = corpus
    fit = [tool("slu-kd-fit-quantizer"), str(root), "--kind", "pocketsphinx", "--split", "train"]
    res = subprocess.run([*fit, "--decoding", "phrases", "--second-opinion", "none", "--topn", "16",
                          "--out", str(tmp_path / "ph.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    q = load_quantizer(tmp_path / "ph.pt")
    assert q.decoding == "phrases" and "training-phrase" in q.describe()
    prons = read_pronunciations()
    spoken = {text: [p for w in text.split() for p in prons[w]] for text in (root / "train.txt").read_text().splitlines()}
    decoded = {key: [p for p in _phones(q, path) if p != "SIL"] for key, path in paths.items()}
    assert all(phones in spoken.values() for phones in decoded.values()), decoded
    assert sum(decoded[voice, i] == spoken[SENTENCES[i]] for voice, i in paths) >= 5, decoded
    assert q.encode(torch.zeros(16000)) == load_quantizer(words_file).encode(torch.zeros(16000))

    res = subprocess.run([*fit, "--decoding", "phrases", "--second-opinion", "none", "--like", str(tmp_path / "ph.pt"),
                          "--out", str(tmp_path / "own.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    own = load_quantizer(tmp_path / "own.pt")
    assert own.decoding == "phrases" and own.phone_tokens == q.phone_tokens and own.word_lm == q.word_lm
    res = subprocess.run([tool("slu-kd-fit-quantizer"), "--kind", "pocketsphinx", "--decoding", "phones",
                          "--like", str(tmp_path / "ph.pt"), "--out", str(tmp_path / "bad.pt")],
                         capture_output=True, text=True, env=ENV)
    assert res.returncode != 0 and "needs --decoding words or phrases" in res.stderr and not (tmp_path / "bad.pt").exists()


def test_second_opinion_overrules_pocketsphinx_only_by_its_margin(corpus, words_file, tmp_path):
    """--decoding phrases asks Moonshine by default: the file records it (margin, model
    fingerprint, topn 16); every recording gives a training phrase's phones, its own in
    every voice; Moonshine's phrase replaces pocketsphinx's only when it is likelier by more
    than the margin; its beam search finds the phrase teacher-forcing every phrase ranks
    first; bad settings and a missing or other model are refused with nothing written."""
    from slu_kd_plugin.quantize.moonshine import MoonshinePhraseScorer
    from slu_kd_plugin.quantize.pocketsphinx_phones import fsg_phrases

    root, paths = corpus  # words_file: its train.txt, the two sentences and two others
    fit = [tool("slu-kd-fit-quantizer"), str(root), "--kind", "pocketsphinx", "--split", "train", "--decoding", "phrases"]
    res = subprocess.run([*fit, "--out", str(tmp_path / "ms.pt")], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    q = load_quantizer(tmp_path / "ms.pt")
    assert q.second_opinion["kind"] == "moonshine" and q.second_opinion["margin"] == 4.0
    assert len(q.second_opinion["fingerprint"]) == 16 and q.topn == 16 and "Moonshine" in q.describe()
    prons = read_pronunciations()
    spoken = [[p for w in text.split() for p in prons[w]] for text in SENTENCES]
    for (voice, i), path in paths.items():
        assert [p for p in _phones(q, path) if p != "SIL"] == spoken[i], (voice, i)

    phrases = fsg_phrases(q.word_lm["fsg"])
    assert set(phrases) == {tuple(t.split()) for t in (root / "train.txt").read_text().splitlines()}
    scorer = MoonshinePhraseScorer(phrases)
    other = tuple(SENTENCES[1].split())
    for (voice, i), path in paths.items():
        wav, _ = sf.read(path, dtype="float32")
        states = scorer.encode(wav)
        ranked = sorted(range(len(phrases)), key=lambda k: -scorer.logprob(states, k))
        assert scorer.best(states)[0] == ranked[0] and phrases[ranked[0]] == tuple(SENTENCES[i].split()), voice
        if i == 0:
            lead = scorer.logprob(states, ranked[0]) - scorer.logprob(states, phrases.index(other))
            assert scorer.overrule(wav, other, margin=lead - 0.01) == phrases[ranked[0]]
            assert scorer.overrule(wav, other, margin=lead + 0.01) == other
            assert scorer.overrule(wav, None, margin=1e9) == phrases[ranked[0]]  # pocketsphinx found none

    for bad, message in ((["--decoding", "words", "--second-opinion", "moonshine"], "it needs --decoding phrases"),
                         (["--second-opinion-margin", "-1"], "margin must be >= 0 nats"),
                         (["--second-opinion", "none", "--second-opinion-margin", "2"], "needs a second opinion")):
        res = subprocess.run([*fit, *bad, "--out", str(tmp_path / "bad.pt")], capture_output=True, text=True, env=ENV)
        assert res.returncode != 0 and message in res.stderr, res.stderr
        assert not (tmp_path / "bad.pt").exists()
    (tmp_path / "empty").mkdir()
    res = subprocess.run([*fit, "--out", str(tmp_path / "bad.pt")], capture_output=True, text=True,
                         env=dict(ENV, SLU_KD_MOONSHINE_DIR=str(tmp_path / "empty")))
    assert res.returncode != 0 and "scripts/setup.sh fetches it" in res.stderr and not (tmp_path / "bad.pt").exists()

    state = q.state_dict()
    state["second_opinion"] = dict(state["second_opinion"], fingerprint="0" * 16)
    with pytest.raises(QuantizerError, match="another Moonshine model"):
        PocketsphinxPhoneQuantizer.from_state(state, path="other.pt").encode(torch.zeros(16000))
    del state["second_opinion"]  # a file written before the option: pocketsphinx alone
    assert PocketsphinxPhoneQuantizer.from_state(state).second_opinion is None
