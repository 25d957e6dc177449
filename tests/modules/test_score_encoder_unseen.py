"""The cause of the F0 excursions at unseen onsets: untrained random embeddings, and the `shared` embedding that removes it."""
from __future__ import annotations

import pytest
import torch

from modules.score_encoder import ScoreEncoder
from preprocessor.text.phone_set import PHONE_SET, phone_classes, phone_to_id

SEEN_PHONES = [phone_to_id(p) for p in ("SP", "ᄆ", "ᅥ", "ᄅ", "ᅵ")]  # 머리 and rests: all a "training song" has
SEEN_PITCHES = [0, 60, 62, 64]
UNSEEN_ONSETS = [phone_to_id(p) for p in ("ᄉ", "ᄒ", "ᄌ")]


def train_encoder(embedding: str, steps: int = 20) -> tuple[ScoreEncoder, dict[str, torch.Tensor]]:
    """A tiny encoder trained a few steps to regress a target from scores that use only the seen phonemes and pitches."""
    torch.manual_seed(0)
    encoder = ScoreEncoder(len(PHONE_SET), 16, 32, n_heads=2, n_layers=1, kernel_size=3, dropout=0.0, window_size=2,
                           embedding=embedding, phone_classes=phone_classes() if embedding == "shared" else ())  # fmt: skip
    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-2)
    phones = torch.tensor([SEEN_PHONES * 2])
    pitches = torch.tensor([[0, 60, 60, 62, 62, 0, 64, 64, 62, 60]])
    for _ in range(steps):
        out = encoder(phones, pitches, torch.full(phones.shape, 10.0), torch.zeros_like(phones), torch.tensor([phones.size(1)]))
        loss = (out.hidden.mean(1) - pitches.float() / 64).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encoder, before


def test_table_embeddings_leave_unseen_phonemes_and_pitches_random():
    encoder, before = train_encoder("table")
    table = encoder.phone_embedding.weight.detach()
    for pid in UNSEEN_ONSETS:  # never trained: still the random initial vector (less AdamW's weight decay), as large as a trained one
        torch.testing.assert_close(table[pid], before["phone_embedding.weight"][pid], rtol=1e-2, atol=0)
        assert table[pid].norm() > 0.5 * table[SEEN_PHONES[1]].norm()
    torch.testing.assert_close(encoder.pitch_embedding.weight[57], before["pitch_embedding.weight"][57], rtol=1e-2, atol=0)


def test_shared_embeddings_give_an_unseen_phoneme_its_class_and_an_unseen_pitch_the_pitch_line():
    encoder, _ = train_encoder("shared")
    assert torch.count_nonzero(encoder.phone_embedding.weight[UNSEEN_ONSETS]) == 0  # zero-initialised, never trained
    assert torch.count_nonzero(encoder.pitch_embedding.weight[[55, 56, 57, 70]]) == 0
    assert torch.count_nonzero(encoder.phone_embedding.weight[SEEN_PHONES[1:]]) > 0  # the seen ones did learn
    encoder.eval()

    def encode(phone: int, pitch: int) -> torch.Tensor:
        ids = torch.tensor([[SEEN_PHONES[0], phone, SEEN_PHONES[2], SEEN_PHONES[0]]])
        notes = torch.tensor([[0, pitch, pitch, 0]])
        return encoder(ids, notes, torch.full(ids.shape, 10.0), torch.zeros_like(ids), torch.tensor([4])).hidden

    # Every unseen onset consonant is encoded exactly like the others: the trained onset class, not noise.
    reference = encode(UNSEEN_ONSETS[0], 62)
    for pid in UNSEEN_ONSETS[1:]:
        torch.testing.assert_close(encode(pid, 62), reference, rtol=0, atol=0)
    # Unseen pitches enter on the trained line: equal steps in pitch are equal steps in the input.
    x = [encoder.pitch_projection(torch.tensor([[(p - 69) / 12]])) for p in (55, 56, 57)]
    torch.testing.assert_close(x[1] - x[0], x[2] - x[1])


def test_shared_needs_the_class_of_every_phoneme():
    with pytest.raises(ValueError, match="needs the class of each of the 49 phonemes"):
        ScoreEncoder(len(PHONE_SET), 16, embedding="shared", phone_classes=(0, 1))
