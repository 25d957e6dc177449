"""The causal F0 and loudness trackers of the live DDSP singer: accuracy, silence, block independence, lag vs offline."""
from __future__ import annotations

import numpy as np
import pytest

from preprocessor.audio import extract_f0
from preprocessor.causal_features import CausalLoudness, CausalYin
from preprocessor.loudness import a_loudness_db
from tests.audio_factory import sung_phrase

SR, HOP = 16000, 160


def _push_in_blocks(tracker, wav: np.ndarray, block_frames: int) -> np.ndarray:
    size = block_frames * HOP
    return np.concatenate([tracker.push(wav[i : i + size]) for i in range(0, len(wav) - len(wav) % size, size)])


@pytest.mark.parametrize("hz", [82.0, 220.0, 659.0])
def test_a_steady_tone_reads_its_pitch_and_silence_is_unvoiced(hz):
    t = np.arange(SR) / SR
    wav = np.concatenate([np.zeros(SR // 2), 0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(4 * np.pi * hz * t)])
    f0 = _push_in_blocks(CausalYin(SR, HOP, 50, 1100), wav, 2)
    assert (f0[: SR // 2 // HOP] == 0).all()  # the leading silence
    steady = f0[SR // 2 // HOP + 5 :]
    assert (steady > 0).all() and np.abs(1200 * np.log2(steady / hz)).max() < 5


def test_blocks_of_any_size_give_the_same_tracks_and_follow_the_offline_ones():
    wav = sung_phrase([57.3, 62.0, 64.6, 60.0], SR, note_seconds=0.5, seed=4)
    wav = wav[: len(wav) // (4 * HOP) * 4 * HOP]
    one, four = _push_in_blocks(CausalYin(SR, HOP, 50, 1100), wav, 1), _push_in_blocks(CausalYin(SR, HOP, 50, 1100), wav, 4)
    assert np.array_equal(one, four)
    tracker = CausalYin(SR, HOP, 50, 1100)
    lag = round(tracker.lag_samples / HOP)
    offline = extract_f0(wav, SR, HOP, len(wav) // HOP, 50, 1100).f0_hz
    causal = one[lag:]
    reference = offline[: len(causal)]
    both = (causal > 0) & (reference > 0)
    assert both.sum() > 0.6 * (reference > 0).sum()  # voiced where Praat is, mostly
    assert (np.abs(1200 * np.log2(causal[both] / reference[both])) < 50).mean() > 0.9
    meter = CausalLoudness(SR, HOP, 1024)
    loud = _push_in_blocks(meter, wav, 4)
    shift = round(meter.lag_samples / HOP)
    offline_loudness = a_loudness_db(wav, SR, HOP, 1024)
    audible = offline_loudness[: len(loud) - shift] > -60
    assert np.median(np.abs(loud[shift:][audible] - offline_loudness[: len(loud) - shift][audible])) < 1.5  # dB
    with pytest.raises(ValueError, match="whole number of hops"):
        CausalYin(SR, HOP, 50, 1100).push(np.zeros(HOP + 1))
