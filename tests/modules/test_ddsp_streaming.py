"""Real time: the DDSP singer block by block (eager and TorchScript) equals the offline render."""
from __future__ import annotations

import pytest
import torch

from modules.ddsp.chain import harmonic_plus_noise_chain
from modules.ddsp_singer import DDSPSinger
from modules.ddsp_streaming import StreamingDDSPSinger, export_torchscript

SR, HOP = 8000, 80
TOLERANCE = 1e-4  # of full scale; measured differences are ~1e-7 (float rounding, float64 phase sums in another order)


@pytest.fixture(scope="module")
def singer_and_tracks():
    torch.manual_seed(0)
    singer = DDSPSinger(SR, HOP, harmonic_plus_noise_chain(16, 65, 1000), hidden_size=16, mlp_layers=1).eval()
    with torch.no_grad():
        singer.synth.processors["reverb"].ir.mul_(30)  # an audible room, so that a wrong tail shows
        singer.estimator.projection.bias[-65:] += 4.0  # loud noise, so that a wrong noise position shows
    frames = 61
    f0 = 200 * 2 ** (torch.randn(frames).cumsum(0) * 0.02)
    f0[20:27] = 0  # an unvoiced stretch: the held F0 must be carried across blocks
    f0[:2] = 0
    loudness = -35 + 12 * torch.sin(torch.arange(frames) / 6.0)
    with torch.no_grad():
        offline = singer(f0[None], loudness[None]).audio[0, 0]
    return singer, f0, loudness, offline


@pytest.mark.parametrize("block_frames", [1, 2, 5])
def test_block_by_block_equals_offline(singer_and_tracks, block_frames):
    singer, f0, loudness, offline = singer_and_tracks
    streamed = StreamingDDSPSinger(singer, block_frames).render(f0, loudness)  # 61 frames: a short last block too
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() < TOLERANCE * max(1.0, float(offline.abs().max()))
    assert offline.abs().max() > 0.01  # not trivially silent


def test_the_stream_runs_one_hop_late_and_starts_silent(singer_and_tracks):
    singer, f0, loudness, offline = singer_and_tracks
    stream = StreamingDDSPSinger(singer, 1)
    first = stream.process(f0[:1], loudness[:1])
    second = stream.process(f0[1:2], loudness[1:2])
    assert first.abs().max() == 0  # the latency hop
    assert torch.allclose(second, offline[:HOP], atol=TOLERANCE)


def test_torchscript_export_streams_the_same_samples(singer_and_tracks, tmp_path):
    singer, f0, loudness, offline = singer_and_tracks
    exported = export_torchscript(singer, 2)
    exported.save(str(tmp_path / "stream.pt"))
    loaded = torch.jit.load(str(tmp_path / "stream.pt"))
    with torch.no_grad():
        blocks = [loaded(f0[i : i + 2], loudness[i : i + 2]) for i in range(0, 60, 2)]
    streamed = torch.cat(blocks)[HOP:]  # the latency hop removed: frames 0..58
    assert (streamed - offline[: streamed.numel()]).abs().max() < TOLERANCE
    loaded.reset()
    with torch.no_grad():
        assert torch.equal(loaded(f0[:2], loudness[:2]), blocks[0])  # reset starts the stream over


def test_block_size_zero_is_refused(singer_and_tracks):
    with pytest.raises(ValueError, match="block_frames must be >= 1"):
        StreamingDDSPSinger(singer_and_tracks[0], 0)
