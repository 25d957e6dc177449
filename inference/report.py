"""Pictures and a one-page HTML report of an evaluated test split (`run.py --infer`, `inference/evaluate.py`).

Per item and system a PNG: on top the score as a piano roll (grey bars, MIDI pitch per frame) with
the F0 the model sang from (predicted from the score; the recording's for a render driven by it),
the F0 measured on the render and the F0 measured on the recording (Praat or pYIN, the metrics'
own extractor and hop); below the log-mel of the recording and of the render on one colour scale.
Curves that are not known (no score, no driving F0 for a plain folder of wavs) are left out.

The report (`report.html` in the output folder) holds the mean metrics table of every system, then
per item the audio players (recording and every system), that item's metrics and its PNGs. Paths
in it are relative, so the folder can be moved or served as it is.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from preprocessor.atomic_io import atomic_path, write_text_atomic  # noqa: E402
from preprocessor.audio import AudioSettings, extract_f0, load_wav  # noqa: E402

REPORT_FILE = "report.html"
PNG_DPI = 100


@dataclass(frozen=True)
class ItemCurves:
    """What one item's picture shows. F0 tracks in Hz per `hop_size` frame (0 = unvoiced); mels ``[n_mels, T]``.

    score_pitch: MIDI pitch per frame (0 = rest) or None; driving_f0: the F0 the render was made from, or None.
    """

    name: str
    system: str
    frame_rate: float
    render_f0: np.ndarray
    reference_f0: np.ndarray
    render_mel: np.ndarray
    reference_mel: np.ndarray
    score_pitch: np.ndarray | None = None
    driving_f0: np.ndarray | None = None
    driving_label: str = "predicted F0"


def _midi(hz: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(hz), np.nan)
    voiced = np.asarray(hz) > 0
    out[voiced] = 69.0 + 12.0 * np.log2(np.asarray(hz)[voiced] / 440.0)
    return out


def _score_runs(pitch: np.ndarray) -> list[tuple[int, int, float]]:
    """``(first_frame, frames, midi)`` of each run of equal non-zero pitch."""
    runs, start = [], 0
    for index in range(1, len(pitch) + 1):
        if index == len(pitch) or pitch[index] != pitch[start]:
            if pitch[start] > 0:
                runs.append((start, index - start, float(pitch[start])))
            start = index
    return runs


def item_figure(curves: ItemCurves) -> Figure:
    """The per-item picture (see the module docstring)."""
    figure, (roll, ref_axis, gen_axis) = plt.subplots(
        3, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1]}
    )
    rate = curves.frame_rate
    pitches: list[float] = []
    if curves.score_pitch is not None:
        for first, frames, midi in _score_runs(np.asarray(curves.score_pitch)):
            roll.add_patch(plt.Rectangle((first / rate, midi - 0.4), frames / rate, 0.8, color="0.8", zorder=0))
            pitches.append(midi)
        roll.plot([], [], color="0.8", linewidth=6, label="score")
    lines = [
        (curves.driving_f0, curves.driving_label, "tab:red", 1.6),
        (curves.render_f0, "F0 of the render", "tab:orange", 1.0),
        (curves.reference_f0, "F0 of the recording", "tab:blue", 1.0),
    ]
    for track, label, colour, width in lines:
        if track is None:
            continue
        midi = _midi(track)
        roll.plot(np.arange(len(midi)) / rate, midi, color=colour, linewidth=width, label=label)
        pitches.extend(midi[np.isfinite(midi)].tolist())
    if pitches:
        low, high = np.percentile(pitches, [1, 99])
        roll.set_ylim(low - 3, high + 3)
    roll.set_ylabel("MIDI pitch")
    roll.set_title(f"{curves.name} ({curves.system})")
    roll.legend(loc="upper right", fontsize=8)
    roll.grid(alpha=0.3)
    low = float(min(curves.reference_mel.min(), curves.render_mel.min()))
    high = float(max(curves.reference_mel.max(), curves.render_mel.max()))
    for axis, mel, title in ((ref_axis, curves.reference_mel, "recording"), (gen_axis, curves.render_mel, f"render ({curves.system})")):
        axis.imshow(mel, origin="lower", aspect="auto", interpolation="none", vmin=low, vmax=high,
                    extent=(0, mel.shape[1] / rate, 0, mel.shape[0]))  # fmt: skip
        axis.set_ylabel("mel bin")
        axis.set_title(title, fontsize=9)
    gen_axis.set_xlabel("seconds")
    figure.tight_layout()
    return figure


def write_item_png(path: Path, curves: ItemCurves) -> None:
    figure = item_figure(curves)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=PNG_DPI)
    finally:
        plt.close(figure)


class _Analyser:
    """F0 (the metrics' extractor) and log-mel (the model's features) of wav files at `audio`'s rate and hop."""

    def __init__(self, audio: AudioSettings) -> None:
        from preprocessor.audio import SpectrogramExtractor

        self.audio = audio
        a = audio
        self.extractor = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)

    def __call__(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        import torch

        a = self.audio
        wav = load_wav(path, a.sample_rate)
        f0 = extract_f0(wav, a.sample_rate, a.hop_size, len(wav) // a.hop_size, a.f0_min, a.f0_max, a.f0_extractor).f0_hz
        with torch.no_grad():
            mel = self.extractor.mel(torch.from_numpy(wav)[None])[0].numpy()
        return f0, mel


def write_item_pictures(
    reference_dir: Path,
    system_dirs: Mapping[str, Path],
    names: Sequence[str],
    audio: AudioSettings,
    score_pitch: Mapping[str, np.ndarray] | None = None,
    driving_f0: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    driving_labels: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Path]]:
    """One PNG per item and system: ``system_dirs[system]/<name>.png``. Returns ``{system: {name: png}}``.

    score_pitch: per item MIDI pitch per frame; driving_f0: per system, per item, the F0 (Hz per frame)
    the render was made from; driving_labels: per system, that curve's legend label.
    """
    analyse = _Analyser(audio)
    frame_rate = audio.sample_rate / audio.hop_size
    written: dict[str, dict[str, Path]] = {system: {} for system in system_dirs}
    for name in names:
        reference_f0, reference_mel = analyse(reference_dir / f"{name}.wav")
        for system, folder in system_dirs.items():
            wav = folder / f"{name}.wav"
            if not wav.is_file():
                continue
            render_f0, render_mel = analyse(wav)
            driving = (driving_f0 or {}).get(system, {}).get(name)
            curves = ItemCurves(
                name, system, frame_rate, render_f0, reference_f0, render_mel, reference_mel,
                score_pitch=None if score_pitch is None else score_pitch.get(name),
                driving_f0=driving, driving_label=(driving_labels or {}).get(system, "predicted F0"),
            )  # fmt: skip
            png = folder / f"{name}.png"
            write_item_png(png, curves)
            written[system][name] = png
    return written


def _metric_cells(values: Mapping[str, Any]) -> str:
    from inference.metrics_table import TABLE_COLUMNS, table_cell

    return "".join(f"<td>{html.escape(table_cell(values.get(key), form))}</td>" for key, _, form in TABLE_COLUMNS)


def _metric_header(first: str, last: str | None = None) -> str:
    from inference.metrics_table import TABLE_COLUMNS

    titles = [first, *(title for _, title, _ in TABLE_COLUMNS), *([last] if last else [])]
    return "<tr>" + "".join(f"<th>{html.escape(title)}</th>" for title in titles) + "</tr>"


def write_html_report(
    out_path: Path,
    title: str,
    reference_dir: Path,
    results: Mapping[str, Mapping[str, Any]],
    system_dirs: Mapping[str, Path],
    pictures: Mapping[str, Mapping[str, Path]] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """One HTML page: the mean table of every system, then per item the players, metrics and PNGs.

    results: per system, `inference.evaluate.evaluate_folders`'s result (items + mean); system_dirs:
    per system, the folder of its wavs (``<name>.wav``); reference_dir: the recordings.
    """
    out_path = Path(out_path)
    base = out_path.parent

    def link(path: Path) -> str:
        return html.escape(Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix(), quote=True)

    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:1300px}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
        "img{max-width:100%;border:1px solid #ddd}.players{display:flex;gap:1.5em;flex-wrap:wrap}"
        "section{border-top:2px solid #ccc;margin-top:1.2em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]  # fmt: skip
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    parts += ["<h2>Mean over the test items</h2>", "<table>", _metric_header("system", "items")]
    for system, result in results.items():
        mean = result["mean"]
        parts.append(f"<tr><td>{html.escape(system)}</td>{_metric_cells(mean)}<td>{mean.get('items', '')}</td></tr>")
    parts.append("</table>")
    parts.append(
        "<p>MCD / F0 RMSE (cents): this project's definitions (inference/metrics.py); MCD ESPnet and log-F0 RMSE "
        "ESPnet: ESPnet2's evaluate_mcd.py / evaluate_f0.py (inference/espnet_metrics.py; log-F0 in natural-log units).</p>"
    )
    names = sorted({item["name"] for result in results.values() for item in result["items"]})
    for name in names:
        parts.append(f'<section id="{html.escape(name, quote=True)}"><h3>{html.escape(name)}</h3><div class="players">')
        parts.append(f'<div>recording<br><audio controls preload="none" src="{link(reference_dir / f"{name}.wav")}"></audio></div>')
        for system, folder in system_dirs.items():
            wav = folder / f"{name}.wav"
            if wav.is_file():
                parts.append(f'<div>{html.escape(system)}<br><audio controls preload="none" src="{link(wav)}"></audio></div>')
        parts.append("</div><table>" + _metric_header("system"))
        for system, result in results.items():
            for item in result["items"]:
                if item["name"] == name:
                    parts.append(f"<tr><td>{html.escape(system)}</td>{_metric_cells(item)}</tr>")
        parts.append("</table>")
        for system in system_dirs:
            png = (pictures or {}).get(system, {}).get(name)
            if png is not None:
                parts.append(f'<p><img src="{link(png)}" alt="{html.escape(name)} ({html.escape(system)})" loading="lazy"></p>')
        parts.append("</section>")
    parts.append("</body></html>")
    write_text_atomic(out_path, "\n".join(parts) + "\n")
    return out_path
