"""The web page's timbre-transfer tab without a browser: the handler, its errors, the page with both tabs."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from inference.api import Singer
from inference.webui import build_parser, model_sources
from inference.webui_transfer import TransferTab
from tests.audio_factory import sung_phrase


def test_the_tab_transfers_with_its_controls_and_reports_errors_in_the_status(ddsp_experiment, tmp_path):
    voice = Singer.load(ddsp_experiment / "tiny_ddsp", device="cpu")
    tab = TransferTab({"tiny": voice}, tmp_path / "work")
    source = tmp_path / "take.wav"
    sf.write(source, sung_phrase([60, 62, 64], 16000), 16000)
    wav, plot, status = tab.transfer(str(source), "tiny", 1.0, -1, 0.0, True, 0.0, 10.0)
    assert "sang take.wav" in status and plot.endswith(".png")
    expected = voice.transfer(source, autotune=1.0, octave_shift=-1, loudness_stats=True).wav
    written, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and np.abs(written - expected).max() < 2 / 32767  # the CLI's transfer, as 16-bit PCM
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    wav, plot, status = tab.transfer(str(silent), "tiny", 0.0, 0, 0.0, False, 0.0, 10.0)
    assert wav is None and 'class="error"' in status and "silence only" in status
    assert tab.transfer(None, "tiny", 0.0, 0, 0.0, False, 0.0, 10.0)[2].count("error") == 2  # class + text


def test_a_page_with_only_the_transfer_tab_builds(ddsp_experiment, tmp_path):
    from inference.webui import build_page

    args = build_parser().parse_args(["--ddsp_exp", "tiny_ddsp", "--work_dir_root", str(ddsp_experiment)])
    assert model_sources(args) == {}  # no score singer: allowed when a DDSP singer is given
    voices = {name: Singer.load(exp_dir or ckpt, device="cpu") for name, (exp_dir, ckpt) in model_sources(args, ddsp=True).items()}
    page = build_page(None, TransferTab(voices, tmp_path / "work"))
    assert "transfer-run" in {getattr(block, "elem_id", None) for block in page.blocks.values()}
