"""Score -> waveform with a trained VISinger generator, phrase by phrase.

The score's frames are fixed once for the whole song by the frame rule (cumulative rounding from
time 0), so the output lasts exactly `round(end_of_last_note * rate / hop)` frames. The song is then
cut in the middle of every rest of at least `min_rest_seconds`; each phrase is rendered alone
(memory stays flat however long the song; on CPU with `limit_onednn_primitive_cache`) with
`crossfade_frames` extra frames of rest at its end, which are cross-faded with the start of the
next phrase.

A phrase longer than `max_piece_seconds` (a 10-minute note, a minute of leading rest, a song with
no rests) is rendered in pieces (`cut_pieces`), so that memory is bounded by construction and not
by the score: the phrase's phoneme-level score is cut at frame positions (inside notes and rests
alike; a phoneme split by a cut keeps its note's pitch, duration and slur on both sides), each piece
is rendered with `piece_overlap_seconds` of the real neighbouring score on both sides, and
consecutive pieces are cross-faded over the middle half of that overlap, where both renders have
seen at least a quarter of it as context. The model's attention, flow and decoder then never see
more than a piece plus its overlap.

The text frontend and frame rule are those of binarization (`preprocessor.text`), not copies.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from config.errors import UserInputError
from inference.backends import SCORE_FIELDS, DecodedChunk, PhraseRenderer, TorchRenderer, check_chunk_frames, decode_chunks, speaker_tensor
from inference.speakers import SpeakerValue, check_speaker_value
from inference.variance_matching import MATCHING_MODES, MatchSettings, match_variance
from modules.harmonic_source import fixed_source_noise
from modules.score_encoder import N_MIDI_PITCHES
from modules.score_inputs import ScoreInputs, SingingModel
from modules.variance import controlled_variance
from preprocessor.score import REST, Note, validate_notes
from preprocessor.text.frame_rule import PhonemeScore, note_frame_counts, phoneme_score
from preprocessor.text.korean import KoreanFrontend, NotePhonemes


ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def limit_onednn_primitive_cache(capacity: int = 32) -> None:
    """Keep a long song's memory flat on CPU: call at a program's start, before its first convolution.

    Every phrase has its own length, so oneDNN (PyTorch's CPU convolutions) builds new primitives for
    each phrase and, by default, caches up to 1024 of them: memory then grows with the number of
    phrases (paper-scale model, 3-minute song: peak RSS 2.1 GB, against 1.1 GB with 32 entries, at the
    same speed; bench/inference_speed.py). oneDNN reads the variable once, at its first primitive, so
    this does nothing later in the process; a value the user set wins.
    """
    os.environ.setdefault(ONEDNN_CACHE_VARIABLE, str(capacity))


@dataclass(frozen=True)
class SynthesisResult:
    """wav: float32 [S] at `sample_rate`; f0_hz: the F0 sung per frame [T] (0 = unvoiced; predicted,
    or given by the render plan); note_frames: frames of each score note (sum = T); timings: seconds
    per stage; phrase_f0_hz: the predicted F0 of each rendered phrase, trims included (for `--dump`);
    phrase_variance_db: for a model with expressive controls, the energy and breathiness each phrase was
    sung with, `[2, frames]` dB, trims included (for `--dump`; empty otherwise)."""

    wav: np.ndarray
    sample_rate: int
    hop_size: int
    f0_hz: np.ndarray
    note_frames: list[int]
    notes: tuple[Note, ...]
    phrases: int
    timings: dict[str, float] = field(default_factory=dict)
    phrase_f0_hz: tuple[np.ndarray, ...] = ()
    phrase_variance_db: tuple[np.ndarray, ...] = ()


DEFAULT_CHUNK_FRAMES = 32
# Streamed vs whole render, max abs sample difference (float rounding of convolutions of other lengths).
STREAM_TOLERANCE = 1e-4


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a streamed song: `wav` float32 samples starting at song sample `start`, of phrase `phrase`."""

    start: int
    wav: np.ndarray
    phrase: int


@dataclass(frozen=True)
class PhrasePlan:
    """One phrase as the generator renders it.

    notes/phonemes: the phrase's notes with the rest context added (`with_rest_context`) and what each sings.
    score: the phoneme-level model inputs (ids, frames, note pitch, note frames, slur), lists of length P.
    phone_note: the index into `notes` of each phoneme.
    trim_start/trim_end: frames rendered for context and dropped at each end; tail_frames: frames
        after the body that are cross-faded with the next phrase's start.
    f0_hz: the F0 to sing per rendered frame (NaN = predict), or None to sing the predicted F0.
    variance_db: the energy and breathiness (dB) to sing per rendered frame, two tuples (NaN = predict),
        or None to sing the predicted ones (a model with expressive controls only).
    """

    notes: tuple[Note, ...]
    phonemes: tuple[NotePhonemes, ...]
    score: PhonemeScore
    phone_note: tuple[int, ...]
    trim_start: int
    trim_end: int
    tail_frames: int
    f0_hz: tuple[float, ...] | None = None
    variance_db: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def frames(self) -> int:
        return int(sum(self.score.phone_frames))

    @property
    def body_frames(self) -> int:
        """Frames this phrase adds to the song (its tail overlaps the next phrase)."""
        return self.frames - self.trim_start - self.trim_end - self.tail_frames

    @property
    def note_frame_counts(self) -> list[int]:
        counts = [0] * len(self.notes)
        for note, frames in zip(self.phone_note, self.score.phone_frames):
            counts[note] += frames
        return counts


@dataclass(frozen=True)
class RenderPlan:
    """The phrases of a song (a tuple, or `LazyPhrasePlans` pronounced as they are read); `notes`/`note_frames`:
    the song's notes and frames (empty when read from a dump)."""

    phrases: Sequence[PhrasePlan]
    notes: tuple[Note, ...] = ()
    note_frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Phrase:
    first_note: int
    last_note: int  # exclusive
    first_frame: int
    last_frame: int  # exclusive


def cut_phrases(notes: Sequence[Note], note_frames: Sequence[int], min_rest_frames: int) -> list[_Phrase]:
    """Frame ranges covering the song, cut in the middle of every rest of at least `min_rest_frames`.

    A cut rest is split between its neighbours, so phrases tile the song with no gap or overlap.
    """
    boundaries = np.concatenate([[0], np.cumsum(note_frames)]).astype(int)
    cuts = []  # (note index of the rest, frame of the cut)
    for index, (note, frames) in enumerate(zip(notes, note_frames)):
        if note.lyric == REST and frames >= min_rest_frames and 0 < index < len(notes) - 1:
            cuts.append((index, int(boundaries[index] + frames // 2)))
    phrases, first_note, first_frame = [], 0, 0
    for rest_index, frame in cuts:
        phrases.append(_Phrase(first_note, rest_index + 1, first_frame, frame))
        first_note, first_frame = rest_index, frame
    phrases.append(_Phrase(first_note, len(notes), first_frame, int(boundaries[-1])))
    return phrases


@dataclass(frozen=True)
class Piece:
    """One bounded render of a long phrase: `core` frames are its share, `window` what it renders (frames)."""

    core_start: int
    core_end: int
    window_start: int
    window_end: int


def cut_pieces(total_frames: int, max_core_frames: int, overlap_frames: int) -> list[Piece]:
    """Equal pieces of at most `max_core_frames` tiling ``0..total_frames``, each window widened by
    `overlap_frames` on both sides (clipped to the phrase). One piece when the phrase fits."""
    if max_core_frames < 1 or overlap_frames < 0:
        raise ValueError(f"need max_core_frames >= 1 and overlap_frames >= 0, got {max_core_frames}, {overlap_frames}")
    count = max(1, math.ceil(total_frames / max_core_frames))
    edges = [round(k * total_frames / count) for k in range(count + 1)]
    return [
        Piece(start, end, max(0, start - overlap_frames), min(total_frames, end + overlap_frames))
        for start, end in zip(edges, edges[1:])
    ]


def slice_phone_inputs(inputs: ScoreInputs, start: int, end: int) -> ScoreInputs:
    """The `[1, P]` phoneme-level score restricted to frames ``start..end``: phonemes outside are
    dropped, the two at the edges keep only their frames inside (their note's pitch, duration and
    slur are unchanged, so a cut inside a note continues that note)."""
    frames = inputs.phone_frames[0]
    ends = torch.cumsum(frames, 0)
    starts = ends - frames
    inside = (ends > start) & (starts < end)
    inside |= (frames == 0) & (starts > start) & (starts < end)  # a zero-frame phoneme inside the window
    index = torch.nonzero(inside).squeeze(1)
    clipped = ends[index].clamp(max=end) - starts[index].clamp(min=start)
    return ScoreInputs(
        phone_ids=inputs.phone_ids[:, index],
        note_pitch=inputs.note_pitch[:, index],
        note_dur=inputs.note_dur[:, index],
        slur=inputs.slur[:, index],
        phone_frames=clipped.clamp_min(0).unsqueeze(0),
        phone_lengths=torch.tensor([len(index)], device=frames.device),
    )


def _check_pitches(notes: Sequence[Note], key_shift: int, source: str) -> None:
    """Sung pitches (after `key_shift`) must be MIDI 1..127: the score encoder has one embedding per MIDI pitch."""
    for index, note in enumerate(notes):
        if not note.is_rest and not 1 <= note.pitch <= N_MIDI_PITCHES - 1:
            written = f"{note.pitch - key_shift} {key_shift:+d} = {note.pitch}" if key_shift else f"{note.pitch}"
            raise UserInputError(
                f"{source}: note {index} at {note.start:.3f} s has pitch {written}, outside MIDI 1..{N_MIDI_PITCHES - 1}; "
                "use a smaller --key_shift (or fix the note)"
            )


REST_PHONEMES = NotePhonemes(REST, (REST,), False)


def with_rest_context(
    notes: Sequence[Note], phonemized: Sequence[NotePhonemes], note_frames: Sequence[int], context_frames: int
) -> tuple[list[Note], list[NotePhonemes], list[int]]:
    """A phrase with `context_frames` of rest added at both ends (an edge rest is lengthened, else a
    rest note is added), so that it looks like the segments the model was trained on."""
    notes, phonemized, frames = list(notes), list(phonemized), list(note_frames)
    if context_frames <= 0:
        return notes, phonemized, frames
    if notes[0].lyric == REST:
        frames[0] += context_frames
    else:
        notes.insert(0, Note(notes[0].start, notes[0].start, 0, REST))
        phonemized.insert(0, REST_PHONEMES)
        frames.insert(0, context_frames)
    if notes[-1].lyric == REST:
        frames[-1] += context_frames
    else:
        notes.append(Note(notes[-1].end, notes[-1].end, 0, REST))
        phonemized.append(REST_PHONEMES)
        frames.append(context_frames)
    return notes, phonemized, frames


class SingingSynthesizer:
    """A singer plus the shared frontend: `synthesize(notes)` -> `SynthesisResult`.

    Args:
        generator: a trained `SingingModel` (VISinger's generator, the pair, ...; put in eval mode here,
            also wrapped in a torch `TorchRenderer` for streaming) or a `PhraseRenderer` (an ONNX
            pack's `OnnxRenderer`, inference/onnx_backend.py): the same phrase logic for both backends.
        sample_rate, hop_size: the audio settings it was trained with.
        noise_scale: the prior's sampling temperature (0.667 as VITS; 0 = the prior mean).
        min_rest_seconds: rests at least this long separate independently rendered phrases.
        crossfade_frames: overlap between consecutive phrases.
        context_seconds: rest rendered before and after every phrase and then dropped. Training
            segments always begin and end in silence, and the convolutions learn where a segment's
            edges are; a phrase that starts on a sung note at time 0 would otherwise come out silent
            at its start (seen on the demo model).
        max_piece_seconds: the longest stretch rendered in one go; a longer phrase is rendered in
            pieces (see the module doc). It bounds memory: 4 s keeps any score under the peak of a
            3-minute song of ordinary phrases (bench/inference_speed.py --long_note_seconds).
        piece_overlap_seconds: real score rendered beyond each cut inside a phrase; the middle half
            of it is cross-faded.
        variance_matching: for a model with expressive controls (`inference.variance_matching`), how the
            sung energy and breathiness reach the audio: "change" (default) renders with the predicted
            curves and imposes the asked change (offset, edited curve) on the render with a two-band gain,
            so that the plain render is the model's own and an offset moves the measured levels by its
            amount; "absolute" lets the prior read the sung curves and then levels every render (plain
            too) to them; "off" only the prior reads them (the learnt response, often a fraction).
        win_size: the analysis window of the levels (the binarization's `audio.win_size`; default 4 hops).
        match_settings: the gain's clamp, smoothing, silence floor and passes.
    """

    def __init__(
        self,
        generator: SingingModel | PhraseRenderer,
        sample_rate: int,
        hop_size: int,
        device: torch.device | str = "cpu",
        noise_scale: float = 0.667,
        min_rest_seconds: float = 0.3,
        crossfade_frames: int = 4,
        frontend: KoreanFrontend | None = None,
        context_seconds: float = 0.3,
        max_piece_seconds: float = 4.0,
        piece_overlap_seconds: float = 1.0,
        variance_matching: str = "change",
        win_size: int | None = None,
        match_settings: MatchSettings = MatchSettings(),
    ) -> None:
        if variance_matching not in MATCHING_MODES:
            raise UserInputError(f"--variance_matching {variance_matching!r}: use one of {', '.join(MATCHING_MODES)}")
        self.variance_matching = variance_matching
        self.win_size = 4 * hop_size if win_size is None else win_size
        self.match_settings = match_settings
        if isinstance(generator, nn.Module):
            self.generator: nn.Module | None = generator.eval().to(device)
            self.renderer: PhraseRenderer = TorchRenderer(self.generator, sample_rate, hop_size, device)
        else:  # an ONNX renderer or another PhraseRenderer
            self.generator, self.renderer = None, generator
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.device = torch.device(device)
        self.noise_scale = noise_scale
        self.min_rest_frames = max(1, round(min_rest_seconds * sample_rate / hop_size))
        self.crossfade_frames = crossfade_frames
        self.context_frames = max(0, round(context_seconds * sample_rate / hop_size))
        self.frontend = frontend or KoreanFrontend()
        frames_per_second = sample_rate / hop_size
        overlap = max(0, round(piece_overlap_seconds * frames_per_second))
        self.piece_overlap_frames = overlap
        self.max_piece_frames = max(2 * overlap + 2, round(max_piece_seconds * frames_per_second))  # cross-fades never meet

    @property
    def backend(self) -> str:
        """"torch" or "onnx": what runs the networks."""
        return self.renderer.name

    def _phrase_tensors(self, score: PhonemeScore) -> ScoreInputs:
        """`[1, P]` score tensors of one phrase."""

        def row(values, dtype):
            return torch.tensor([values], dtype=dtype, device=self.device)

        return ScoreInputs(
            phone_ids=row(score.phone_ids, torch.long),
            note_pitch=row(score.note_pitch, torch.long),
            note_dur=row(score.note_dur, torch.float32),
            slur=row(score.slur, torch.long),
            phone_frames=row(score.phone_frames, torch.long),
            phone_lengths=row(len(score.phone_ids), torch.long).view(1),
        )

    def plan(self, notes: Sequence[Note], source: str = "<score>", key_shift: int = 0, lazy: bool = False) -> RenderPlan:
        """The phrases `synthesize` renders `notes` as (contiguous from time 0, rests as `SP`): the editable render.

        `lazy`: the phrases are pronounced (the text front end) only when first read (`LazyPhrasePlans`),
        so that a stream's first phrase does not wait for the whole song's front end; the notes are
        checked now either way, a bad lyric later raises when its phrase is reached."""
        if not notes:
            raise UserInputError(f"{source}: the score has no notes; write the melody as notes (one per syllable)")
        validate_notes(notes, source)
        notes = tuple(n if n.is_rest or key_shift == 0 else Note(n.start, n.end, n.pitch + key_shift, n.lyric) for n in notes)
        _check_pitches(notes, key_shift, source)
        # Half-up, as the frame rule rounds every note boundary (Python's round() would send an end
        # lying exactly between two frames to the even one, one frame short of the rule's last boundary).
        total_frames = max(1, math.floor(notes[-1].end * (self.sample_rate / self.hop_size) + 0.5))
        note_frames = note_frame_counts([n.end for n in notes], self.sample_rate, self.hop_size, total_frames)
        phrases = cut_phrases(notes, note_frames, self.min_rest_frames)
        if lazy:
            return RenderPlan(LazyPhrasePlans(self, notes, note_frames, phrases, source), notes, tuple(note_frames))
        phonemized = self.frontend.phonemize(list(notes), source=source)
        planned = tuple(
            self._phrase_plan(number, phrase, notes, note_frames, phonemized[phrase.first_note : phrase.last_note], len(phrases))
            for number, phrase in enumerate(phrases)
        )
        return RenderPlan(planned, notes, tuple(note_frames))

    def _phrase_plan(
        self, number: int, phrase: _Phrase, notes: Sequence[Note], note_frames: Sequence[int], phonemes: Sequence[NotePhonemes], n_phrases: int
    ) -> PhrasePlan:
        """Phrase `number` of `n_phrases` (`phonemes`: what its notes sing) as the generator renders it."""
        frames = list(note_frames[phrase.first_note : phrase.last_note])
        # The phrase's share of the rests it was cut inside, plus the cross-fade tail.
        first_boundary = sum(note_frames[: phrase.first_note])
        frames[0] -= phrase.first_frame - first_boundary
        frames[-1] -= first_boundary + sum(note_frames[phrase.first_note : phrase.last_note]) - phrase.last_frame
        tail = 0 if number == n_phrases - 1 else self.crossfade_frames
        frames[-1] += tail
        phrase_notes, phrase_phones, frames = with_rest_context(notes[phrase.first_note : phrase.last_note], phonemes, frames, self.context_frames)
        score = phoneme_score(phrase_notes, phrase_phones, frames)
        phone_note = [index for index, phones in enumerate(phrase_phones) for _ in phones.phonemes]
        return PhrasePlan(tuple(phrase_notes), tuple(phrase_phones), score, tuple(phone_note), self.context_frames, self.context_frames, tail)

    @torch.no_grad()
    def synthesize(self, notes: Sequence[Note], source: str = "<score>", key_shift: int = 0, speaker_id: SpeakerValue = 0, seed: int | None = 0) -> SynthesisResult:
        """Render `notes` (contiguous from time 0, rests as `SP`) to a waveform."""
        started = time.perf_counter()
        self._check_speaker(speaker_id)
        plan = self.plan(notes, source, key_shift)
        frontend_seconds = time.perf_counter() - started
        result = self.render(plan, speaker_id=speaker_id, seed=seed)
        result.timings["frontend"] = frontend_seconds
        return result

    def _variance_inputs(self, plan: RenderPlan, offset_db: Sequence[float] | None) -> torch.Tensor | None:
        """The offsets as a `[2]` tensor for a model with expressive controls; a UserInputError when the
        model has none but offsets or curves were asked for."""
        asked = offset_db is not None and any(float(v) != 0.0 for v in offset_db)
        # A lazy plan comes from a score (curves come from render files only): reading it would run its front end now.
        curves = not isinstance(plan.phrases, LazyPhrasePlans) and any(p.variance_db is not None for p in plan.phrases)
        if self.generator is None:
            if asked or curves:
                raise UserInputError(
                    "--energy_db / --breathiness_db (or energy/breathiness curves in a render file) with --backend onnx: "
                    "the exported graphs sing the predicted energy and breathiness; use --backend torch"
                )
            return None
        if not getattr(self.generator, "variance_controls", False):
            if asked or curves:
                raise UserInputError(
                    "--energy_db / --breathiness_db (or energy/breathiness curves in a render file): this model has no expressive "
                    "controls; train it with model.variance_controls: true (and features.breathiness: true in the dataset)"
                )
            return None
        values = [0.0, 0.0] if offset_db is None else [float(v) for v in offset_db]
        if len(values) != 2 or not all(math.isfinite(v) for v in values):
            raise UserInputError(f"energy/breathiness offsets must be two finite dB values, got {list(offset_db or [])}")
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def render(
        self, plan: RenderPlan, speaker_id: SpeakerValue = 0, seed: int | None = 0, noise_scale: float | None = None, variance_offset_db: Sequence[float] | None = None
    ) -> SynthesisResult:
        """Render a `RenderPlan` (from `plan`, or read back from a dump and edited).

        Phrase k starts where phrase k-1's body ends (its frames less both trims and its cross-fade
        tail), so a phrase made longer or shorter moves everything after it. A phrase's `f0_hz` (NaN
        = the model's prediction) replaces the predicted F0; None everywhere = predicted.
        `noise_scale`: this render's prior temperature (default: the synthesizer's).
        `variance_offset_db`: (energy, breathiness) dB added to the sung curves (predicted, or a phrase's
        `variance_db`), for a model with expressive controls (`modules.variance`).
        """
        song = SongRender(self, plan, speaker_id, seed, noise_scale, chunk_frames=None, variance_offset_db=variance_offset_db)
        pieces = [chunk.wav for chunk in song.chunks()]
        return song.result(np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32))

    def stream(
        self,
        plan: RenderPlan,
        speaker_id: SpeakerValue = 0,
        seed: int | None = 0,
        noise_scale: float | None = None,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        variance_offset_db: Sequence[float] | None = None,
    ) -> SongRender:
        """`render` as a stream: `.chunks()` yields `AudioChunk`s in order, which join into `render(...).wav`
        within `STREAM_TOLERANCE`; `.result(wav)` describes the song afterwards. The first chunk comes
        after one phrase's (or one piece's) acoustic pass and one decoder chunk, however long the song.
        The arguments are checked now (a chunk under `MIN_CHUNK_FRAMES` frames: `UserInputError`)."""
        check_chunk_frames(chunk_frames)
        return SongRender(self, plan, speaker_id, seed, noise_scale, chunk_frames, variance_offset_db)

    def _f0_override(self, phrase: PhrasePlan, inputs: ScoreInputs, speaker_id: SpeakerValue, noise_scale: float) -> torch.Tensor | None:
        """The phrase's given F0 as `[1, T]`, its NaN frames filled with the model's prediction."""
        if phrase.f0_hz is None:
            return None
        given = np.asarray(phrase.f0_hz, dtype=np.float32)
        missing = np.isnan(given)
        if missing.any():
            # One extra pass for the prediction, with the random state put back so that the render
            # itself draws the same noise as without the override.
            predicted = np.zeros(phrase.frames, dtype=np.float32)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                for _ in self._decoded_phrase(inputs, None, predicted, speaker_id, noise_scale, None, 0, phrase.frames, {"acoustic": 0.0, "decoder": 0.0}, None, None, None):
                    pass
            given = np.where(missing, predicted, given)
        return torch.from_numpy(given)[None].to(self.device)

    def _check_speaker(self, speaker_id: SpeakerValue) -> None:
        """A bad id would index past the speaker table (or be silently ignored by a one-speaker model)."""
        check_speaker_value(speaker_id, self.renderer.n_speakers, "--speaker")

    def _decoded_phrase(
        self,
        inputs: ScoreInputs,
        f0: torch.Tensor | None,
        phrase_f0: np.ndarray,
        speaker_id: SpeakerValue,
        noise_scale: float,
        chunk_frames: int | None,
        keep_start: int,
        keep_end: int,
        timings: dict[str, float],
        variance: torch.Tensor | None,
        variance_offset_db: torch.Tensor | None,
        phrase_variance: np.ndarray | None,
    ) -> Iterator[DecodedChunk]:
        """Frames `[keep_start, keep_end)` of one phrase's audio, in order; fills `phrase_f0 [T]` (the F0 sung)
        on the way. In one go when it fits in `max_piece_frames`, else piece by piece (`cut_pieces`,
        `slice_phone_inputs`), each piece's window rendered alone and cross-faded with the next over the
        middle half of their overlap, so that memory is bounded for either backend; a streamed window is
        decoded in chunks. `f0` `[1, T]` (Hz): the phrase's given F0, cut with each piece; `variance`
        `[1, 2, T]` (dB, NaN = predicted) likewise, with `variance_offset_db` `[2]` (None: a model without
        expressive controls); `phrase_variance [2, T]` receives the energy and breathiness sung."""
        hop = self.hop_size
        total = int(inputs.phone_frames.sum())
        pieces = cut_pieces(total, self.max_piece_frames, self.piece_overlap_frames)
        if len(pieces) == 1:
            sung, sung_variance, chunks = self._render_window(
                inputs, f0, speaker_id, noise_scale, chunk_frames, keep_start, keep_end, timings, variance, variance_offset_db
            )  # fmt: skip
            phrase_f0[:] = sung
            if phrase_variance is not None and sung_variance is not None:
                phrase_variance[:] = sung_variance
            yield from chunks
            return
        half = self.piece_overlap_frames // 2
        fade = np.linspace(0.0, 1.0, 2 * half * hop, endpoint=False, dtype=np.float32)
        fade_out = fade[::-1]
        pending = np.zeros(0, dtype=np.float32)  # the previous piece's faded-out end, added to this one's start
        for number, piece in enumerate(pieces):
            first, last = number == 0, number == len(pieces) - 1
            start = piece.core_start if first else piece.core_start - half  # frames of the phrase this piece writes
            end = piece.core_end if last else piece.core_end + half
            # The first piece starts decoding where the phrase's kept audio starts (its leading trim is
            # dropped anyway), so that its first chunk is a whole one.
            decode_from = min(max(start, keep_start), end - 2 * half) if first else start
            piece_f0 = None if f0 is None else f0[:, piece.window_start : piece.window_end]
            piece_variance = None if variance is None else variance[:, :, piece.window_start : piece.window_end]
            piece_inputs = slice_phone_inputs(inputs, piece.window_start, piece.window_end)
            sung, sung_variance, chunks = self._render_window(
                piece_inputs, piece_f0, speaker_id, noise_scale, chunk_frames, decode_from - piece.window_start, end - piece.window_start, timings,
                piece_variance, variance_offset_db,
            )  # fmt: skip
            core = slice(piece.core_start - piece.window_start, piece.core_end - piece.window_start)
            phrase_f0[piece.core_start : piece.core_end] = sung[core]
            if phrase_variance is not None and sung_variance is not None:
                phrase_variance[:, piece.core_start : piece.core_end] = sung_variance[:, core]
            # The piece's samples [start, end) arrive chunk by chunk: its first 2 * half frames fade in over the
            # previous piece's faded-out end (the two ramps add up to one), its last 2 * half frames fade out
            # and wait for the next piece; the rest leaves as it comes (less the phrase's trims).
            length, tail_start = (end - start) * hop, (end - start - 2 * half) * hop
            next_pending = np.zeros(len(fade), dtype=np.float32)
            offset = (decode_from - start) * hop
            for decoded in chunks:
                audio, at = decoded.wav.copy(), offset
                offset += len(audio)
                if not first and at < len(fade):
                    n = min(len(fade) - at, len(audio))
                    audio[:n] = audio[:n] * fade[at : at + n] + pending[at : at + n]
                emit_end = len(audio)
                if not last and at + len(audio) > tail_start:
                    k = max(0, tail_start - at)
                    next_pending[at + k - tail_start : at + len(audio) - tail_start] = audio[k:] * fade_out[at + k - tail_start : at + len(audio) - tail_start]
                    emit_end = k
                lo, hi = max(start * hop + at, keep_start * hop), min(start * hop + at + emit_end, keep_end * hop)
                if hi > lo:
                    yield DecodedChunk(lo // hop, audio[lo - start * hop - at : hi - start * hop - at])
            assert offset == length, (offset, length)
            pending = next_pending

    def _render_window(
        self,
        inputs: ScoreInputs,
        f0: torch.Tensor | None,
        speaker_id: SpeakerValue,
        noise_scale: float,
        chunk_frames: int | None,
        first_frame: int,
        last_frame: int,
        timings: dict[str, float],
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, Iterator[DecodedChunk]]:
        """One window (a phrase or a piece) through the singer: its F0 sung `[T]` and its audio frames
        `[first_frame, last_frame)`. A torch singer rendering whole windows runs its own `sing` (the
        singer contract); otherwise the renderer's acoustic pass, then its decoder, whole or in chunks.
        The noise is drawn here, not inside a backend, so that torch and onnxruntime sing the same sample.
        With expressive controls, the kept frames are then levelled to the sung energy and breathiness
        (`variance_matching`; the curves returned are the sung ones in every mode)."""
        hop = self.hop_size
        # "change" matching: the prior sings the predicted curves, the asked change is imposed on the audio.
        change = variance_offset_db is not None and self.variance_matching == "change"
        prior_variance, prior_offset = (None, torch.zeros_like(variance_offset_db)) if change else (variance, variance_offset_db)
        if self.generator is not None and chunk_frames is None:
            t0 = time.perf_counter()
            speaker = speaker_tensor(speaker_id, self.device)
            out = self._render(self.generator, inputs, speaker, timings, f0, noise_scale, prior_variance, prior_offset)
            timings["acoustic"] += time.perf_counter() - t0 - timings.pop("_decoder_last", 0.0)
            sung_f0, rendered_variance = out["f0"], out.get("variance")
            chunks: Iterator[DecodedChunk] = iter([DecodedChunk(first_frame, out["wav"][first_frame * hop : last_frame * hop])])
        else:
            renderer = self.renderer
            n_frames = int(inputs.phone_frames.sum())
            started = time.perf_counter()
            prior_noise = torch.randn(1, renderer.prior_noise_channels, n_frames).numpy() if renderer.prior_noise_channels else None
            score = {name: getattr(inputs, name).cpu().numpy() for name in SCORE_FIELDS}
            given = None if f0 is None else f0[0].cpu().numpy()
            if variance_offset_db is not None:  # a torch model with expressive controls (onnx refuses them: `_variance_inputs`)
                acoustic = renderer.acoustic(score, given, prior_noise, noise_scale, speaker_id, variance=prior_variance, variance_offset_db=prior_offset)
            else:
                acoustic = renderer.acoustic(score, given, prior_noise, noise_scale, speaker_id)
            timings["acoustic"] += time.perf_counter() - started
            source_noise = fixed_source_noise((1, 1, n_frames * hop)).numpy()[0, 0] if renderer.uses_noise else None
            chunks = _timed(decode_chunks(renderer, acoustic.latent, acoustic.f0, source_noise, speaker_id, chunk_frames, first_frame, last_frame), timings)
            sung_f0, rendered_variance = acoustic.f0, acoustic.variance_db
        if variance_offset_db is None or rendered_variance is None or self.variance_matching == "off":
            return sung_f0, rendered_variance, chunks
        if change:  # what was rendered is the prediction; the sung curves are the prediction edited
            predicted = torch.from_numpy(rendered_variance)[None]
            sung = controlled_variance(predicted, None if variance is None else variance.cpu(), variance_offset_db.cpu(), torch.ones_like(predicted[:, :1]))[0].numpy()
            edit = (sung - rendered_variance)[:, first_frame:last_frame]
            if not np.any(edit):  # nothing asked: the render is the model's, sample for sample
                return sung_f0, sung, chunks
            matching = {"change_db": edit}
        else:
            sung = rendered_variance
            matching = {"target_db": sung[:, first_frame:last_frame]}
        return sung_f0, sung, self._matched(chunks, np.asarray(sung_f0)[first_frame:last_frame], first_frame, timings, matching)

    def _matched(self, chunks: Iterator[DecodedChunk], f0_hz: np.ndarray, first_frame: int, timings: dict[str, float], matching: dict) -> Iterator[DecodedChunk]:
        """The window's decoded frames joined and levelled to the sung energy and breathiness (`match_variance`),
        as one chunk: the gains need the whole window's analysis, so a stream waits for its window here."""
        wav = np.concatenate([decoded.wav for decoded in chunks])
        started = time.perf_counter()
        matched = match_variance(wav, f0_hz, self.sample_rate, self.hop_size, self.win_size, settings=self.match_settings, **matching)
        timings["matching"] = timings.get("matching", 0.0) + time.perf_counter() - started
        yield DecodedChunk(first_frame, matched)

    def _render(
        self,
        generator: SingingModel,
        inputs: ScoreInputs,
        speaker: torch.Tensor,
        timings: dict[str, float],
        f0: torch.Tensor | None = None,
        noise_scale: float | None = None,
        variance: torch.Tensor | None = None,
        variance_offset_db: torch.Tensor | None = None,
    ) -> dict[str, np.ndarray]:
        """One phrase (or piece) through the model; forward hooks time its waveform stage apart from the rest."""
        controls = {} if variance_offset_db is None else {"variance": variance, "variance_offset_db": variance_offset_db}
        marks: list[float] = []
        stage = generator.waveform_stage
        before = stage.register_forward_pre_hook(lambda *_: marks.append(time.perf_counter()))
        after = stage.register_forward_hook(lambda *_: marks.append(time.perf_counter()))
        try:
            out = generator.sing(inputs, speaker, self.noise_scale if noise_scale is None else noise_scale, f0=f0, **controls)
        finally:
            before.remove()
            after.remove()
        decoder_seconds = marks[1] - marks[0] if len(marks) == 2 else 0.0
        timings["decoder"] += decoder_seconds
        timings["_decoder_last"] = decoder_seconds
        result = {"wav": out.wav[0, 0].float().cpu().numpy(), "f0": out.f0_hz[0].float().cpu().numpy()}
        if variance_offset_db is not None:
            result["variance"] = out.variance_db[0].float().cpu().numpy()
        return result


def _timed(chunks: Iterator[DecodedChunk], timings: dict[str, float]) -> Iterator[DecodedChunk]:
    """`chunks`, the time spent making each added to `timings["decoder"]`."""
    while True:
        started = time.perf_counter()
        decoded = next(chunks, None)
        timings["decoder"] += time.perf_counter() - started
        if decoded is None:
            return
        yield decoded


class LazyPhrasePlans(Sequence[PhrasePlan]):
    """A plan's phrases, each pronounced only when first read (`SingingSynthesizer.plan(lazy=True)`).

    Phrases are cut inside rests, which the front end's phrases never cross, so a phrase pronounced
    alone sings what it sings in the whole song; a bad lyric is reported as the whole song's front end
    reports it. `bodies`: each phrase's song frames, known without the front end.
    """

    def __init__(self, synthesizer: SingingSynthesizer, notes: tuple[Note, ...], note_frames: Sequence[int], phrases: list[_Phrase], source: str) -> None:
        self.synthesizer, self.notes, self.note_frames, self.phrases, self.source = synthesizer, notes, list(note_frames), phrases, source
        self.bodies = [phrase.last_frame - phrase.first_frame for phrase in phrases]
        self._planned: dict[int, PhrasePlan] = {}

    def __len__(self) -> int:
        return len(self.phrases)

    def __getitem__(self, index):  # noqa: ANN001 (int or slice, as a tuple's)
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        index = range(len(self))[index]
        if index not in self._planned:
            s, phrase = self.synthesizer, self.phrases[index]
            notes = list(self.notes[phrase.first_note : phrase.last_note])
            try:
                phonemes = s.frontend.phonemize(notes, source=self.source)
            except UserInputError:
                # The phrase's own message counts notes from the phrase's start: let the whole song say where.
                s.frontend.phonemize(list(self.notes), source=self.source)
                raise
            self._planned[index] = s._phrase_plan(index, phrase, self.notes, self.note_frames, phonemes, len(self.phrases))
        return self._planned[index]


class SongRender:
    """One `RenderPlan` through a synthesizer: `chunks()` yields its audio in order, phrase by phrase, cross-faded.

    Phrase k covers its body frames plus `tail_frames` (cross-faded by phrase k + 1); the tail is held
    back until phrase k + 1 has rendered the same samples, so every sample leaves exactly once, final.
    After `chunks()` ran out, `result(wav)` is the song's `SynthesisResult`.
    """

    def __init__(
        self,
        synthesizer: SingingSynthesizer,
        plan: RenderPlan,
        speaker_id: SpeakerValue,
        seed: int | None,
        noise_scale: float | None,
        chunk_frames: int | None,
        variance_offset_db: Sequence[float] | None = None,
    ) -> None:
        synthesizer._check_speaker(speaker_id)
        self.variance_offset = synthesizer._variance_inputs(plan, variance_offset_db)  # [2] or None
        self.synthesizer = synthesizer
        self.plan = plan
        self.speaker_id = speaker_id
        self.seed = seed
        self.noise_scale = synthesizer.noise_scale if noise_scale is None else noise_scale
        self.chunk_frames = chunk_frames
        lazy_bodies = getattr(plan.phrases, "bodies", None)  # a lazy plan knows them before its front end runs
        self.bodies = list(lazy_bodies) if lazy_bodies is not None else [p.body_frames for p in plan.phrases]
        self.total_frames = sum(self.bodies)
        self.f0 = np.zeros(self.total_frames, dtype=np.float32)
        self.phrase_f0: list[np.ndarray] = []
        self.phrase_variance: list[np.ndarray] = []
        self.timings = {"frontend": 0.0, "acoustic": 0.0, "decoder": 0.0}

    @property
    def sample_rate(self) -> int:
        return self.synthesizer.sample_rate

    @property
    def total_samples(self) -> int:
        return self.total_frames * self.synthesizer.hop_size

    def result(self, wav: np.ndarray) -> SynthesisResult:
        """The song's `SynthesisResult`, given the samples its chunks joined into."""
        s, plan = self.synthesizer, self.plan
        if len(wav) != self.total_samples:
            raise ValueError(f"{len(wav)} samples, but the song has {self.total_frames} frames of {s.hop_size}")
        note_frames = list(plan.note_frames) if plan.note_frames else [f for p in plan.phrases for f in p.note_frame_counts]
        return SynthesisResult(
            wav, s.sample_rate, s.hop_size, self.f0, note_frames, plan.notes, len(plan.phrases), self.timings, tuple(self.phrase_f0), tuple(self.phrase_variance),
        )  # fmt: skip

    @torch.no_grad()
    def chunks(self) -> Iterator[AudioChunk]:
        s = self.synthesizer
        hop = s.hop_size
        fade = s.crossfade_frames * hop
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
        if self.seed is not None:
            torch.manual_seed(self.seed)
        pending = np.zeros(fade, dtype=np.float32)  # the previous phrase's tail (zeros past it), to cross-fade
        first_frame = 0
        for number, phrase in enumerate(self.plan.phrases):
            inputs = s._phrase_tensors(phrase.score)
            override = s._f0_override(phrase, inputs, self.speaker_id, self.noise_scale)
            phrase_f0 = np.zeros(phrase.frames, dtype=np.float32)
            offset = self.variance_offset
            variance = None
            if offset is not None and phrase.variance_db is not None:
                variance = torch.tensor([phrase.variance_db], dtype=torch.float32, device=s.device)  # [1, 2, T]
            phrase_variance = None if offset is None else np.zeros((2, phrase.frames), dtype=np.float32)
            start = first_frame * hop  # song sample of the phrase's first kept sample
            body = self.bodies[number] * hop  # then the tail, cross-faded by the next phrase
            keep_end = phrase.frames - phrase.trim_end
            position, tail_pieces = 0, []
            decoded_chunks = s._decoded_phrase(
                inputs, override, phrase_f0, self.speaker_id, self.noise_scale, self.chunk_frames, phrase.trim_start, keep_end, self.timings,
                variance, offset, phrase_variance,
            )  # fmt: skip
            for decoded in decoded_chunks:
                piece, first = decoded.wav, position
                position += len(piece)
                emit = piece[: max(0, body - first)].copy()
                if number > 0 and first < fade:  # cross-fade with the previous phrase's tail
                    n = min(fade - first, len(emit))
                    emit[:n] = pending[first : first + n] * (1 - ramp[first : first + n]) + emit[:n] * ramp[first : first + n]
                if position > body:
                    tail_pieces.append(piece[max(0, body - first) :])
                if len(emit):
                    yield AudioChunk(start + first, emit, number)
            self.phrase_f0.append(phrase_f0)
            if phrase_variance is not None:
                self.phrase_variance.append(phrase_variance)
            sung = phrase_f0 if override is None else override[0].cpu().numpy()
            self.f0[first_frame : first_frame + self.bodies[number]] = sung[phrase.trim_start : phrase.trim_start + self.bodies[number]]
            tail = np.concatenate(tail_pieces) if tail_pieces else np.zeros(0, dtype=np.float32)
            pending = np.concatenate([tail, np.zeros(max(0, fade - len(tail)), dtype=np.float32)])
            first_frame += self.bodies[number]
