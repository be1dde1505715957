"""DeepSpeech2 block over speech-BERT hidden states (PAPER.md, "Model").

The speech BERT's feature axis plays the part of DeepSpeech2's frequency axis:
``(B, T, D)`` states are read as a one-channel ``D x T`` "spectrogram", go through
two length-masked Conv2d → BN → Hardtanh(0, 20) layers (time downsampled ×2), then
through bidirectional LSTMs whose two directions are summed, with BatchNorm over the
features before every LSTM but the first.

Padding never leaks, not even into BatchNorm statistics: after each conv the padded
time steps are zeroed (as DeepSpeech2's MaskConv does) and the conv BatchNorms see
only real frames; so do the BatchNorms between LSTMs, and each LSTM direction reads
a sequence's real frames before any padding (`SummedBiLSTM`: the same guarantee as
packed sequences, without their CPU cost). Hence, in eval mode, a sequence's output
does not depend on what it is batched with, and in training mode it does not depend
on how much padding the batch carries.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from fairseq.dataclass import FairseqDataclass

# (frequency, time) kernel and stride of each conv, as in DeepSpeech2 and the paper.
PAPER_CONV_KERNELS = ((41, 11), (21, 11))
PAPER_CONV_STRIDES = ((2, 2), (2, 1))


@dataclass
class DS2Config(FairseqDataclass):
    ds2_conv_channels: int = field(
        default=32, metadata={"help": "output channels of both DS2 convolutions (paper: 32)"}
    )
    ds2_lstm_layers: int = field(
        default=5, metadata={"help": "number of bidirectional LSTM layers (paper: 5)"}
    )
    ds2_lstm_hidden: int = field(
        default=768,
        metadata={"help": "LSTM hidden size; the two directions are summed, so this is "
                          "also the block's output dim (paper: 768)"},
    )
    ds2_dropout: float = field(
        default=0.0,
        metadata={"help": "dropout on each LSTM layer's output (not in the paper; 0 "
                          "reproduces it)"},
    )


# Sizes by name, as ds2_* kwargs for DS2Block.build(input_dim, **DS2_PRESETS[name]).
DS2_PRESETS = {
    # The paper's block (~80M parameters over 768-dim states: ~14 s per fwd+bwd step
    # of 32 x 250 frames on 2 CPU cores).
    "paper": dict(ds2_conv_channels=32, ds2_lstm_layers=5, ds2_lstm_hidden=768, ds2_dropout=0.0),
    # A CPU demo over 128-dim states: the paper's convs, 2 BiLSTM layers of 128.
    "small": dict(ds2_conv_channels=32, ds2_lstm_layers=2, ds2_lstm_hidden=128, ds2_dropout=0.0),
    # Unit tests: 2 layers so the between-LSTM BatchNorm is exercised.
    "tiny": dict(ds2_conv_channels=4, ds2_lstm_layers=2, ds2_lstm_hidden=16, ds2_dropout=0.0),
}


# FairseqDataclass adds a private `_name` field; the ds2_* options are the public ones.
_DS2_OPTIONS = tuple(f.name for f in dataclasses.fields(DS2Config) if not f.name.startswith("_"))


def _real_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True on real (non-padded) steps of right-padded sequences."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def _conv_time_lengths(conv: nn.Conv2d, lengths: torch.Tensor) -> torch.Tensor:
    """Output length along time (the conv's last axis) for each input length."""
    k, s, p = conv.kernel_size[1], conv.stride[1], conv.padding[1]
    return torch.div(lengths + 2 * p - k, s, rounding_mode="floor") + 1


def _clamp_kernel(kernel: int, size: int) -> int:
    """Largest odd kernel <= both `kernel` and the input extent `size`.

    Why: over a small feature dim (e.g. 8) a 41-wide kernel would mostly convolve
    the zero padding. With 'same' padding (k // 2) an odd kernel keeps the output
    extent at ceil(size / stride) whether it was clamped or not.
    """
    limit = size if size % 2 else size - 1
    return max(1, min(kernel, limit))


class DS2Block(nn.Module):
    """DeepSpeech2 convs + summed-direction BiLSTMs over (B, T, D) hidden states.

    forward(x (B,T,D), padding_mask (B,T) True=pad, right-padded) ->
        (out (B,T',H), out_padding_mask (B,T')), T' = ceil(T/2) for the paper strides.
    Kernels and strides are (frequency, time) pairs, one per conv; kernels must be
    odd (padding is k // 2, which gives the paper's (20,5) and (10,5)), and their
    frequency extents are clamped to the feature dim they see (`_clamp_kernel`).
    """

    def __init__(
        self,
        input_dim: int,
        conv_channels: int = 32,
        lstm_layers: int = 5,
        lstm_hidden: int = 768,
        dropout: float = 0.0,
        conv_kernels: Sequence[Tuple[int, int]] = PAPER_CONV_KERNELS,
        conv_strides: Sequence[Tuple[int, int]] = PAPER_CONV_STRIDES,
    ):
        super().__init__()
        if len(conv_kernels) != len(conv_strides) or lstm_layers < 1:
            raise ValueError("need one stride per conv kernel and at least one LSTM layer")
        self.input_dim, self.hidden = input_dim, lstm_hidden
        self.convs, self.conv_bns = nn.ModuleList(), nn.ModuleList()
        freq, in_channels = input_dim, 1
        for (k_freq, k_time), (s_freq, s_time) in zip(conv_kernels, conv_strides):
            if k_freq % 2 == 0 or k_time % 2 == 0:
                raise ValueError(f"DS2 conv kernels must be odd, got {(k_freq, k_time)}")
            k_freq = _clamp_kernel(k_freq, freq)
            self.convs.append(nn.Conv2d(
                in_channels, conv_channels, (k_freq, k_time), (s_freq, s_time),
                (k_freq // 2, k_time // 2)))
            self.conv_bns.append(nn.BatchNorm1d(conv_channels))
            freq, in_channels = (freq - 1) // s_freq + 1, conv_channels
        self.output_freq = freq
        self.act = nn.Hardtanh(0.0, 20.0)
        self.lstm_bns, self.lstms = nn.ModuleList(), nn.ModuleList()
        rnn_in = conv_channels * freq
        for i in range(lstm_layers):
            self.lstm_bns.append(nn.BatchNorm1d(rnn_in) if i > 0 else nn.Identity())
            self.lstms.append(SummedBiLSTM(rnn_in, lstm_hidden))
            rnn_in = lstm_hidden
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def build(cls, input_dim: int, cfg: Optional[Any] = None, **overrides) -> "DS2Block":
        """Build from a DS2Config, a mapping, or any object with ds2_* attributes
        (e.g. a model config that carries them); ds2_* kwargs override it, so
        ``DS2Block.build(128, **DS2_PRESETS["small"])`` works without a cfg."""
        unknown = set(overrides) - set(_DS2_OPTIONS)
        if unknown:
            raise TypeError(f"unknown DS2 options {sorted(unknown)}; expected {_DS2_OPTIONS}")
        defaults = DS2Config()
        values = {}
        for name in _DS2_OPTIONS:
            if isinstance(cfg, Mapping):
                values[name] = cfg.get(name, getattr(defaults, name))
            else:
                values[name] = getattr(cfg, name, getattr(defaults, name))
        values.update(overrides)
        return cls(
            input_dim,
            conv_channels=values["ds2_conv_channels"],
            lstm_layers=values["ds2_lstm_layers"],
            lstm_hidden=values["ds2_lstm_hidden"],
            dropout=values["ds2_dropout"],
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Number of output steps for input lengths (the convs' time arithmetic)."""
        for conv in self.convs:
            lengths = _conv_time_lengths(conv, lengths)
        return lengths

    def forward(
        self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        lengths = self._input_lengths(x, padding_mask)
        # the caller's padded frames may hold anything; the convs must see zeros there
        x = x.masked_fill(~_real_mask(lengths, x.size(1))[..., None], 0.0)
        x = x.transpose(1, 2).unsqueeze(1)  # (B, 1, D, T): features as "frequency"
        for conv, bn in zip(self.convs, self.conv_bns):
            x = conv(x)
            lengths = _conv_time_lengths(conv, lengths)
            real = _real_mask(lengths, x.size(-1))
            # BN over (N_real_frames, C, F): stats never include padding, which -> 0
            # (MaskConv), and Hardtanh(0, 20) keeps it 0 for the next conv
            x = _apply_to_real(bn, x.permute(0, 3, 1, 2), real).permute(0, 2, 3, 1)
            x = self.act(x)
        batch, channels, freq, steps = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, steps, channels * freq)
        out = self._lstm_stack(x, lengths)
        return out, ~_real_mask(lengths, steps)

    @staticmethod
    def _input_lengths(x: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        if padding_mask is None:
            return torch.full((x.size(0),), x.size(1), dtype=torch.long, device=x.device)
        lengths = (~padding_mask).sum(dim=1)
        # the LSTM direction trick and the conv length arithmetic assume right padding
        if not torch.equal(padding_mask, ~_real_mask(lengths, padding_mask.size(1))):
            raise ValueError("DS2Block: padding_mask must mark right padding (True = pad)")
        if bool((lengths < 1).any()):
            raise ValueError("DS2Block: every sequence needs at least one real frame")
        return lengths

    def _lstm_stack(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = _real_mask(lengths, x.size(1))
        reverse_index = _reverse_index(lengths, x.size(1))
        for bn, lstm in zip(self.lstm_bns, self.lstms):
            x = _apply_to_real(bn, x, real)  # BN stats over real frames; padding -> 0
            x = self.dropout(lstm(x, reverse_index))
        return x.masked_fill(~real[..., None], 0.0)


class SummedBiLSTM(nn.Module):
    """Bidirectional LSTM, the two directions summed, over right-padded (B, T, F).

    Why not nn.LSTM(bidirectional=True) on a PackedSequence: on CPU packed input
    leaves the fused oneDNN kernel for a per-step loop, ~10x slower fwd+bwd (the
    "small" preset: 11.7 s vs ~1 s per step of 32 x 250 frames). Here each direction
    is a unidirectional LSTM over a padded tensor whose real frames come first — the
    backward one reads every sequence reversed within its length — so padding is
    only ever read after a sequence's real frames and never reaches their outputs.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, reverse_index: torch.Tensor) -> torch.Tensor:
        forward_out, _ = self.forward_lstm(x)
        backward_out, _ = self.backward_lstm(_reverse(x, reverse_index))
        return forward_out + _reverse(backward_out, reverse_index)


def _reverse_index(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) time index reversing each sequence within its length, padding in place."""
    steps = torch.arange(max_len, device=lengths.device)[None, :]
    return torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)


def _reverse(x: torch.Tensor, reverse_index: torch.Tensor) -> torch.Tensor:
    """Per-sequence time reversal of (B, T, F); it is its own inverse."""
    return x.gather(1, reverse_index[..., None].expand_as(x))


def _apply_to_real(module: nn.Module, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """module over the real frames of (B, T, ...) only (N_real, ...); padding -> 0."""
    values = module(x[real])
    # zeros shaped and typed after the module's output (autocast may change dtype)
    out = values.new_zeros((*real.shape, *values.shape[1:]))
    out[real] = values
    return out
