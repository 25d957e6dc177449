"""The metric columns of every results table (the CLI's markdown, the HTML report, the model comparison).

Its own module so that `inference.evaluate` and `inference.report` both read it without importing each other.
"""
from __future__ import annotations

import math
from typing import Any

# Table columns: (metric key, header, format: "%" = a share shown as a percentage, else decimals).
TABLE_COLUMNS = (
    ("mcd_db", "MCD (dB)", ".2f"),
    ("f0_rmse_cents", "F0 RMSE (cents)", ".2f"),
    ("semitone_accuracy", "semitone acc. (%)", "%"),
    ("vuv_error", "V/UV error (%)", "%"),
    ("in_tune_share", "in tune (%)", "%"),
    ("mcd_espnet", "MCD ESPnet (dB)", ".2f"),
    ("log_f0_rmse_espnet", "log-F0 RMSE ESPnet", ".3f"),
)


def table_cell(value: Any, form: str) -> str:
    """One metric in a table: `form` "%" shows a share as a percentage, else a format spec; NaN/None as n/a."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100.0 * value:.1f}" if form == "%" else format(value, form)
