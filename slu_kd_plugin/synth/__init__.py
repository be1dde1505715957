"""Offline synthetic corpora for the demo and the tests (espeak-ng / flite TTS).

- ``commands``: the 31 Fluent Speech Commands intents and their phrasings.
- ``voices``: a seeded pool of synthetic speakers.
- ``tts``: one utterance as a 16 kHz recording; the parallel, atomic renderer.
- ``fsc_like`` / ``librispeech_like``: whole corpora in those corpora's real layouts.

Nothing is imported here: each submodule is used on its own.
"""
