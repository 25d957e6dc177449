"""The export paths of the FFT-based decoders (modules/ddsp/core.py `export_ops`), and every decoder's
explicit noise, start phase and context (modules/waveform_decoder.py), which exported graphs and
chunked streaming rely on.

- DFT matrix products, the transposed-conv overlap-add and the direct convolution equal `torch.fft`,
  `F.fold` and `fft_convolve`;
- each decoder (hifigan, nsf_hifigan, ddsp with and without a room, istft) renders the same through its
  export path; given the eval-mode noise it renders exactly what it draws itself;
- a latent frame changed at t changes no sample beyond `context_frames()` frames on either side;
- a start phase of k cycles (an integer) changes nothing, and a chunk started at the whole render's
  phase matches it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.ddsp.core import direct_convolve, export_ops, fft_convolve, inverse_real_dft, overlap_add, real_dft
from modules.ddsp.filtered_noise import FilteredNoise
from modules.ddsp.reverb import LearntReverb
from modules.harmonic_source import fixed_source_noise
from tests.modules.factories import make_tiny_generator

HOP = 12
DECODERS = {
    "hifigan": dict(decoder="hifigan"),
    "nsf_hifigan": dict(decoder="nsf_hifigan"),
    "ddsp": dict(decoder="ddsp"),
    "ddsp_reverb": dict(decoder="ddsp", ddsp_chain=tuple(harmonic_plus_noise_chain(n_harmonics=4, n_bands=9, reverb_ir_length=40))),
    "istft": dict(decoder="istft"),
}


def tiny_decoder(name: str):
    return make_tiny_generator(**DECODERS[name]).eval().decoder


def test_dft_products_equal_the_fft_ops():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 30)
    real, imag = real_dft(x, 64)
    spectrum = torch.fft.rfft(x, 64)
    torch.testing.assert_close(real, spectrum.real, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(imag, spectrum.imag, atol=1e-4, rtol=1e-5)
    for n_fft in (64, 63):  # even and odd sizes (a Nyquist bin or none)
        spec = torch.fft.rfft(torch.randn(3, n_fft), n_fft)
        torch.testing.assert_close(inverse_real_dft(spec.real, spec.imag, n_fft), torch.fft.irfft(spec, n_fft), atol=1e-5, rtol=1e-5)
    frames = torch.randn(2, 7, 20)
    folded = F.fold(frames.transpose(1, 2), output_size=(1, 6 * 4 + 20), kernel_size=(1, 20), stride=(1, 4)).reshape(2, 1, -1)
    torch.testing.assert_close(overlap_add(frames, 4), folded, atol=1e-5, rtol=1e-5)
    signal, kernel = torch.randn(2, 1, 500), torch.randn(48)
    torch.testing.assert_close(direct_convolve(signal, kernel), fft_convolve(signal, kernel), atol=1e-4, rtol=1e-4)


def test_filtered_noise_and_room_export_paths_match_with_loud_settings():
    """At the initial biases the noise is ~1e-4: compare where it is loud enough to show an error."""
    torch.manual_seed(1)
    noise_module = FilteredNoise(2400, HOP, n_bands=9, initial_bias=2.0).eval()
    magnitudes = torch.randn(2, 9, 40)
    mask = torch.ones(2, 1, 40)
    mask[1, :, 30:] = 0
    reference = noise_module(magnitudes, mask)
    with export_ops():
        exported = noise_module(magnitudes, mask)
    assert reference.abs().max() > 0.1
    torch.testing.assert_close(exported, reference, atol=1e-5, rtol=1e-4)
    room = LearntReverb(2400, HOP, ir_length=300, initial_gain=0.5)
    audio = torch.randn(1, 1, 40 * HOP)
    with torch.no_grad():
        reference = room(audio)
        with export_ops():
            exported = room(audio)
    torch.testing.assert_close(exported, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", list(DECODERS))
def test_each_decoder_renders_the_same_through_its_export_path_and_with_its_own_noise_given(name):
    decoder = tiny_decoder(name)
    torch.manual_seed(2)
    frames = 50
    z = torch.randn(1, 8, frames)
    f0 = torch.full((1, frames), 180.0)
    f0[:, 20:25] = 0.0  # an unvoiced stretch
    noise = fixed_source_noise((1, 1, frames * HOP))
    with torch.no_grad():
        drawn = decoder.decode(z, None, None, f0).wav
        given = decoder.decode(z, None, None, f0, source_noise=noise).wav
        with export_ops():
            exported = decoder.decode(z, None, None, f0, source_noise=noise).wav
    assert drawn.abs().max() > 1e-4
    assert torch.equal(given, drawn)  # the eval-mode noise, given, is the very same render
    assert (exported - drawn).abs().max() <= 1e-5


@pytest.mark.parametrize("name", list(DECODERS))
def test_decoder_context_bounds_its_receptive_field(name):
    decoder = tiny_decoder(name)
    context, frames, t = decoder.context_frames(), 90, 45
    torch.manual_seed(3)
    z = torch.randn(1, 8, frames)
    f0 = torch.full((1, frames), 150.0)
    noise = torch.randn(1, 1, frames * HOP)
    with torch.no_grad():
        base = decoder.decode(z, None, None, f0, source_noise=noise).wav[0, 0]
        z[:, :, t] += 5.0
        moved = decoder.decode(z, None, None, f0, source_noise=noise).wav[0, 0]
    changed = torch.nonzero((moved - base).abs() > 1e-7).flatten()
    assert len(changed) > 0
    assert changed.min() >= (t - context) * HOP and changed.max() < (t + 1 + context) * HOP


@pytest.mark.parametrize("name", ["nsf_hifigan", "ddsp", "istft"])
def test_a_chunk_started_at_the_whole_renders_phase_matches_it(name):
    decoder = tiny_decoder(name)
    frames, start = 120, 40
    context = decoder.context_frames()
    torch.manual_seed(4)
    z = torch.randn(1, 8, frames)
    f0 = torch.linspace(120.0, 300.0, frames).unsqueeze(0)
    noise = fixed_source_noise((1, 1, frames * HOP))
    with torch.no_grad():
        whole = decoder.decode(z, None, None, f0, source_noise=noise).wav[0, 0]
        shifted = decoder.decode(z, None, None, f0, source_noise=noise, start_phase=torch.tensor([3.0], dtype=torch.float64)).wav[0, 0]
        window = slice(start - context, frames)
        phase = torch.tensor([float(np.remainder(f0[0, : start - context].double().sum().item() * HOP / 2400, 1.0))], dtype=torch.float64)
        chunk = decoder.decode(z[:, :, window], None, None, f0[:, window], source_noise=noise[..., window.start * HOP :], start_phase=phase).wav[0, 0]
        unphased = decoder.decode(z[:, :, window], None, None, f0[:, window], source_noise=noise[..., window.start * HOP :]).wav[0, 0]
    assert (shifted - whole).abs().max() <= 1e-4  # whole cycles: the same waveform
    kept = slice(context * HOP, None)
    joined_error = (chunk[kept] - whole[start * HOP :]).abs().max()
    unphased_error = (unphased[kept] - whole[start * HOP :]).abs().max()
    assert joined_error <= 1e-5
    assert unphased_error > 1e-4 and unphased_error > 100 * joined_error  # without the phase it would not join
