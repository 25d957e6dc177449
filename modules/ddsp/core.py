"""Signal helpers shared by the DDSP processors: frame-to-sample interpolation, masks, scalings,
FFT convolution and a noise source that is fixed at inference.

Shapes: frame-rate tensors are `[B, C, T]` with a frame mask `[B, 1, T]`; sample-rate tensors are
`[B, 1, S]` with `S = T * hop_size`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

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


# ---- export-friendly equivalents of the FFT ops -------------------------------------------------------
# ONNX (opset 17) has no complex tensors, and PyTorch's exporter cannot write `torch.fft.*` or
# `torch.polar`. While a graph is exported (or inside `export_ops()`), the processors compute the same
# transforms as matrix products with a fixed DFT basis, overlap-adds as transposed convolutions and FFT
# convolutions as direct ones: the same results up to float rounding (tests/modules/ddsp/test_export_ops.py),
# at a cost that only matters for long kernels. Eager inference keeps the FFT ops (bit-identical renders).
_FORCE_EXPORT_OPS = [False]


def export_ops_enabled() -> bool:
    """True while exporting to ONNX (or inside `export_ops()`): use the DFT-matmul paths."""
    return _FORCE_EXPORT_OPS[0] or torch.onnx.is_in_onnx_export()


@contextlib.contextmanager
def export_ops() -> Iterator[None]:
    """Run the export paths eagerly (to compare them with the FFT ones)."""
    previous = _FORCE_EXPORT_OPS[0]
    _FORCE_EXPORT_OPS[0] = True
    try:
        yield
    finally:
        _FORCE_EXPORT_OPS[0] = previous


def dft_basis(n_in: int, n_fft: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """`cos, sin [n_in, n_fft // 2 + 1]` of `2 pi k n / n_fft` (float64 angles, float32 values): `x @ cos - i x @ sin`
    is `torch.fft.rfft(x, n_fft)` for `x [..., n_in]` (n_in <= n_fft: zero-padded)."""
    n = torch.arange(n_in, dtype=torch.float64).unsqueeze(1)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(0)
    angle = 2 * math.pi * torch.remainder(n * k, n_fft) / n_fft
    return torch.cos(angle).float().to(device), torch.sin(angle).float().to(device)


def inverse_dft_basis(n_fft: int, n_out: int | None = None, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """`cos, sin [n_fft // 2 + 1, n_out]` such that `(re @ cos - im @ sin)` is `torch.fft.irfft(re + i im, n_fft)[..., :n_out]`
    (the Hermitian weights 1, 2, ..., 2(, 1) and the 1 / n_fft folded in)."""
    n_out = n_fft if n_out is None else n_out
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(n_out, dtype=torch.float64).unsqueeze(0)
    weight = torch.full((n_fft // 2 + 1, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    angle = 2 * math.pi * torch.remainder(k * n, n_fft) / n_fft
    return (torch.cos(angle) * weight / n_fft).float().to(device), (torch.sin(angle) * weight / n_fft).float().to(device)


def real_dft(x: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`torch.fft.rfft(x, n_fft)` as `(real, imag)` `[..., n_fft // 2 + 1]`, by a matrix product."""
    cos, sin = dft_basis(int(x.shape[-1]), n_fft, x.device)  # a fixed size (hop, window): a constant of the graph
    x = x.float()
    return x @ cos, -(x @ sin)


def inverse_real_dft(real: torch.Tensor, imag: torch.Tensor | None, n_fft: int, n_out: int | None = None) -> torch.Tensor:
    """`torch.fft.irfft(real + i imag, n_fft)[..., :n_out]` by a matrix product (`imag` None: zero)."""
    cos, sin = inverse_dft_basis(n_fft, n_out, real.device)
    out = real.float() @ cos
    return out if imag is None else out - imag.float() @ sin


def overlap_add(frames: torch.Tensor, hop_size: int) -> torch.Tensor:
    """`frames [B, T, L]` -> `[B, 1, (T - 1) * hop + L]`, frame t added at sample t * hop (`F.fold`'s overlap-add,
    as a transposed convolution with an identity kernel)."""
    length = int(frames.shape[-1])  # a fixed size (a frame's length): a constant of the graph
    eye = torch.eye(length, dtype=frames.dtype, device=frames.device).unsqueeze(1)  # [L, 1, L]
    return F.conv_transpose1d(frames.transpose(1, 2), eye, stride=hop_size)


def direct_convolve(signal: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`fft_convolve` for a shared `kernel [K]` as a direct causal convolution (each channel alone)."""
    batch, channels, length = signal.shape
    flipped = kernel.float().flip(-1).view(1, 1, -1)
    out = F.conv1d(F.pad(signal.float().reshape(batch * channels, 1, length), (kernel.size(-1) - 1, 0)), flipped)
    return out.reshape(batch, channels, length).to(signal.dtype)


def fft_convolve(signal: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution of `signal [B, C, S]` with `kernel [K]` (or `[B, C, K]`), cut to `S` samples.

    Output sample n depends on input samples <= n only, so padding after an item never reaches it.
    A shared kernel is convolved directly in the export paths (`export_ops_enabled`).
    """
    if kernel.dim() == 1 and export_ops_enabled():
        return direct_convolve(signal, kernel)
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
