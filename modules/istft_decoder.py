"""A Vocos-style decoder (Siuzdak 2023): ConvNeXt blocks at the frame rate predict an STFT, and an
inverse STFT gives the samples — no upsampling network, so it costs a few frame-rate layers per frame.

    z [B, C, T] ─ embed ─ ConvNeXt x n_layers ─ LayerNorm ─ Linear ─▶ log|R|, ∠R, log H   (each [B, n_fft/2+1, T])
    f0 [B, T] ─ harmonic comb (every harmonic below Nyquist, equal amplitude) ─ STFT ─▶ X [B, n_fft/2+1, T]
    Y = H · X + R  ─ inverse STFT ("same" framing: exactly T * hop samples) ─▶ wav [B, 1, T * hop]

With `harmonic_source` (the default) the network does not invent the periodicity: it shapes a
band-limited pulse train at the given F0 by a per-bin, per-frame gain H (a learnt spectral
envelope; the comb's phase is exact, so the output is at the F0 from the first update) and adds a
residual spectrum R with its own phase for breath and consonants (Vocos's head: magnitude exp(·)
clipped at 100, phase taken as is). Without it, it is Vocos: Y = R.

Framing: frame t is centred on samples t * hop + hop / 2 (`n_fft - hop` even), windows beyond the
mask are left out of the overlap-add and of its normalisation, so a padded batch gives each item
exactly its samples alone.

Export: ONNX has no complex tensors and PyTorch's exporter cannot write `torch.fft` or `torch.polar`,
so while exporting (`modules.ddsp.core.export_ops_enabled`) the STFT is a strided convolution with the
windowed DFT basis and the inverse STFT a transposed convolution with the windowed inverse basis plus
the same window-square normalisation (as Vocos's ONNX exports do): equal up to float rounding.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from modules.ddsp.core import dft_basis, export_ops_enabled, inverse_dft_basis
from modules.ddsp.harmonic import harmonic_comb
from modules.waveform_decoder import DecoderOutput, WaveformDecoder

MAX_MAGNITUDE = 100.0  # Vocos clips exp(log-magnitude) here
COMB_AMPLITUDE = 0.02  # per harmonic: a -34 dBFS pulse train before the learnt gain


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ConvNeXtBlock(nn.Module):
    """Vocos's block on `[B, C, T]`: depthwise conv, LayerNorm, pointwise MLP (GELU), layer scale, residual."""

    def __init__(self, channels: int, intermediate_channels: int, kernel_size: int = 7, layer_scale: float = 0.1) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pointwise_in = nn.Linear(channels, intermediate_channels)
        self.pointwise_out = nn.Linear(intermediate_channels, channels)
        self.layer_scale = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x [B, C, T]`, `mask [B, 1, T]` -> `[B, C, T]` (zero past the mask)."""
        h = self.depthwise(_masked(x, mask)).transpose(1, 2)  # [B, T, C]
        h = self.pointwise_out(F.gelu(self.pointwise_in(self.norm(h)))) * self.layer_scale
        return _masked(x + h.transpose(1, 2), mask)


class ISTFTDecoder(WaveformDecoder):
    """`z [B, C_in, T]` (+ `f0 [B, T]` with `harmonic_source`) -> `DecoderOutput(wav [B, 1, T * hop], None)`.

    Args:
        in_channels: latent width.
        hop_size: samples per frame (the STFT hop).
        sample_rate: output rate in Hz (the comb's harmonics).
        channels: ConvNeXt width.
        intermediate_channels: width of the blocks' pointwise MLP.
        n_layers: ConvNeXt blocks.
        n_fft: STFT size; 0 = 4 * hop. `n_fft - hop` must be even and `n_fft >= 2 * hop`.
        kernel_size: depthwise kernel of the blocks (odd).
        harmonic_source: shape a harmonic comb at the F0 (`forward` then needs `f0`); False = plain Vocos.
        gin_channels: speaker condition width, 0 for none.
    """

    def __init__(
        self,
        in_channels: int,
        hop_size: int,
        sample_rate: int,
        channels: int = 384,
        intermediate_channels: int = 1152,
        n_layers: int = 6,
        n_fft: int = 0,
        kernel_size: int = 7,
        harmonic_source: bool = True,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        n_fft = n_fft or 4 * hop_size
        if n_fft < 2 * hop_size or (n_fft - hop_size) % 2 != 0 or kernel_size % 2 == 0 or n_layers < 1:
            raise ValueError(
                f"need n_fft >= 2 * hop with n_fft - hop even, an odd kernel_size and n_layers >= 1; "
                f"got n_fft={n_fft}, hop={hop_size}, kernel_size={kernel_size}, n_layers={n_layers}"
            )
        self.hop_size = hop_size
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.uses_f0 = harmonic_source
        self.n_bins = n_fft // 2 + 1
        self.embed = nn.Conv1d(in_channels, channels, 7, padding=3)
        self.cond = nn.Conv1d(gin_channels, channels, 1) if gin_channels > 0 else None
        self.embed_norm = nn.LayerNorm(channels, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(channels, intermediate_channels, kernel_size, 1.0 / n_layers) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(channels, eps=1e-6)
        outputs = 3 if harmonic_source else 2  # log|R|, phase of R (, log H)
        self.head = nn.Linear(channels, outputs * self.n_bins)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[: self.n_bins] = -4.0  # the residual starts quiet: the comb carries the first voice
            self.head.bias[2 * self.n_bins :] = -1.0  # and the comb starts at a third of its level (H = e^-1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _stft(self, wave: torch.Tensor) -> torch.Tensor:
        """`[B, 1, T * hop]` -> `[B, n_bins, T]` complex, frame t centred on sample t * hop + hop / 2 (zeros outside)."""
        pad = (self.n_fft - self.hop_size) // 2
        frames = F.pad(wave.squeeze(1), (pad, pad)).unfold(-1, self.n_fft, self.hop_size)  # [B, T, n_fft]
        return torch.fft.rfft(frames * self.window, dim=-1).transpose(1, 2)

    def _istft(self, spectrum: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """`[B, n_bins, T]` complex -> `[B, 1, T * hop]`: windowed overlap-add of the frames inside the mask,
        divided by the summed squared windows of those frames (least-squares inverse of `_stft`)."""
        batch, _, n_frames = spectrum.shape
        frames = torch.fft.irfft(spectrum.transpose(1, 2), n=self.n_fft, dim=-1) * self.window  # [B, T, n_fft]
        weights = self.window.square().expand(batch, n_frames, -1)
        if mask is not None:
            frame_mask = mask.transpose(1, 2)  # [B, T, 1]
            frames, weights = frames * frame_mask, weights * frame_mask
        total = (n_frames - 1) * self.hop_size + self.n_fft
        fold = dict(output_size=(1, total), kernel_size=(1, self.n_fft), stride=(1, self.hop_size))
        summed = F.fold(frames.transpose(1, 2), **fold).reshape(batch, 1, total)
        envelope = F.fold(weights.transpose(1, 2), **fold).reshape(batch, 1, total)
        pad = (self.n_fft - self.hop_size) // 2
        return (summed / envelope.clamp(min=1e-8))[..., pad : pad + n_frames * self.hop_size]

    def _stft_real(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`_stft` as (real, imag) `[B, n_bins, T]`: a strided convolution with the windowed DFT basis."""
        pad = (self.n_fft - self.hop_size) // 2
        cos, sin = dft_basis(self.n_fft, self.n_fft, wave.device)  # [n_fft, n_bins]
        window = self.window.unsqueeze(1)  # [n_fft, 1]
        kernels = torch.cat([(cos * window).t(), -(sin * window).t()]).unsqueeze(1)  # [2 n_bins, 1, n_fft]
        out = F.conv1d(F.pad(wave.float(), (pad, pad)), kernels, stride=self.hop_size)
        return out[:, : self.n_bins], out[:, self.n_bins :]

    def _istft_real(self, real: torch.Tensor, imag: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """`_istft` of `real + i imag` `[B, n_bins, T]`: transposed convolutions with the windowed inverse basis."""
        n_frames = real.size(2)
        cos, sin = inverse_dft_basis(self.n_fft, device=real.device)  # [n_bins, n_fft]
        weights = torch.ones_like(real[:, :1])  # [B, 1, T]
        if mask is not None:
            real, imag, weights = real * mask, imag * mask, weights * mask
        spectrum = torch.cat([real, imag], dim=1)  # [B, 2 n_bins, T]
        kernels = torch.cat([cos * self.window, -sin * self.window]).unsqueeze(1)  # [2 n_bins, 1, n_fft]
        summed = F.conv_transpose1d(spectrum, kernels, stride=self.hop_size)
        envelope = F.conv_transpose1d(weights, self.window.square().view(1, 1, -1), stride=self.hop_size)
        pad = (self.n_fft - self.hop_size) // 2
        return (summed / envelope.clamp(min=1e-8))[..., pad : pad + n_frames * self.hop_size]

    def context_frames(self) -> int:
        """Frames on each side that can change an output frame: the embedding and block convolutions,
        the STFT windows reaching into neighbouring frames (twice: the comb's STFT and the inverse), one of margin."""
        reach = self.embed.kernel_size[0] // 2 + sum(block.depthwise.kernel_size[0] // 2 for block in self.blocks)
        return reach + 2 * -(-self.n_fft // self.hop_size) + 1

    def decode(
        self,
        z: torch.Tensor,
        mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
    ) -> DecoderOutput:
        """`z [B, C_in, T]`, `mask [B, 1, T]`, `g [B, gin, 1]`, `f0 [B, T]` Hz -> `DecoderOutput(wav [B, 1, T * hop], None)`.
        `start_phase [B]` (float64 cycles): the comb's phase before the first sample; `source_noise` is
        ignored (this decoder draws no noise)."""
        self.check_f0(z, f0)
        x = self.embed(_masked(z, mask))  # [B, C, T]
        if self.cond is not None and g is not None:
            x = x + self.cond(g)
        x = self.embed_norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x, mask)
        out = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2).float()  # [B, outputs * n_bins, T]
        log_magnitude, phase = out[:, : self.n_bins], out[:, self.n_bins : 2 * self.n_bins]
        magnitude = torch.exp(log_magnitude).clamp(max=MAX_MAGNITUDE)
        comb = gain = None
        if self.uses_f0:
            gain = torch.exp(out[:, 2 * self.n_bins :].clamp(max=10.0))  # H, a learnt per-bin envelope
            comb = harmonic_comb(f0, self.sample_rate, self.hop_size, mask, COMB_AMPLITUDE, initial_cycles=start_phase)  # [B, 1, T * hop]
        if export_ops_enabled():  # real arithmetic only (see the module docstring)
            real, imag = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
            if comb is not None:
                comb_real, comb_imag = self._stft_real(comb)
                real, imag = real + gain * comb_real, imag + gain * comb_imag
            wav = self._istft_real(real, imag, mask)
        else:
            spectrum = torch.polar(magnitude, phase)  # R
            if comb is not None:
                spectrum = spectrum + gain * self._stft(comb)
            wav = self._istft(spectrum, mask)
        if mask is not None:
            wav = wav * torch.repeat_interleave(mask, self.hop_size, dim=2)
        return DecoderOutput(wav.to(z.dtype), None)
