"""Score -> waveform with a trained VISinger generator, phrase by phrase.

The score's frames are fixed once for the whole song by the frame rule (cumulative rounding from
time 0), so the output lasts exactly `round(end_of_last_note * rate / hop)` frames. The song is then
cut in the middle of every rest of at least `min_rest_seconds`; each phrase is rendered alone
(memory stays flat however long the song; on CPU with `limit_onednn_primitive_cache`) with
`crossfade_frames` extra frames of rest at its end, which are cross-faded with the start of the
next phrase.

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
from modules.score_inputs import ScoreInputs, SingingModel
from preprocessor.score import REST, Note
from preprocessor.text.frame_rule import note_frame_counts, phoneme_score
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
    """wav: float32 [S] at `sample_rate`; f0_hz: predicted F0 per frame [T] (0 = unvoiced);
    note_frames: frames of each score note (sum = T); timings: seconds per stage."""

    wav: np.ndarray
    sample_rate: int
    hop_size: int
    f0_hz: np.ndarray
    note_frames: list[int]
    notes: tuple[Note, ...]
    phrases: int
    timings: dict[str, float] = field(default_factory=dict)


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

    def _phrase_tensors(
        self, phonemized: Sequence[NotePhonemes], notes: Sequence[Note], note_frames: Sequence[int]
    ) -> ScoreInputs:
        """`[1, P]` score tensors of one phrase."""
        score = phoneme_score(notes, phonemized, note_frames)

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

    @torch.no_grad()
    def synthesize(self, notes: Sequence[Note], source: str = "<score>", key_shift: int = 0, speaker_id: int = 0, seed: int | None = 0) -> SynthesisResult:
        """Render `notes` (contiguous from time 0, rests as `SP`) to a waveform."""
        timings = {"frontend": 0.0, "acoustic": 0.0, "decoder": 0.0}
        started = time.perf_counter()
        if not notes:
            raise UserInputError(f"{source}: the score has no notes; write the melody as notes (one per syllable)")
        self._check_speaker(speaker_id)
        notes = tuple(n if n.is_rest or key_shift == 0 else Note(n.start, n.end, n.pitch + key_shift, n.lyric) for n in notes)
        _check_pitches(notes, key_shift, source)
        # Half-up, as the frame rule rounds every note boundary (Python's round() would send an end
        # lying exactly between two frames to the even one, one frame short of the rule's last boundary).
        total_frames = max(1, math.floor(notes[-1].end * (self.sample_rate / self.hop_size) + 0.5))
        note_frames = note_frame_counts([n.end for n in notes], self.sample_rate, self.hop_size, total_frames)
        phonemized = self.frontend.phonemize(list(notes), source=source)
        timings["frontend"] = time.perf_counter() - started
        generator = self.generator
        hop = self.hop_size
        wav = np.zeros(total_frames * hop, dtype=np.float32)
        f0 = np.zeros(total_frames, dtype=np.float32)
        fade = self.crossfade_frames * hop
        speaker = torch.tensor([speaker_id], device=self.device)
        if seed is not None:
            torch.manual_seed(seed)
        phrases = cut_phrases(notes, note_frames, self.min_rest_frames)
        for number, phrase in enumerate(phrases):
            frames = list(note_frames[phrase.first_note : phrase.last_note])
            # The phrase's share of the rests it was cut inside, plus the cross-fade tail.
            first_boundary = sum(note_frames[: phrase.first_note])
            frames[0] -= phrase.first_frame - first_boundary
            frames[-1] -= first_boundary + sum(note_frames[phrase.first_note : phrase.last_note]) - phrase.last_frame
            is_last = number == len(phrases) - 1
            tail = 0 if is_last else self.crossfade_frames
            frames[-1] += tail
            context = self.context_frames
            phrase_notes, phrase_phones, frames = with_rest_context(
                notes[phrase.first_note : phrase.last_note], phonemized[phrase.first_note : phrase.last_note], frames, context
            )
            inputs = self._phrase_tensors(phrase_phones, phrase_notes, frames)
            t0 = time.perf_counter()
            out = self._render(generator, inputs, speaker, timings)
            timings["acoustic"] += time.perf_counter() - t0 - timings.pop("_decoder_last", 0.0)
            audio = out["wav"][context * hop : len(out["wav"]) - context * hop]
            out["f0"] = out["f0"][context : len(out["f0"]) - context]
            start = phrase.first_frame * hop
            body = len(audio) - tail * hop
            if number > 0 and fade:
                ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
                wav[start : start + fade] = wav[start : start + fade] * (1 - ramp) + audio[:fade] * ramp
                wav[start + fade : start + body] = audio[fade:body]
            else:
                wav[start : start + body] = audio[:body]
            if tail:
                wav[start + body : start + body + tail * hop] = audio[body:]  # faded out by the next phrase
            f0[phrase.first_frame : phrase.last_frame] = out["f0"][: phrase.last_frame - phrase.first_frame]
        return SynthesisResult(wav, self.sample_rate, hop, f0, list(note_frames), notes, len(phrases), timings)

    def _check_speaker(self, speaker_id: int) -> None:
        """A bad id would index past the speaker table (or be silently ignored by a one-speaker model)."""
        n_speakers = self.generator.n_speakers
        if not 0 <= speaker_id < n_speakers:
            raise UserInputError(
                f"--speaker {speaker_id}: this model has {n_speakers} speaker(s); pass --speaker between 0 and {n_speakers - 1}"
            )

    def _render(self, generator: SingingModel, inputs: ScoreInputs, speaker: torch.Tensor, timings: dict[str, float]) -> dict[str, np.ndarray]:
        """One phrase through the model; forward hooks time its waveform stage apart from the rest."""
        marks: list[float] = []
        stage = generator.waveform_stage
        before = stage.register_forward_pre_hook(lambda *_: marks.append(time.perf_counter()))
        after = stage.register_forward_hook(lambda *_: marks.append(time.perf_counter()))
        try:
            out = generator.sing(inputs, speaker, self.noise_scale)
        finally:
            before.remove()
            after.remove()
        decoder_seconds = marks[1] - marks[0] if len(marks) == 2 else 0.0
        timings["decoder"] += decoder_seconds
        timings["_decoder_last"] = decoder_seconds
        return {"wav": out.wav[0, 0].float().cpu().numpy(), "f0": out.f0_hz[0].float().cpu().numpy()}
