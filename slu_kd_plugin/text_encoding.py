"""Tokenize transcripts for the text teacher.

* ``spm``: a sentencepiece model trained here on lower-cased transcripts (the offline
  default, for a text model trained from scratch);
* ``gpt2``: fairseq RoBERTa's GPT-2 BPE from local ``encoder.json`` / ``vocab.bpe``
  files (no download), with roberta.base's ``dict.txt`` as the text dictionary;
  lower-cased first by default (the paper's choice), or as written (``--text-case keep``).
"""
import os


class SpmEncoder:
    def __init__(self, model_path):
        import sentencepiece as spm

        self.path = model_path
        self.sp = spm.SentencePieceProcessor(model_file=model_path)

    def encode(self, text):
        return " ".join(self.sp.encode(text.lower(), out_type=str))

    def dictionary_lines(self):
        """Every piece but the control symbols, so the dict never depends on counts."""
        pieces = (self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size()))
        return [f"{p} 1" for p in pieces if p not in ("<unk>", "<s>", "</s>", "<pad>")]


def train_spm(text_files, model_prefix, vocab_size):
    """Fit a unigram sentencepiece model on lower-cased lines of ``text_files``
    (single-threaded, so the result is the same on every run)."""
    import sentencepiece as spm

    lines = [line.strip().lower() for path in text_files for line in open(path, encoding="utf-8")]
    tmp = model_prefix + ".corpus.txt"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(line for line in lines if line) + "\n")
    try:
        spm.SentencePieceTrainer.train(
            input=tmp, model_prefix=model_prefix, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, hard_vocab_limit=False,
            minloglevel=2, num_threads=1,
        )
    finally:
        os.remove(tmp)
    return model_prefix + ".model"


class Gpt2Encoder:
    """GPT-2 BPE ids of a transcript.  ``lowercase``: lower-case it first, as the paper did
    (its transcripts were LibriSpeech's upper-case ones); roberta.base itself is cased."""

    def __init__(self, encoder_json, vocab_bpe, lowercase=True):
        from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

        for path in (encoder_json, vocab_bpe):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: GPT-2 BPE file not found (it cannot be downloaded here)")
        self.bpe = get_encoder(encoder_json, vocab_bpe)
        self.lowercase = lowercase

    def encode(self, text):
        return " ".join(map(str, self.bpe.encode(text.lower() if self.lowercase else text)))
