"""Independent reference values for tests/inference/test_espnet_metrics.py, computed the way ESPnet2's
``egs2/TEMPLATE/asr1/pyscripts/utils/evaluate_mcd.py`` and ``evaluate_f0.py`` compute them.

This script deliberately does not import `inference.espnet_metrics`: it walks through ESPnet's
``calculate()`` step by step on the two files beside it (read as int16 with soundfile, the
per-sample-rate ``_get_best_mcep_params`` table, SPTK ``mcep`` on Hamming-windowed 1024-point
frames every 256 samples for MCD, WORLD harvest + cheaptrick + ``sp2mc`` for F0, fastdtw with the
euclidean distance, ESPnet's MCD and log-F0 RMSE formulas) and prints the two numbers frozen in
the test. Re-run it after changing a pinned version of pysptk, pyworld or fastdtw:

    .venv/bin/python tests/inference/espnet_reference/compute.py
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyworld as pw
import soundfile as sf
from fastdtw import fastdtw
from scipy import spatial

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pysptk

HERE = Path(__file__).resolve().parent


def best_mcep_params(fs: int) -> tuple[int, float]:
    table = {16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 44100: (39, 0.53), 48000: (39, 0.55)}
    return table[fs]


def sptk_extract(x: np.ndarray, fs: int, n_fft: int = 1024, n_shift: int = 256) -> np.ndarray:
    n_frame = (len(x) - n_fft) // n_shift + 1
    win = pysptk.sptk.hamming(n_fft)
    mcep_dim, mcep_alpha = best_mcep_params(fs)
    rows = []
    for i in range(n_frame):
        rows.append(pysptk.mcep(x[n_shift * i : n_shift * i + n_fft] * win, mcep_dim, mcep_alpha, eps=1e-6, etype=1))
    return np.stack(rows)


def world_extract(x: np.ndarray, fs: int, f0min: int = 40, f0max: int = 800, n_fft: int = 1024, n_shift: int = 256):
    x = x.astype(np.float64)
    f0, time_axis = pw.harvest(x, fs, f0_floor=f0min, f0_ceil=f0max, frame_period=n_shift / fs * 1000)
    sp = pw.cheaptrick(x, f0, time_axis, fs, fft_size=n_fft)
    mcep_dim, mcep_alpha = best_mcep_params(fs)
    return pysptk.sp2mc(sp, mcep_dim, mcep_alpha), f0


def mcd(gen_path: Path, gt_path: Path) -> float:
    gen_x, fs = sf.read(gen_path, dtype="int16")
    gt_x, gt_fs = sf.read(gt_path, dtype="int16")
    assert fs == gt_fs
    gen_mcep = sptk_extract(gen_x, fs)
    gt_mcep = sptk_extract(gt_x, fs)
    _, path = fastdtw(gen_mcep, gt_mcep, dist=spatial.distance.euclidean)
    twf = np.array(path).T
    diff2sum = np.sum((gen_mcep[twf[0]] - gt_mcep[twf[1]]) ** 2, 1)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2 * diff2sum), 0))


def log_f0_rmse(gen_path: Path, gt_path: Path) -> float:
    gen_x, fs = sf.read(gen_path, dtype="int16")
    gt_x, gt_fs = sf.read(gt_path, dtype="int16")
    assert fs == gt_fs
    gen_mcep, gen_f0 = world_extract(gen_x, fs)
    gt_mcep, gt_f0 = world_extract(gt_x, fs)
    _, path = fastdtw(gen_mcep, gt_mcep, dist=spatial.distance.euclidean)
    twf = np.array(path).T
    gen_f0_dtw, gt_f0_dtw = gen_f0[twf[0]], gt_f0[twf[1]]
    nonzero = np.where((gen_f0_dtw != 0) & (gt_f0_dtw != 0))[0]
    return float(np.sqrt(np.mean((np.log(gen_f0_dtw[nonzero]) - np.log(gt_f0_dtw[nonzero])) ** 2)))


if __name__ == "__main__":
    gen, ref = HERE / "gen.wav", HERE / "ref.wav"
    print(f"mcd_espnet {mcd(gen, ref):.6f}")
    print(f"log_f0_rmse_espnet {log_f0_rmse(gen, ref):.6f}")
