"""Every VISinger decoder (`model.decoder`: hifigan, nsf_hifigan, ddsp, istft) keeps the one contract:
exactly `frames * hop` samples at 24 kHz/300, 44.1 kHz/512 and 16 kHz/160; a padded batch equals its items
alone; one GAN step gives a finite gradient to every parameter; built from the config fields by name."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, mel_l1_loss
from modules.visinger import DECODERS, VISingerGeneratorConfig, build_decoder
from preprocessor.audio import SpectrogramExtractor
from tests.modules.factories import make_tiny_discriminator

# (sample rate, hop, HiFi-GAN upsampling rates and kernels whose product is the hop)
AUDIO_SETTINGS = {
    "24k/300": (24000, 300, (5, 5, 4, 3), (10, 10, 8, 6)),
    "44.1k/512": (44100, 512, (8, 8, 2, 2, 2), (16, 16, 4, 4, 4)),
    "16k/160": (16000, 160, (5, 4, 4, 2), (10, 8, 8, 4)),
}
LATENT = 8


def tiny_decoder(decoder: str, audio: str = "16k/160", seed: int = 0, **overrides):
    """A decoder of kind `decoder`, narrow enough for a CPU test, built the way VISinger builds it."""
    sample_rate, hop, rates, kernels = AUDIO_SETTINGS[audio]
    fields = dict(
        n_phones=4, spec_channels=9, hop_size=hop, inter_channels=LATENT, sample_rate=sample_rate, decoder=decoder,
        upsample_initial_channel=32, upsample_rates=rates, upsample_kernel_sizes=kernels, resblock_type="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), n_harmonics=8,
        ddsp_chain=tuple(harmonic_plus_noise_chain(n_harmonics=8, n_bands=17, reverb_ir_length=400)),
        istft_channels=24, istft_intermediate_channels=48, istft_n_layers=2,
    )  # fmt: skip
    fields.update(overrides)
    torch.manual_seed(seed)
    return build_decoder(VISingerGeneratorConfig(**fields))


def pitched_f0(batch: int, frames: int) -> torch.Tensor:
    f0 = torch.linspace(180.0, 420.0, frames).repeat(batch, 1)
    f0[:, frames // 3 : frames // 3 + 2] = 0.0  # an unvoiced gap
    return f0


@pytest.mark.parametrize("audio", list(AUDIO_SETTINGS))
@pytest.mark.parametrize("decoder", DECODERS)
def test_output_is_exactly_frames_times_hop(decoder, audio):
    model = tiny_decoder(decoder, audio).eval()
    hop = AUDIO_SETTINGS[audio][1]
    for frames in (1, 7, 10):
        with torch.no_grad():
            out = model.decode(torch.randn(2, LATENT, frames), f0=pitched_f0(2, frames))
        assert out.wav.shape == (2, 1, frames * hop)
        assert out.source_wav is None or out.source_wav.shape == (2, 1, frames * hop)
        assert torch.isfinite(out.wav).all()


@pytest.mark.parametrize("decoder", DECODERS)
def test_padded_batch_equals_items_alone(decoder):
    model = tiny_decoder(decoder).eval()
    lengths, frames = [12, 5], 12
    z = torch.randn(2, LATENT, frames)
    f0 = pitched_f0(2, frames)
    mask = (torch.arange(frames)[None] < torch.tensor(lengths)[:, None]).float().unsqueeze(1)
    hop = model.hop_size
    with torch.no_grad():
        batch = model.decode(z, mask, f0=f0)
        for row, length in enumerate(lengths):
            alone = model.decode(z[row : row + 1, :, :length], f0=f0[row : row + 1, :length])
            torch.testing.assert_close(batch.wav[row : row + 1, :, : length * hop], alone.wav, rtol=0, atol=1e-5)
            assert torch.all(batch.wav[row, :, length * hop :] == 0)
            if alone.source_wav is not None:
                torch.testing.assert_close(batch.source_wav[row : row + 1, :, : length * hop], alone.source_wav, rtol=0, atol=1e-5)


@pytest.mark.parametrize("decoder", DECODERS)
def test_one_gan_step_gives_every_parameter_a_finite_gradient(decoder):
    model = tiny_decoder(decoder)
    discriminator = make_tiny_discriminator(n_scales=1)
    features = SpectrogramExtractor(16000, 512, 160, 512, 20, 0.0, 8000.0)
    frames = 8
    z, f0 = torch.randn(2, LATENT, frames), pitched_f0(2, frames)
    real = torch.randn(2, 1, frames * 160) * 0.1
    mask = torch.ones(2, 1, frames)
    out = model.decode(z, mask, f0=f0)
    # Discriminator first, on the detached output (as the task).
    scores = discriminator(real, out.wav.detach())
    discriminator_loss(scores.real_logits, scores.fake_logits).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in discriminator.parameters())
    scores = discriminator(real, out.wav)
    mel_real = features.mel(real.squeeze(1))
    loss = (
        45 * mel_l1_loss(features.mel(out.wav.squeeze(1)), mel_real, mask)
        + generator_adversarial_loss(scores.fake_logits)
        + 2 * feature_matching_loss(scores.real_features, scores.fake_features)
    )
    if out.source_wav is not None:
        loss = loss + 45 * mel_l1_loss(features.mel(out.source_wav.squeeze(1)), mel_real, mask)
    model.zero_grad()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{decoder}: {name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{decoder}: {name} has a non-finite gradient"
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0


@pytest.mark.parametrize("decoder", ("nsf_hifigan", "ddsp", "istft"))
def test_decoders_that_sing_at_the_f0_require_it(decoder):
    model = tiny_decoder(decoder)
    assert model.uses_f0
    with pytest.raises(ValueError, match="pass f0"):
        model(torch.randn(1, LATENT, 4))
    assert not tiny_decoder("hifigan").uses_f0 and not tiny_decoder("istft", istft_harmonic_source=False).uses_f0


def test_unknown_decoder_and_a_yaml_chain_round_trip():
    with pytest.raises(ValueError, match="decoder must be one of"):
        VISingerGeneratorConfig(n_phones=4, decoder="wavenet")
    # A chain read back from JSON (lists) equals the one built from tuples, and rebuilds the same decoder.
    config = VISingerGeneratorConfig(n_phones=4, decoder="ddsp", ddsp_chain=tuple(harmonic_plus_noise_chain(8, 17)))
    arguments = dataclasses.asdict(config)
    arguments["ddsp_chain"] = list(arguments["ddsp_chain"])
    assert VISingerGeneratorConfig(**arguments) == config
    # The iSTFT decoder does not use the HiFi-GAN stack: a hop the default rates do not multiply to is fine.
    VISingerGeneratorConfig(n_phones=4, decoder="istft", hop_size=256)
