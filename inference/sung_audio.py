"""What every `inference.api.Singer` method returns: mono audio at a rate (a sung score, a transferred recording)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SungAudio:
    """`wav` float32 mono `[S]` in [-1, 1] at `sample_rate`; `SungScore` and `TransferredRecording` add what made it."""

    wav: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    def write(self, path: Path | str) -> Path:
        """The audio as 16-bit PCM wav at `path`, written atomically (no half-written file on a failure)."""
        from preprocessor.atomic_io import write_wav_atomic

        write_wav_atomic(path, self.wav, self.sample_rate)
        return Path(path)
