"""The Python API: load any trained singer and sing a score with it.

    from inference.api import Singer
    singer = Singer.load("checkpoints/csd_visinger")          # experiment folder, checkpoint file or pack
    out = singer.sing("song.mid", key_shift=2)                 # out.wav: float32 mono [S], out.sample_rate
    singer.speakers                                            # ("demo", "demo_low") for a multi-speaker model
    out = singer.sing("song.mid", speaker="demo:0.5,demo_low:0.5")   # a name, an id or a weighted mix
    pair = Singer.load("checkpoints/csd_fs2", vocoder="checkpoints/csd_hifigan")   # the two-stage baseline
    singer.pack("packed/csd_visinger")                         # a self-contained folder (model.pt + README.md)

What sings is decided from the file (its model description, `model_io.description`): a model with
the role "singer" sings alone (VISinger); an "acoustic" model needs a "vocoder" (a pair pack holds
both). Nothing here imports the training code (`tasks/`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from config.errors import UserInputError
from inference.devices import DEFAULT_DEVICE, resolve_device
from inference.speakers import SpeakerValue, parse_speaker, speaker_names
from inference.sung_file import sing_file
from inference.synthesis import RenderPlan, SingingSynthesizer, SynthesisResult
from model_io.description import ACOUSTIC, SINGER, VOCODER, ModelDescription
from model_io.loader import combine_pair, load_saved
from model_io.saved import SavedModels
from preprocessor.audio import AudioSettings
from preprocessor.scores.midi_reader import Score
from preprocessor.text.korean import KoreanFrontend

DEFAULT_NOISE_SCALE = 0.667  # the prior's sampling temperature (VITS's value; 0 = the prior mean)


@dataclass(frozen=True)
class SungScore:
    """A rendered score: `wav` float32 mono `[S]` in [-1, 1] at `sample_rate`; `warnings` about the score
    (notes outside the trained range, a reader's notes); `synthesis` holds the predicted F0 and frames;
    `plan`: the render it was sung from (what `--dump` writes), with the settings it was rendered with
    (`speaker`, `seed`, `noise_scale`: a render file brings its own; `speaker` is an id or, for a mix,
    one weight per speaker)."""

    wav: np.ndarray
    sample_rate: int
    warnings: tuple[str, ...]
    synthesis: SynthesisResult
    plan: RenderPlan
    speaker: SpeakerValue
    seed: int | None
    noise_scale: float


class Singer:
    """A trained model that sings scores. Build it with `Singer.load`."""

    def __init__(self, model: nn.Module, saved: SavedModels, device: torch.device, frontend: KoreanFrontend | None = None) -> None:
        self.model = model.eval().to(device)
        self.saved = saved
        self.device = device
        self.frontend = frontend  # None: made at the first song (its g2pk load costs seconds)
        self._synthesizers: dict[float, SingingSynthesizer] = {}

    @classmethod
    def load(
        cls, source: Path | str, vocoder: Path | str | None = None, device: str = DEFAULT_DEVICE, frontend: KoreanFrontend | None = None
    ) -> Singer:
        """`source`: an experiment folder (its best checkpoint, else the latest), a checkpoint file or a pack
        folder, of any model family; `vocoder`: the same for the vocoder of an acoustic model (a pair pack
        carries its own); `device`: auto, cpu, cuda or cuda:N; `frontend`: a text frontend to share between
        several singers."""
        saved = load_saved(source)
        description = saved.description
        if description.names_with_role(SINGER):
            if vocoder is not None:
                raise UserInputError(f"{saved.source}: sings by itself (a {SINGER} model); drop the vocoder")
            return cls(saved.build(saved.only(SINGER, "singer")), saved, resolve_device(device), frontend)
        if not description.names_with_role(ACOUSTIC):
            held = ", ".join(f"{name} ({spec.role})" for name, spec in description.models.items())
            raise UserInputError(f"{saved.source}: holds nothing that sings from a score ({held}); pass a VISinger or an acoustic model")
        if vocoder is not None:
            saved = combine_pair(saved, load_saved(vocoder))
        elif not description.names_with_role(VOCODER):
            raise UserInputError(f"{saved.source}: an acoustic model needs a vocoder; pass one (--vocoder_exp NAME, --vocoder_ckpt PATH, vocoder=...)")
        from inference.pair import AcousticVocoderPair

        pair = AcousticVocoderPair(saved.build(saved.only(ACOUSTIC, "acoustic model")), saved.build(saved.only(VOCODER, "vocoder")))
        return cls(pair, saved, resolve_device(device), frontend)

    @property
    def description(self) -> ModelDescription:
        return self.saved.description

    @property
    def audio(self) -> AudioSettings:
        return self.saved.description.audio

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def source(self) -> Path:
        return self.saved.source

    @property
    def pitch_range(self) -> tuple[int, int] | None:
        """The MIDI note range of the training data, when the file records it."""
        return self.saved.description.pitch_range

    @property
    def speakers(self) -> tuple[str, ...]:
        """The voices' names in id order: those the file records (the training data's speakers), else "0", "1", ..."""
        return speaker_names(self.saved.description.speakers, int(self.model.n_speakers))

    def synthesizer(self, noise_scale: float = DEFAULT_NOISE_SCALE) -> SingingSynthesizer:
        """The phrase-by-phrase synthesizer of this model (one per noise scale; the text frontend is shared)."""
        if noise_scale not in self._synthesizers:
            a = self.audio
            synthesizer = SingingSynthesizer(self.model, a.sample_rate, a.hop_size, device=self.device, noise_scale=noise_scale, frontend=self.frontend)
            self.frontend = synthesizer.frontend
            self._synthesizers[noise_scale] = synthesizer
        return self._synthesizers[noise_scale]

    def sing(
        self,
        score_path: Path | str,
        lyrics: Path | str | None = None,
        key_shift: int = 0,
        speaker: int | str = 0,
        *,
        noise_scale: float = DEFAULT_NOISE_SCALE,
        seed: int | None = 0,
        track: int | None = None,
        monophonic: str = "strict",
        score: Score | None = None,
        energy_db: float = 0.0,
        breathiness_db: float = 0.0,
    ) -> SungScore:
        """Sing the score at `score_path`: any format `preprocessor.scores` reads (.mid .musicxml .xml .mxl
        .ust .ustx .ds; `lyrics`: a Hangul text for a MIDI without lyric events), or a render file written
        by `--dump` (.json, sung as written: its own speaker, seed and noise scale), transposed by `key_shift`
        semitones, as `speaker`: an id, a name of `speakers`, or a mix `"a:0.7,b:0.3"` (the weighted sum of
        their embeddings, weights scaled to sum to 1; a bad name is a `UserInputError` naming the known
        ones). The same inputs give the same audio (`seed` fixes the prior's
        sample; the pair is deterministic). `score`: the score of `score_path` already read (e.g. with
        edited lyrics), sung instead of reading the file. `energy_db` / `breathiness_db`: dB added to the
        loudness / breathiness the model would sing (a model trained with `model.variance_controls`;
        any other model refuses a nonzero value); per-frame curves come from an edited render file."""
        choice = parse_speaker(speaker, self.speakers)
        # One named speaker: warn against its own trained range (another voice may sing another range).
        pitch_range = (None if choice.is_mix else self.description.speaker_pitch_range(self.speakers[choice.value])) or self.pitch_range
        sung = sing_file(
            self.synthesizer(noise_scale), Path(score_path), Path(lyrics) if lyrics is not None else None, track, monophonic,
            key_shift, choice.value, noise_scale, seed, pitch_range, score, (float(energy_db), float(breathiness_db)),
        )  # fmt: skip
        result = sung.result
        return SungScore(result.wav, result.sample_rate, sung.warnings, result, sung.plan, sung.speaker, sung.seed, sung.noise_scale)

    def pack(self, out_dir: Path | str) -> Path:
        """Write the model(s) as a self-contained pack folder (`model.pt` + `README.md` model card)."""
        from model_io.pack import write_pack

        return write_pack(self.saved, Path(out_dir))
