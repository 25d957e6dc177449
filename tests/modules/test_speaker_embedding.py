"""Several singers in one model: the speaker embedding of VISinger and the FS2 singer, by id and as a mix."""
from __future__ import annotations

import pytest
import torch

from modules.fs2_singer import FS2Singer
from modules.speaker_embedding import speaker_vectors
from tests.modules.factories import make_random_batch, make_tiny_generator, score_inputs


@pytest.fixture(scope="module")
def two_speaker_generator():
    return make_tiny_generator(seed=3, n_speakers=2, gin_channels=4).eval()


def _sing(generator, batch, speaker):
    inputs = score_inputs(batch)
    inputs["speaker_id"] = speaker
    torch.manual_seed(0)
    return generator.infer(**inputs, noise_scale=0.5)


def test_visinger_sings_differently_per_speaker_and_a_one_hot_mix_is_that_speaker(two_speaker_generator):
    batch = make_random_batch(make_tiny_generator(n_speakers=2, gin_channels=4).config.__dict__, phones_per_item=(6,))
    first = _sing(two_speaker_generator, batch, torch.tensor([0]))
    second = _sing(two_speaker_generator, batch, torch.tensor([1]))
    as_mix = _sing(two_speaker_generator, batch, torch.tensor([[1.0, 0.0]]))
    half = _sing(two_speaker_generator, batch, torch.tensor([[0.5, 0.5]]))
    assert not torch.allclose(first.wav, second.wav, atol=1e-6)
    # The speaker also reaches the F0 predictor (the frame encoding), not only the decoder.
    assert not torch.allclose(first.f0_pred, second.f0_pred)
    assert torch.equal(first.wav, as_mix.wav) and torch.equal(first.f0_pred, as_mix.f0_pred)
    assert not torch.allclose(half.wav, first.wav, atol=1e-6) and not torch.allclose(half.wav, second.wav, atol=1e-6)


def test_a_single_speaker_generator_has_no_speaker_parameters():
    names = set(make_tiny_generator().state_dict())
    assert not any(name.startswith(("speaker_embedding", "speaker_to_frames")) for name in names)
    multi = set(make_tiny_generator(n_speakers=2, gin_channels=4).state_dict())
    assert {"speaker_embedding.weight", "speaker_to_frames.weight"} <= multi


def test_fs2_mel_differs_by_speaker_and_a_one_hot_mix_is_that_speaker():
    torch.manual_seed(0)
    model = FS2Singer(n_phones=12, n_mels=8, hidden_channels=16, filter_channels=32, encoder_n_layers=1, decoder_n_layers=1,
                      kernel_size=3, window_size=2, f0_predictor_n_layers=1, variance_filter_channels=16, n_speakers=3).eval()
    batch = make_random_batch({"n_phones": 12, "hop_size": 4, "spec_channels": 5}, phones_per_item=(5,))
    score = [batch[k] for k in ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "phone_lengths")]
    by_id = [model.infer(*score, speaker_id=torch.tensor([k])).mel for k in range(3)]
    assert not torch.allclose(by_id[0], by_id[2])
    assert torch.equal(model.infer(*score, speaker_id=torch.tensor([[0.0, 0.0, 1.0]])).mel, by_id[2])


def test_speaker_weights_must_match_the_table():
    table = torch.nn.Embedding(2, 3)
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        speaker_vectors(table, torch.tensor([[0.5, 0.25, 0.25]]))
    assert torch.allclose(speaker_vectors(table, torch.tensor([[0.25, 0.75]]))[0], 0.25 * table.weight[0] + 0.75 * table.weight[1])
