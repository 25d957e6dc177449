"""The web page's timbre-transfer tab: upload a recording, set the controls, hear it sung by a DDSP singer.

The work is `inference.api.Singer.transfer` with the controls of `inference/transfer.py`;
this file holds the tab's handler (plain values in, plain values out, tested without a browser) and its
layout. Renders go to the page's temporary folder, one at a time; the previous render is removed.
"""
from __future__ import annotations

import html
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from config.errors import UserInputError, error_line
from inference.api import Singer


def _status(message: str, kind: str = "info") -> str:
    return f'<p class="{kind}">{html.escape(message)}</p>'


class TransferTab:
    """`transfer(...) -> (wav path, plot path, status html)`; a `UserInputError` becomes the status line."""

    def __init__(self, voices: dict[str, Singer], work_dir: Path) -> None:
        if not voices:
            raise ValueError("the transfer tab needs at least one DDSP singer")
        self.voices = voices
        self.work_dir = Path(work_dir)
        self._lock = threading.Lock()  # one render at a time: the CPU is shared with the other tab
        self._previous: Path | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self.voices)

    def transfer(
        self, path: str | None, model: str, autotune: float, octave_shift: float, loudness_db: float,
        loudness_stats: bool, mask_threshold: float, attenuation: float,
    ) -> tuple[Any, Any, str]:  # fmt: skip
        if not path:
            return None, None, _status("error: no recording yet; upload a wav, flac, mp3 or ogg file", "error")
        if model not in self.voices:
            return None, None, _status(f"error: no model named {model!r}; pick one from the list", "error")
        from inference.transfer_plot import plot_transfer

        voice = self.voices[model]
        try:
            with self._lock:
                result = voice.transfer(
                    Path(path), autotune=autotune, octave_shift=octave_shift, loudness_db=loudness_db, loudness_stats=loudness_stats,
                    mask_threshold=float(mask_threshold) if mask_threshold and float(mask_threshold) > 0 else None, attenuation=attenuation,
                )  # fmt: skip
                self.work_dir.mkdir(parents=True, exist_ok=True)
                folder = Path(tempfile.mkdtemp(prefix="transfer-", dir=self.work_dir))
                wav_path = folder / f"{Path(path).stem}_{model.replace('/', '_')}.wav"
                result.write(wav_path)
                plot_path = plot_transfer(result, voice.audio, float(voice.model.pitch_mean_midi), folder / "transfer.png")
                if self._previous is not None:
                    shutil.rmtree(self._previous, ignore_errors=True)
                self._previous = folder
        except UserInputError as error:
            return None, None, _status(error_line(error), "error")
        return str(wav_path), str(plot_path), _status(f"sang {Path(path).name} ({result.seconds:.1f} s) with {model}")


def build_transfer_tab(tab: TransferTab) -> None:
    """The tab's components and events, inside the caller's `gr.Blocks` / `gr.Tab` context."""
    import gradio as gr

    names = tab.model_names
    gr.Markdown("Upload a recording of singing; the DDSP singer sings its pitch and loudness in its own voice.")
    with gr.Row():
        with gr.Column(scale=1):
            recording = gr.File(label="recording (wav, flac, mp3, ogg)", file_types=[".wav", ".flac", ".mp3", ".ogg"], type="filepath", elem_id="transfer-upload")
            model = gr.Dropdown(choices=names, value=names[0], label="voice", visible=len(names) > 1, elem_id="transfer-model")
            autotune = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="autotune (0 = none, 1 = snap to the semitone)", elem_id="transfer-autotune")
            octave = gr.Slider(-2, 2, value=0, step=1, label="octave shift", elem_id="transfer-octave")
            loudness_db = gr.Slider(-20, 20, value=0, step=1, label="loudness shift (dB)", elem_id="transfer-loudness")
            loudness_stats = gr.Checkbox(value=False, label="map the loudness onto the voice's training range", elem_id="transfer-stats")
            mask_threshold = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="note-on mask threshold (0 = off)", elem_id="transfer-mask")
            attenuation = gr.Slider(0.0, 40.0, value=10.0, step=1, label="attenuation outside notes (dB)", elem_id="transfer-attenuation")
            run = gr.Button("Transfer", variant="primary", elem_id="transfer-run")
        with gr.Column(scale=2):
            status = gr.HTML(_status("upload a recording"), elem_id="transfer-status")
            audio = gr.Audio(type="filepath", interactive=False, label="sung", elem_id="transfer-audio")
            plot = gr.Image(type="filepath", interactive=False, label="spectrograms, loudness, F0, mask", elem_id="transfer-plot")
    run.click(
        tab.transfer, inputs=[recording, model, autotune, octave, loudness_db, loudness_stats, mask_threshold, attenuation],
        outputs=[audio, plot, status],
    )  # fmt: skip
