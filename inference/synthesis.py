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
from typing import Sequence

import numpy as np
import torch

from config.errors import UserInputError
from modules.score_encoder import N_MIDI_PITCHES
from inference.speakers import SpeakerValue, check_speaker_value
from modules.score_inputs import ScoreInputs, SingingModel
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
    """The phrases of a song; `notes`/`note_frames`: the song's notes and frames (empty when read from a dump)."""

    phrases: tuple[PhrasePlan, ...]
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
        generator: a trained `SingingModel` (VISinger's generator, the pair, ...; put in eval mode here).
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
    """

    def __init__(
        self,
        generator: SingingModel,
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
    ) -> None:
        self.generator = generator.eval().to(device)
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

    def plan(self, notes: Sequence[Note], source: str = "<score>", key_shift: int = 0) -> RenderPlan:
        """The phrases `synthesize` renders `notes` as (contiguous from time 0, rests as `SP`): the editable render."""
        if not notes:
            raise UserInputError(f"{source}: the score has no notes; write the melody as notes (one per syllable)")
        validate_notes(notes, source)
        notes = tuple(n if n.is_rest or key_shift == 0 else Note(n.start, n.end, n.pitch + key_shift, n.lyric) for n in notes)
        _check_pitches(notes, key_shift, source)
        # Half-up, as the frame rule rounds every note boundary (Python's round() would send an end
        # lying exactly between two frames to the even one, one frame short of the rule's last boundary).
        total_frames = max(1, math.floor(notes[-1].end * (self.sample_rate / self.hop_size) + 0.5))
        note_frames = note_frame_counts([n.end for n in notes], self.sample_rate, self.hop_size, total_frames)
        phonemized = self.frontend.phonemize(list(notes), source=source)
        phrases = cut_phrases(notes, note_frames, self.min_rest_frames)
        planned = []
        for number, phrase in enumerate(phrases):
            frames = list(note_frames[phrase.first_note : phrase.last_note])
            # The phrase's share of the rests it was cut inside, plus the cross-fade tail.
            first_boundary = sum(note_frames[: phrase.first_note])
            frames[0] -= phrase.first_frame - first_boundary
            frames[-1] -= first_boundary + sum(note_frames[phrase.first_note : phrase.last_note]) - phrase.last_frame
            tail = 0 if number == len(phrases) - 1 else self.crossfade_frames
            frames[-1] += tail
            phrase_notes, phrase_phones, frames = with_rest_context(
                notes[phrase.first_note : phrase.last_note], phonemized[phrase.first_note : phrase.last_note], frames, self.context_frames
            )
            score = phoneme_score(phrase_notes, phrase_phones, frames)
            phone_note = [index for index, phones in enumerate(phrase_phones) for _ in phones.phonemes]
            planned.append(PhrasePlan(tuple(phrase_notes), tuple(phrase_phones), score, tuple(phone_note), self.context_frames, self.context_frames, tail))
        return RenderPlan(tuple(planned), notes, tuple(note_frames))

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
        curves = any(p.variance_db is not None for p in plan.phrases)
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
        noise_scale = self.noise_scale if noise_scale is None else noise_scale
        self._check_speaker(speaker_id)
        offset = self._variance_inputs(plan, variance_offset_db)
        timings = {"frontend": 0.0, "acoustic": 0.0, "decoder": 0.0}
        hop = self.hop_size
        bodies = [p.body_frames for p in plan.phrases]
        total_frames = sum(bodies)
        wav = np.zeros(total_frames * hop, dtype=np.float32)
        f0 = np.zeros(total_frames, dtype=np.float32)
        fade = self.crossfade_frames * hop
        speaker = self._speaker_tensor(speaker_id)
        if seed is not None:
            torch.manual_seed(seed)
        predicted_f0, sung_variance = [], []
        first_frame = 0
        for number, phrase in enumerate(plan.phrases):
            inputs = self._phrase_tensors(phrase.score)
            override = self._f0_override(phrase, inputs, speaker, noise_scale)
            variance = None
            if offset is not None and phrase.variance_db is not None:
                variance = torch.tensor([phrase.variance_db], dtype=torch.float32, device=self.device)  # [1, 2, T]
            t0 = time.perf_counter()
            out = self._render_phrase(self.generator, inputs, speaker, timings, override, noise_scale, variance, offset)
            timings["acoustic"] += time.perf_counter() - t0 - timings.pop("_decoder_last", 0.0)
            predicted_f0.append(out["f0"])
            if "variance" in out:
                sung_variance.append(out["variance"])
            sung_f0 = out["f0"] if override is None else override[0].cpu().numpy()
            audio = out["wav"][phrase.trim_start * hop : len(out["wav"]) - phrase.trim_end * hop]
            phrase_f0 = sung_f0[phrase.trim_start : len(sung_f0) - phrase.trim_end]
            start = first_frame * hop
            tail = phrase.tail_frames
            body = len(audio) - tail * hop
            if number > 0 and fade:
                ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
                wav[start : start + fade] = wav[start : start + fade] * (1 - ramp) + audio[:fade] * ramp
                wav[start + fade : start + body] = audio[fade:body]
            else:
                wav[start : start + body] = audio[:body]
            if tail:
                wav[start + body : start + body + tail * hop] = audio[body:]  # faded out by the next phrase
            f0[first_frame : first_frame + bodies[number]] = phrase_f0[: bodies[number]]
            first_frame += bodies[number]
        note_frames = list(plan.note_frames) if plan.note_frames else [f for p in plan.phrases for f in p.note_frame_counts]
        return SynthesisResult(wav, self.sample_rate, hop, f0, note_frames, plan.notes, len(plan.phrases), timings, tuple(predicted_f0), tuple(sung_variance))

    def _f0_override(self, phrase: PhrasePlan, inputs: ScoreInputs, speaker: torch.Tensor, noise_scale: float) -> torch.Tensor | None:
        """The phrase's given F0 as `[1, T]`, its NaN frames filled with the model's prediction."""
        if phrase.f0_hz is None:
            return None
        given = np.asarray(phrase.f0_hz, dtype=np.float32)
        missing = np.isnan(given)
        if missing.any():
            # One extra pass for the prediction, with the random state put back so that the render
            # itself draws the same noise as without the override.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                predicted = self._render_phrase(self.generator, inputs, speaker, {"decoder": 0.0}, None, noise_scale)["f0"]
            given = np.where(missing, predicted, given)
        return torch.from_numpy(given)[None].to(self.device)

    def _check_speaker(self, speaker_id: SpeakerValue) -> None:
        """A bad id would index past the speaker table (or be silently ignored by a one-speaker model)."""
        check_speaker_value(speaker_id, self.generator.n_speakers, "--speaker")

    def _speaker_tensor(self, speaker_id: SpeakerValue) -> torch.Tensor:
        """`[1]` id, or `[1, n_speakers]` mix weights (`inference.speakers`)."""
        if isinstance(speaker_id, tuple):
            return torch.tensor([list(speaker_id)], dtype=torch.float32, device=self.device)
        return torch.tensor([speaker_id], device=self.device)

    def _render_phrase(
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
        """One phrase: in one go when it fits in `max_piece_frames`, else piece by piece, cross-faded.

        `f0` `[1, T]` (Hz): the phrase's given F0 (a dump's or a DS score's curve), cut with each piece;
        `variance` `[1, 2, T]` (dB, NaN = predicted) likewise; `variance_offset_db` `[2]`: None for a model
        without expressive controls (then the output has no "variance").
        """
        total = int(inputs.phone_frames.sum())
        pieces = cut_pieces(total, self.max_piece_frames, self.piece_overlap_frames)
        if len(pieces) == 1:
            return self._render(generator, inputs, speaker, timings, f0, noise_scale, variance, variance_offset_db)
        hop, half = self.hop_size, self.piece_overlap_frames // 2
        wav = np.zeros(total * hop, dtype=np.float32)
        f0_sung = np.zeros(total, dtype=np.float32)
        variance_sung = np.zeros((2, total), dtype=np.float32)
        fade = np.linspace(0.0, 1.0, 2 * half * hop, endpoint=False, dtype=np.float32)
        decoder_seconds = 0.0
        for number, piece in enumerate(pieces):
            piece_f0 = None if f0 is None else f0[:, piece.window_start : piece.window_end]
            piece_variance = None if variance is None else variance[:, :, piece.window_start : piece.window_end]
            piece_inputs = slice_phone_inputs(inputs, piece.window_start, piece.window_end)
            out = self._render(generator, piece_inputs, speaker, timings, piece_f0, noise_scale, piece_variance, variance_offset_db)
            decoder_seconds += timings.pop("_decoder_last", 0.0)
            first, last = number == 0, number == len(pieces) - 1
            start = piece.core_start if first else piece.core_start - half  # frames of the phrase this piece writes
            end = piece.core_end if last else piece.core_end + half
            audio = out["wav"][(start - piece.window_start) * hop : (end - piece.window_start) * hop].copy()
            if not first:
                audio[: len(fade)] *= fade
            if not last:
                audio[len(audio) - len(fade) :] *= fade[::-1]
            wav[start * hop : end * hop] += audio  # the two ramps over a cross-fade add up to one
            f0_sung[piece.core_start : piece.core_end] = out["f0"][piece.core_start - piece.window_start : piece.core_end - piece.window_start]
            if "variance" in out:
                variance_sung[:, piece.core_start : piece.core_end] = out["variance"][:, piece.core_start - piece.window_start : piece.core_end - piece.window_start]
        timings["_decoder_last"] = decoder_seconds
        return {"wav": wav, "f0": f0_sung} | ({"variance": variance_sung} if variance_offset_db is not None else {})

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
