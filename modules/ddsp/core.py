"""Signal helpers shared by the DDSP processors: frame-to-sample interpolation, masks, scalings,
FFT convolution and a noise source that is fixed at inference.

Shapes: frame-rate tensors are `[B, C, T]` with a frame mask `[B, 1, T]`; sample-rate tensors are
`[B, 1, S]` with `S = T * hop_size`.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

# Eval-mode noise is drawn block by block, block b from seed b, so that sample n's noise depends on n
# alone (not on the length of the call or on the batch's padding).
NOISE_BLOCK_SAMPLES = 16384


def hold_last_valid(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Replace padded frames of `x [B, C, T]` by each item's last valid frame (`mask [B, 1, T]`).

    Interpolating to samples looks one frame ahead; holding the last frame makes an item's samples in
    a padded batch equal to the item's alone (where interpolation clamps at the edge).
    """
    if mask is None:
        return x
    last_index = (mask.sum(dim=2, keepdim=True).long() - 1).clamp(min=0)  # [B, 1, 1]
    last = x.gather(2, last_index.expand(-1, x.size(1), 1))  # [B, C, 1]
    return x * mask + last * (1.0 - mask)


def frames_to_samples(x: torch.Tensor, hop_size: int) -> torch.Tensor:
    """Frame-rate `[B, C, T]` -> sample-rate `[B, C, T * hop]` by linear interpolation between frame centres."""
    return F.interpolate(x, scale_factor=hop_size, mode="linear", align_corners=False)


def hold_frames(x: torch.Tensor, hop_size: int) -> torch.Tensor:
    """Frame-rate `[B, C, T]` -> `[B, C, T * hop]`, each frame's value held over its hop (no interpolation)."""
    return torch.repeat_interleave(x, hop_size, dim=2)


def sample_mask(mask: torch.Tensor | None, hop_size: int) -> torch.Tensor | None:
    """Frame mask `[B, 1, T]` -> sample mask `[B, 1, T * hop]` (None stays None)."""
    return None if mask is None else hold_frames(mask, hop_size)


def apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's amplitude scaling: `max_value * sigmoid(x) ** log(exponent) + threshold`, positive and smooth in dB."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


SCALES = ("exp_sigmoid", "softplus", "identity")


def scale_control(x: torch.Tensor, scale: str) -> torch.Tensor:
    """Raw network output -> a non-negative control: `exp_sigmoid` (DDSP), `softplus`, or `identity` (already scaled)."""
    if scale == "exp_sigmoid":
        return exp_sigmoid(x)
    if scale == "softplus":
        return F.softplus(x)
    if scale == "identity":
        return x
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def fft_convolve(signal: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution of `signal [B, C, S]` with `kernel [K]` (or `[B, C, K]`), cut to `S` samples.

    Output sample n depends on input samples <= n only, so padding after an item never reaches it.
    """
    length = signal.size(-1) + kernel.size(-1) - 1
    n_fft = 1 << (length - 1).bit_length()
    spectrum = torch.fft.rfft(signal.float(), n_fft) * torch.fft.rfft(kernel.float(), n_fft)
    return torch.fft.irfft(spectrum, n_fft)[..., : signal.size(-1)].to(signal.dtype)


def white_noise(shape: tuple[int, ...], training: bool, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gaussian noise `shape = (..., S)`. In training it is fresh on every call; otherwise sample n
    is the same number in every call and every batch row, so a render depends on its inputs alone (a
    phrase sounds the same alone or inside a padded batch)."""
    if training:
        return torch.randn(shape, device=device, dtype=dtype)
    n_samples = shape[-1]
    blocks = []
    for block in range(math.ceil(n_samples / NOISE_BLOCK_SAMPLES)):
        generator = torch.Generator(device="cpu").manual_seed(block)
        blocks.append(torch.randn(NOISE_BLOCK_SAMPLES, generator=generator))
    sequence = torch.cat(blocks)[:n_samples] if blocks else torch.zeros(0)
    return sequence.to(device=device, dtype=dtype).expand(shape).contiguous()
