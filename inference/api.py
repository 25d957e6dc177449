"""The Python API: load any trained model and sing with it: a score, or (a DDSP singer) another recording.

    from inference.api import Singer
    singer = Singer.load("checkpoints/csd_visinger")          # experiment folder, checkpoint file or pack
    out = singer.sing("song.mid", key_shift=2)                 # out.wav: float32 mono [S], out.sample_rate
    singer.speakers                                            # ("demo", "demo_low") for a multi-speaker model
    out = singer.sing("song.mid", speaker="demo:0.5,demo_low:0.5")   # a name, an id or a weighted mix
    pair = Singer.load("checkpoints/csd_fs2", vocoder="checkpoints/csd_hifigan")   # the two-stage baseline
    singer.pack("packed/csd_visinger")                         # a self-contained folder (model.pt + README.md)
    onnx = Singer.load("packed/csd_onnx", backend="onnx")     # a pack with inference/export_onnx.py's graphs, run by onnxruntime
    for chunk in singer.sing_stream("song.mid"):               # AudioChunk(start, wav, phrase) as it is sung
        ...

    voice = Singer.load("packed/demo_ddsp")                    # a DDSP singer: timbre transfer
    out = voice.transfer("take.wav", autotune=1.0, octave_shift=-1)          # or (samples, sample_rate)
    for block in voice.stream(samples, 44100, block_frames=2): ...            # the real-time path, block by block

What a model does is decided from the file (its model description, `model_io.description`): a model with
the role "singer" sings scores alone (VISinger); an "acoustic" model needs a "vocoder" (a pair pack holds
both); a "transfer" model (the DDSP singer) sings recordings. Every method returns a `SungAudio` (`.wav`,
`.sample_rate`, `.write(path)`); a method the model cannot do is one line saying what it can do.
Nothing here imports the training code (`tasks/`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch import nn

from config.errors import UserInputError
from inference.devices import DEFAULT_DEVICE, resolve_device
from inference.backends import PhraseRenderer
from inference.speakers import SpeakerValue, parse_speaker, speaker_names
from inference.sung_audio import SungAudio
from inference.sung_file import PlannedFile, plan_file, sing_file
from inference.synthesis import DEFAULT_CHUNK_FRAMES, AudioChunk, RenderPlan, SingingSynthesizer, SongRender, SynthesisResult
from model_io.description import ACOUSTIC, SINGER, TRANSFER, VOCODER, ModelDescription
from model_io.loader import combine_pair, load_saved
from model_io.saved import SavedModels
from preprocessor.audio import AudioSettings
from preprocessor.scores.midi_reader import Score
from preprocessor.text.korean import KoreanFrontend

if TYPE_CHECKING:
    from inference.timbre_transfer import LiveTransfer, TransferredRecording

DEFAULT_NOISE_SCALE = 0.667  # the prior's sampling temperature (VITS's value; 0 = the prior mean)
BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class SungScore(SungAudio):
    """A rendered score: `wav` float32 mono `[S]` in [-1, 1] at `sample_rate`; `warnings` about the score
    (notes outside the trained range, a reader's notes); `synthesis` holds the predicted F0 and frames;
    `plan`: the render it was sung from (what `--dump` writes), with the settings it was rendered with
    (`speaker`, `seed`, `noise_scale`: a render file brings its own; `speaker` is an id or, for a mix,
    one weight per speaker)."""

    warnings: tuple[str, ...]
    synthesis: SynthesisResult
    plan: RenderPlan
    speaker: SpeakerValue
    seed: int | None
    noise_scale: float


class Singer:
    """A trained model that sings: scores (`sing`; VISinger, the pair) or recordings (`transfer`, `stream`; a DDSP
    singer). Build it with `Singer.load`."""

    def __init__(
        self, model: nn.Module | PhraseRenderer, saved: SavedModels, device: torch.device, frontend: KoreanFrontend | None = None
    ) -> None:
        # A torch model, or an ONNX pack's `OnnxRenderer` (`backend="onnx"`), which runs where it was opened.
        self.model = model.eval().to(device) if isinstance(model, nn.Module) else model
        self.saved = saved
        self.device = device
        self.frontend = frontend  # None: made at the first song (its g2pk load costs seconds)
        self._synthesizers: dict[tuple[float, str], SingingSynthesizer] = {}
        self.transfers = bool(saved.description.names_with_role(TRANSFER))  # a recording in, not a score
        if self.transfers:
            from inference.timbre_transfer import loudness_window

            self.loudness_n_fft = loudness_window(saved.description, str(saved.source))

    @classmethod
    def load(
        cls,
        source: Path | str,
        vocoder: Path | str | None = None,
        device: str = DEFAULT_DEVICE,
        frontend: KoreanFrontend | None = None,
        backend: str = "torch",
    ) -> Singer:
        """`source`: an experiment folder (its best checkpoint, else the latest), a checkpoint file or a pack
        folder, of any model family; `vocoder`: the same for the vocoder of an acoustic model (a pair pack
        carries its own); `device`: auto, cpu, cuda or cuda:N; `frontend`: a text frontend to share between
        several singers; `backend`: "torch", or "onnx" for a pack folder holding inference/export_onnx.py's
        graphs (VISinger's or the pair's), run by onnxruntime with the same front end, phrases and noise."""
        if backend not in BACKENDS:
            raise UserInputError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if backend == "onnx":
            from inference.onnx_backend import load_onnx_singer

            if vocoder is not None:
                raise UserInputError(f"{source}: --backend onnx reads a pack exported with its vocoder (inference/export_onnx.py); drop the vocoder")
            resolved = resolve_device(device)
            renderer, saved = load_onnx_singer(Path(source), device=resolved.type, threads=torch.get_num_threads())
            return cls(renderer, saved, resolved, frontend)
        saved = load_saved(source)
        description = saved.description
        if description.names_with_role(TRANSFER):
            if vocoder is not None:
                raise UserInputError(f"{saved.source}: a timbre-transfer model sings by itself; drop the vocoder")
            return cls(saved.build(saved.only(TRANSFER, "transfer model")), saved, resolve_device(device), frontend)
        if description.names_with_role(SINGER):
            if vocoder is not None:
                raise UserInputError(f"{saved.source}: sings by itself (a {SINGER} model); drop the vocoder")
            return cls(saved.build(saved.only(SINGER, "singer")), saved, resolve_device(device), frontend)
        if not description.names_with_role(ACOUSTIC):
            held = ", ".join(f"{name} ({spec.role})" for name, spec in description.models.items())
            raise UserInputError(f"{saved.source}: holds nothing that sings ({held}); pass a VISinger, an acoustic model or a DDSP singer")
        if vocoder is not None:
            saved = combine_pair(saved, load_saved(vocoder))
        elif not description.names_with_role(VOCODER):
            raise UserInputError(f"{saved.source}: an acoustic model needs a vocoder; pass one (--vocoder_exp NAME, --vocoder_ckpt PATH, vocoder=...)")
        from inference.pair import AcousticVocoderPair

        pair = AcousticVocoderPair(saved.build(saved.only(ACOUSTIC, "acoustic model")), saved.build(saved.only(VOCODER, "vocoder")))
        return cls(pair, saved, resolve_device(device), frontend)

    @property
    def backend(self) -> str:
        """"torch" or "onnx": what runs the networks."""
        return "torch" if isinstance(self.model, nn.Module) else self.model.name

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

    def _needs_scores(self) -> None:
        if self.transfers:
            raise UserInputError(
                f"{self.source}: a timbre-transfer model (DDSP singer) sings recordings, not scores; "
                f"use Singer.transfer(wav, sample_rate) or python inference/transfer.py --ckpt {self.source} --wav IN --out OUT"
            )

    def _needs_transfer(self) -> None:
        if not self.transfers:
            raise UserInputError(
                f"{self.source}: sings scores, not recordings (it holds no timbre-transfer model); "
                "use Singer.sing(score), or load a DDSP singer (config/models/ddsp_singer.yaml) to transfer a recording"
            )

    def synthesizer(self, noise_scale: float = DEFAULT_NOISE_SCALE, variance_matching: str = "change") -> SingingSynthesizer:
        """The phrase-by-phrase synthesizer of this model (one per noise scale and `variance_matching` mode, see
        `SingingSynthesizer`; the text frontend is shared)."""
        self._needs_scores()
        key = (noise_scale, variance_matching)
        if key not in self._synthesizers:
            a = self.audio
            synthesizer = SingingSynthesizer(
                self.model, a.sample_rate, a.hop_size, device=self.device, noise_scale=noise_scale, frontend=self.frontend,
                variance_matching=variance_matching, win_size=a.win_size,
            )  # fmt: skip
            self.frontend = synthesizer.frontend
            self._synthesizers[key] = synthesizer
        return self._synthesizers[key]

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
        variance_matching: str = "change",
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
        any other model refuses a nonzero value); per-frame curves come from an edited render file.
        `variance_matching`: how they reach the audio ("change": imposed on the render, "absolute", "off";
        `inference.synthesis.SingingSynthesizer`)."""
        self._needs_scores()
        speaker_value, pitch_range = self._speaker_choice(speaker)
        sung = sing_file(
            self.synthesizer(noise_scale, variance_matching), Path(score_path), Path(lyrics) if lyrics is not None else None, track, monophonic,
            key_shift, speaker_value, noise_scale, seed, pitch_range, score, (float(energy_db), float(breathiness_db)),
        )  # fmt: skip
        result = sung.result
        return SungScore(result.wav, result.sample_rate, sung.warnings, result, sung.plan, sung.speaker, sung.seed, sung.noise_scale)

    def _speaker_choice(self, speaker: int | str) -> tuple[SpeakerValue, tuple[int, int] | None]:
        """`speaker` (an id, a name, or a mix "a:0.7,b:0.3") -> (its `SpeakerValue`, the pitch range to warn against)."""
        choice = parse_speaker(speaker, self.speakers)
        # One named speaker: warn against its own trained range (another voice may sing another range).
        pitch_range = (None if choice.is_mix else self.description.speaker_pitch_range(self.speakers[choice.value])) or self.pitch_range
        return choice.value, pitch_range

    def open_stream(
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
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        energy_db: float = 0.0,
        breathiness_db: float = 0.0,
        variance_matching: str = "change",
    ) -> tuple[SongRender, PlannedFile]:
        """`sing`'s score (the same arguments), planned and ready to render in decoder chunks of `chunk_frames`
        frames: (`song`, `planned`); `song.chunks()` yields `AudioChunk`s in order, which join into
        `sing(...).wav` within `inference.synthesis.STREAM_TOLERANCE`, and `song.result(wav)` describes the
        song afterwards. The score is read and checked (and the chunk size) before anything is sung. With
        expressive controls and an asked change, a window's audio waits for the whole window (its levels
        are matched on the whole of it)."""
        self._needs_scores()
        synthesizer = self.synthesizer(noise_scale, variance_matching)
        speaker_value, pitch_range = self._speaker_choice(speaker)
        planned = plan_file(
            synthesizer, Path(score_path), Path(lyrics) if lyrics is not None else None, track, monophonic,
            key_shift, speaker_value, noise_scale, seed, pitch_range, score, lazy=True,
        )  # fmt: skip
        offsets = (float(energy_db), float(breathiness_db))
        song = synthesizer.stream(planned.plan, planned.speaker, planned.seed, planned.noise_scale, chunk_frames, offsets)
        return song, planned

    def sing_stream(self, score_path: Path | str, lyrics: Path | str | None = None, key_shift: int = 0, speaker: int | str = 0, **options) -> Iterator[AudioChunk]:
        """`sing` as a stream of `AudioChunk`s (float32 `wav` from song sample `start`), the first after one
        phrase's acoustic pass and one decoder chunk; `options` are `open_stream`'s (`chunk_frames`, `seed`, ...)."""
        song, _ = self.open_stream(score_path, lyrics, key_shift, speaker, **options)  # checks the score before the first chunk
        return song.chunks()

    # ---- timbre transfer (a DDSP singer) ------------------------------------------------------------
    def transfer(
        self,
        recording: np.ndarray | Path | str,
        sample_rate: int | None = None,
        *,
        autotune: float = 0.0,
        octave_shift: float = 0.0,
        loudness_db: float = 0.0,
        loudness_stats: bool = False,
        mask_threshold: float | None = None,
        attenuation: float = 1.0,
        score: Path | str | None = None,
        speaker: int = 0,
        block_frames: int | None = None,
    ) -> TransferredRecording:
        """Sing `recording` in this voice: a file (any rate, mono or stereo, wav/flac/mp3/ogg) or samples `[S]` /
        `[S, channels]` at `sample_rate`. Its F0 and loudness are measured as the training data was, then
        `autotune` (0..1; towards the nearest semitone, or `score`'s notes), `octave_shift`, `loudness_stats` (map
        its loudness onto the voice's training distribution), `loudness_db`, and the note-on mask
        (`mask_threshold`, `attenuation` dB) are applied (`inference.transfer_controls`). `block_frames`: render
        through the real-time path instead (the same samples within 1e-4). Returns a
        `inference.timbre_transfer.TransferredRecording` (`.wav` at the model's rate, `.sample_rate`, `.tracks`)."""
        from inference.timbre_transfer import recording_at_rate, transfer

        self._needs_transfer()
        controls = self._controls(
            autotune=autotune, octave_shift=octave_shift, loudness_db=loudness_db, loudness_stats=loudness_stats,
            mask_threshold=mask_threshold, attenuation=attenuation, score=score, speaker=speaker,
        )  # fmt: skip
        wav, where = recording_at_rate(recording, sample_rate, self.sample_rate)
        return transfer(self.model, self.audio, self.loudness_n_fft, wav, where, controls, block_frames)

    def stream(
        self, recording: np.ndarray | Path | str, sample_rate: int | None = None, *, block_frames: int = 1, causal: bool = False, **controls: Any
    ) -> Iterator[np.ndarray]:
        """`transfer` through the real-time path, yielded block by block: float32 `[block_frames * hop]` per block;
        `controls`: the keyword arguments of `transfer` (`autotune`, `octave_shift`, ..., `speaker`).

        `causal=False`: the input's F0 and loudness are measured on the whole recording first, the model runs block by
        block, one hop behind the input (the first hop is silence; the last item is the flushed last hop; together
        the offline render within 1e-4; `inference.timbre_transfer.stream_blocks`). `causal=True`: audio in, audio
        out, each block's F0 and loudness measured from it and the audio before it (`live`), one output block per
        input block, `live(...).lag_frames` behind."""
        from inference.timbre_transfer import live_transfer, recording_at_rate, stream_blocks

        self._needs_transfer()
        wav, where = recording_at_rate(recording, sample_rate, self.sample_rate)
        make = live_transfer if causal else stream_blocks
        return make(self.model, self.audio, self.loudness_n_fft, wav, where, self._controls(**controls), block_frames)

    def live(self, block_frames: int = 1, *, autotune: float = 0.0, octave_shift: float = 0.0, loudness_db: float = 0.0, speaker: int = 0) -> LiveTransfer:
        """A live transfer for a host with audio only: `push(samples [block_frames * hop] at the model's rate) -> samples`,
        F0 and loudness tracked causally (`inference.timbre_transfer.LiveTransfer`; its `lag_frames` is the delay)."""
        from inference.timbre_transfer import LiveTransfer

        self._needs_transfer()
        controls = self._controls(autotune=autotune, octave_shift=octave_shift, loudness_db=loudness_db, speaker=speaker)
        return LiveTransfer(self.model, self.audio, self.loudness_n_fft, controls, block_frames)

    def streamer(self, block_frames: int = 1, speaker: int = 0):
        """The bare real-time renderer (`modules.ddsp_streaming.StreamingDDSPSinger`, on the CPU) for a host that
        measures its own F0 and loudness: `process(f0 [K], loudness [K]) -> [K * hop]`, `flush()`."""
        from inference.timbre_transfer import streamer

        self._needs_transfer()
        return streamer(self.model, block_frames, speaker)

    def export_torchscript(self, path: Path | str, block_frames: int = 1, speaker: int = 0) -> Path:
        """Write the real-time renderer as TorchScript for a plug-in host (`modules.ddsp_streaming.export_torchscript`)."""
        from inference.timbre_transfer import write_torchscript

        self._needs_transfer()
        return write_torchscript(self.model, Path(path), block_frames, speaker)

    @staticmethod
    def _controls(
        *, autotune: float = 0.0, octave_shift: float = 0.0, loudness_db: float = 0.0, loudness_stats: bool = False,
        mask_threshold: float | None = None, attenuation: float = 1.0, score: Path | str | None = None, speaker: int = 0,
    ):  # fmt: skip
        from inference.timbre_transfer import TransferControls

        return TransferControls(
            autotune=float(autotune), score=Path(score) if score is not None else None, octave_shift=float(octave_shift),
            loudness_db=float(loudness_db), loudness_stats=bool(loudness_stats),
            mask_threshold=float(mask_threshold) if mask_threshold is not None else None, attenuation=float(attenuation), speaker=int(speaker),
        )  # fmt: skip

    def pack(self, out_dir: Path | str) -> Path:
        """Write the model(s) as a self-contained pack folder (`model.pt` + `README.md` model card)."""
        from model_io.pack import write_pack

        if self.backend != "torch":
            raise UserInputError(f"{self.source}: packing writes torch weights; load the singer with backend='torch' to pack it")
        return write_pack(self.saved, Path(out_dir))
