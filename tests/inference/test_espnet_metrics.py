"""ESPnet2-comparable metrics (`inference.espnet_metrics`) against values computed independently by
following ESPnet's evaluate_mcd.py / evaluate_f0.py (tests/inference/espnet_reference/compute.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference.espnet_metrics import (
    NATURAL_LOG_TO_CENTS,
    as_int16_values,
    espnet_log_f0_rmse,
    espnet_mcd,
    espnet_metrics,
    mcep_params,
    sptk_mel_cepstra,
)

PAIR = Path(__file__).resolve().parent / "espnet_reference"
# Printed by `python tests/inference/espnet_reference/compute.py` (pysptk 1.0.1, pyworld-prebuilt 0.3.6.post1,
# fastdtw 0.3.4): ESPnet's own steps on gen.wav against ref.wav, 16 kHz.
REFERENCE_MCD_DB = 18.770456
REFERENCE_LOG_F0_RMSE = 0.060466


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, int]:
    ref, rate = sf.read(PAIR / "ref.wav", dtype="float32")
    gen, gen_rate = sf.read(PAIR / "gen.wav", dtype="float32")
    assert rate == gen_rate == 16000
    return ref, gen, rate


def test_reference_pair_matches_values_computed_by_espnets_steps(pair):
    ref, gen, rate = pair
    result = espnet_metrics(ref, gen, rate)
    assert result.mcd_espnet == pytest.approx(REFERENCE_MCD_DB, abs=1e-5)
    assert result.log_f0_rmse_espnet == pytest.approx(REFERENCE_LOG_F0_RMSE, abs=1e-5)
    assert result.mcd_pairs > 40 and result.f0_pairs > 40
    # The pair differs by 0.2-0.4 semitone per note: 20-40 cents of log-F0 RMSE each... about 100 cents in all.
    assert 60 < result.log_f0_rmse_espnet * NATURAL_LOG_TO_CENTS < 160


def test_float_wav_gives_the_integers_espnet_reads(pair):
    ref, _, _ = pair
    integers, _ = sf.read(PAIR / "ref.wav", dtype="int16")
    np.testing.assert_array_equal(as_int16_values(ref), integers.astype(np.float64))


def test_identical_wavs_give_zero(pair):
    ref, _, rate = pair
    assert espnet_mcd(ref, ref, rate)[0] == pytest.approx(0.0, abs=1e-9)
    assert espnet_log_f0_rmse(ref, ref, rate)[0] == pytest.approx(0.0, abs=1e-9)


def test_analysis_settings_per_rate_and_frame_count():
    assert mcep_params(16000) == (23, 0.42)
    assert mcep_params(24000) == (34, 0.46)
    assert mcep_params(44100) == (39, 0.53)
    with pytest.raises(ValueError, match="8000 Hz"):
        mcep_params(8000)
    x = np.random.default_rng(0).standard_normal(1024 + 256 * 9 + 100) * 1000
    cepstra = sptk_mel_cepstra(x, 24000)
    assert cepstra.shape == (10, 35)  # (len - 1024) // 256 + 1 frames, c0..c34
    assert sptk_mel_cepstra(np.zeros(500), 24000).shape == (0, 35)
    assert np.isnan(espnet_mcd(np.zeros(500), np.zeros(500), 24000)[0])


def test_evaluate_folders_reports_both_keys_per_item_in_the_mean_and_the_table(pair, tmp_path):
    from inference.evaluate import evaluate_folders, format_table
    from preprocessor.atomic_io import write_wav_atomic

    ref, gen, rate = pair
    for folder, wav in (("ref", ref), ("gen", gen)):
        write_wav_atomic(tmp_path / folder / "song.wav", wav, rate)
    results = evaluate_folders(tmp_path / "ref", tmp_path / "gen", sample_rate=rate, hop_size=160, f0_min=60.0, f0_max=800.0)
    item = results["items"][0]
    assert item["mcd_espnet"] == pytest.approx(REFERENCE_MCD_DB, abs=1e-5)
    assert item["log_f0_rmse_espnet"] == pytest.approx(REFERENCE_LOG_F0_RMSE, abs=1e-5)
    assert results["mean"]["mcd_espnet"] == item["mcd_espnet"] and results["mean"]["log_f0_rmse_espnet_items"] == 1
    assert results["settings"]["espnet"]["mcep_dim"] == 23 and results["settings"]["espnet"]["mcep_alpha"] == 0.42
    written = (tmp_path / "gen" / "metrics.json").read_text()
    assert '"mcd_espnet"' in written and '"log_f0_rmse_espnet"' in written
    table = format_table(results)
    assert "MCD ESPnet (dB)" in table and f"{REFERENCE_MCD_DB:.2f}" in table and f"{REFERENCE_LOG_F0_RMSE:.3f}" in table
