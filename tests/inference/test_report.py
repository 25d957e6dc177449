"""`inference/evaluate.py` writes a PNG per item and a one-page report.html (inference/report.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAIR = Path(__file__).resolve().parent / "espnet_reference"


def test_evaluate_cli_writes_item_pictures_and_an_html_report(tmp_path):
    for side, source in (("ref", "ref.wav"), ("gen", "gen.wav")):
        (tmp_path / side).mkdir()
        shutil.copy(PAIR / source, tmp_path / side / "phrase.wav")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "inference/evaluate.py", "--ref", str(tmp_path / "ref"), "--gen", str(tmp_path / "gen"),
         "--sample_rate", "16000", "--hop_size", "160", "--no_espnet"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    png = tmp_path / "gen" / "phrase.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    page = (tmp_path / "gen" / "report.html").read_text(encoding="utf-8")
    assert 'src="../ref/phrase.wav"' in page and 'src="phrase.wav"' in page and page.count("<audio ") == 2
    assert '<img src="phrase.png"' in page
    assert "<th>items</th></tr>" in page and "<td>generated</td>" in page and "MCD ESPnet (dB)" in page
    # --no_report: metrics only
    (tmp_path / "gen" / "report.html").unlink()
    png.unlink()
    again = subprocess.run(
        [sys.executable, "inference/evaluate.py", "--ref", str(tmp_path / "ref"), "--gen", str(tmp_path / "gen"),
         "--sample_rate", "16000", "--hop_size", "160", "--no_espnet", "--no_report"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0 and not png.exists() and not (tmp_path / "gen" / "report.html").exists()
