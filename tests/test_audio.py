"""slu_kd_plugin.audio: 16 kHz mono float32 out, AudioError naming the file otherwise."""
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from slu_kd_plugin.audio import (
    SAMPLE_RATE,
    AudioError,
    audio_num_samples,
    read_audio,
    resampled_length,
)


def write_audio(path, n, rate=SAMPLE_RATE, channels=1, seed=0):
    data = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, channels)).astype("float32")
    sf.write(str(path), data, rate)
    return data


def test_16k_mono_wav_is_returned_as_is(tmp_path):
    data = write_audio(tmp_path / "a.wav", 1600)
    wav = read_audio(tmp_path / "a.wav")
    assert wav.dtype == torch.float32 and wav.dim() == 1 and len(wav) == 1600
    # 16-bit PCM round trip
    assert torch.allclose(wav, torch.from_numpy(data[:, 0]), atol=1e-4)
    assert audio_num_samples(tmp_path / "a.wav") == 1600


def test_8k_stereo_is_averaged_and_resampled(tmp_path):
    data = write_audio(tmp_path / "s.wav", 801, rate=8000, channels=2)
    wav = read_audio(tmp_path / "s.wav")
    mono = torch.from_numpy(data.mean(axis=1))
    expected = AF.resample(mono, 8000, SAMPLE_RATE)
    assert wav.shape == expected.shape == (1602,)
    assert torch.allclose(wav, expected, atol=1e-3)
    assert audio_num_samples(tmp_path / "s.wav") == len(wav)


@pytest.mark.parametrize("rate,n", [(22050, 2205), (44100, 4411), (11025, 1), (48000, 4799)])
def test_header_length_matches_decoded_length(tmp_path, rate, n):
    path = tmp_path / "x.flac"
    write_audio(path, n, rate=rate)
    assert audio_num_samples(path) == len(read_audio(path))


def test_resampled_length_mirrors_torchaudio():
    for rate in (8000, 22050, 44100):
        for n in (1, 999, 123457):
            assert resampled_length(n, rate) == AF.resample(torch.zeros(n), rate, SAMPLE_RATE).shape[0]


def test_no_resample_refuses_other_rates(tmp_path):
    path = tmp_path / "s.wav"
    write_audio(path, 800, rate=8000)
    for fn in (read_audio, audio_num_samples):
        with pytest.raises(AudioError, match=r"8000 Hz") as e:
            fn(path, resample=False)
        assert str(e.value).startswith(str(path))


def _bad_files(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"this is not audio at all" * 10)
    (tmp_path / "zero_bytes.wav").write_bytes(b"")
    sf.write(str(tmp_path / "no_frames.wav"), np.zeros((0, 1), "float32"), SAMPLE_RATE)
    return {
        "missing.wav": "not found",
        "garbage.wav": "unreadable",
        "zero_bytes.wav": "unreadable",
        "no_frames.wav": "empty",
    }


@pytest.mark.parametrize("fn", [read_audio, audio_num_samples])
def test_bad_files_raise_audio_error_starting_with_path(tmp_path, fn):
    for name, reason in _bad_files(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(AudioError) as e:
            fn(path)
        assert str(e.value).startswith(f"{path}: "), str(e.value)
        assert reason in e.value.reason
        assert isinstance(e.value, ValueError)
