"""The DDSP singer block by block, for real time: caches instead of look-ahead, equal to the offline render.

`StreamingDDSPSinger(singer, block_frames)` takes the F0 and loudness of `block_frames` new frames per call
(1 frame = one hop: 10 ms for the demo's 16 kHz / hop 160) and returns `block_frames * hop` samples. What it
carries from call to call, instead of seeing the whole recording:

- the estimator's GRU state (the estimator is causal; `modules.ddsp_estimator`);
- the held F0 and the raw controls of the last two frames (context for the synthesisers);
- the harmonic oscillator's phase (cycles, float64), passed to `harmonic_synthesis(initial_cycles=...)`;
- the absolute sample position, which indexes the fixed noise sequence (`noise_table`);
- for each learnt reverb, the last `ir_length - 1` dry samples (overlap-save convolution with the IR).

Latency: the synthesisers of the offline chain (`modules.ddsp`) interpolate controls between frame
centres and centre each noise frame's FIR filter, so a frame's samples need the next frame's
controls. The streaming output therefore runs exactly one hop behind the input: the call that
receives frames `[N - K, N)` returns the samples of frames `[N - K - 1, N - 1)` (the very first hop is
silence). Each call re-synthesises the window `[N - K - 2, N)` with the same functions as the offline
chain and keeps its middle `K` frames, which provably see the same inputs as offline (the neighbouring
frames reach at most one frame across). `flush()` emits the last frame. So
`concat(blocks..., flush) == [zeros(hop), offline]`, up to float rounding and the order of float64 phase
sums (tests/modules/test_ddsp_streaming.py holds it to 1e-4).

The noise in eval mode is `modules.ddsp.core.white_noise`'s fixed sequence; the streaming version reads it
from a table of `noise_seconds` and wraps around after it (offline never repeats): equal to offline
for the first `noise_seconds` of a stream.

The state lives in tensors passed in and out of `StreamingCore.forward`, so that the core traces to
TorchScript (`export_torchscript`) with no Python-side state; `ScriptedStream` holds that state for a
plug-in host.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, NamedTuple, Tuple

import torch
from torch import nn

from modules.ddsp.core import scale_control, white_noise
from modules.ddsp.harmonic import harmonic_synthesis
from modules.ddsp_singer import DDSPSinger, hold_voiced_f0

LATENCY_FRAMES = 1  # the output runs one hop behind the input
CONTEXT_FRAMES = 2  # frames before the block that each call re-synthesises


class StreamState(NamedTuple):
    """Everything a stream carries between calls (batch of one)."""

    gru: torch.Tensor  # [gru_layers, 1, hidden]
    context_controls: torch.Tensor  # [1, C, 2] raw controls of the last two frames
    context_f0: torch.Tensor  # [1, 2] held F0 of the last two frames (Hz)
    phase: torch.Tensor  # [1] float64 cycles at the start of the next output
    frames_done: torch.Tensor  # [1] int64 frames received so far
    reverb_history: torch.Tensor  # [n_reverbs, max_ir_length - 1] dry samples before the next output


def _component_plan(singer: DDSPSinger) -> list[tuple[str, str, dict]]:
    """(name, kind, inputs) per chain component, checked to be a kind the streamer knows."""
    plan = []
    for spec in singer.synth.specs:
        if spec.kind not in ("harmonic", "filtered_noise", "add", "reverb"):
            raise ValueError(f"streaming: component {spec.name!r} of kind {spec.kind!r} has no block-by-block form")
        plan.append((spec.name, spec.kind, dict(spec.inputs)))
    return plan


def _hold_last_valid_frame(x: torch.Tensor, valid: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """`x [1, C, K]`: frames where `valid [1, K]` is 0 take the last valid frame's value (`previous [1, C, 1]` before any)."""
    positions = torch.arange(1, x.size(2) + 1).view(1, -1)
    last = torch.cummax(torch.where(valid > 0, positions, torch.zeros_like(positions)), dim=1).values  # [1, K], 0 = none yet
    extended = torch.cat([previous, x], dim=2)  # index 0 = previous
    return extended.gather(2, last.unsqueeze(1).expand(x.size(0), x.size(1), -1))


class StreamingCore(nn.Module):
    """One block: `f0, loudness, valid [1, K]` + `StreamState` tensors -> `audio [1, K * hop]` + the new state tensors.

    `valid` is 1 for real frames and 0 for the padding frames of `flush()` (those repeat the last frame's
    controls and add no noise, as the offline render clamps at its end). Built from a trained `DDSPSinger`
    (its weights are shared, not copied; the reverb IRs and the noise are snapshots).
    """

    def __init__(self, singer: DDSPSinger, block_frames: int, noise_seconds: float = 60.0) -> None:
        super().__init__()
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        self.singer = singer
        self.block_frames = block_frames
        self.hop_size = singer.hop_size
        self.sample_rate = singer.sample_rate
        self.plan = _component_plan(singer)
        self.n_controls = sum(singer.control_sizes)
        hop = self.hop_size
        reverbs = [name for name, kind, _ in self.plan if kind == "reverb"]
        self.reverb_names = reverbs
        self.history_length = max([singer.synth.processors[name].impulse_response().numel() - 1 for name in reverbs] or [0])
        block_samples = block_frames * hop
        self.fft_size = 1 << max(1, (self.history_length + block_samples - 1).bit_length())
        spectra = []
        for name in reverbs:
            ir = singer.synth.processors[name].impulse_response().detach().float()
            padded = torch.zeros(self.history_length + 1)
            padded[: ir.numel()] = ir
            spectra.append(torch.fft.rfft(padded, self.fft_size))
        self.register_buffer("reverb_spectra", torch.stack(spectra) if spectra else torch.zeros(0, self.fft_size // 2 + 1, dtype=torch.complex64))
        self.reverb_dry = {name: singer.synth.processors[name].add_dry for name in reverbs}
        table = max(block_samples, int(noise_seconds * self.sample_rate))
        self.register_buffer("noise_table", white_noise((table,), training=False))
        for name, kind, _ in self.plan:
            if kind == "filtered_noise" and singer.synth.processors[name].window_size // 2 > hop:
                raise ValueError(f"streaming: the noise filter of {name!r} reaches more than one hop ahead; use window_size <= 2 * hop_size")

    def initial_state(self) -> StreamState:
        s = self.singer
        return StreamState(
            gru=s.estimator.initial_state(1, s.loudness_mean.device),
            context_controls=torch.zeros(1, self.n_controls, CONTEXT_FRAMES),
            context_f0=torch.zeros(1, CONTEXT_FRAMES),
            phase=torch.zeros(1, dtype=torch.float64),
            frames_done=torch.zeros(1, dtype=torch.int64),
            reverb_history=torch.zeros(len(self.reverb_names), self.history_length),
        )

    def _noise(self, first_sample: torch.Tensor, n_samples: int) -> torch.Tensor:
        """`[n_samples]` of the fixed noise sequence from absolute sample `first_sample` (0 before sample 0)."""
        positions = first_sample + torch.arange(n_samples)
        values = self.noise_table[torch.remainder(positions, self.noise_table.numel())]
        return values * (positions >= 0).to(values.dtype)

    def forward(
        self,
        f0_hz: torch.Tensor,
        loudness_db: torch.Tensor,
        valid: torch.Tensor,
        speaker_id: torch.Tensor,
        gru: torch.Tensor,
        context_controls: torch.Tensor,
        context_f0: torch.Tensor,
        phase: torch.Tensor,
        frames_done: torch.Tensor,
        reverb_history: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.singer
        hop, frames = self.hop_size, self.block_frames
        first = frames_done == 0  # [1]
        # ---- frame rate: held F0 (continued from the last frame), estimator with its GRU state ----
        previous_f0 = torch.where(first, s.initial_f0(1), context_f0[:, -1])
        f0_held = hold_voiced_f0(f0_hz.float(), previous_f0)  # [1, K]
        pitch, voicing, loudness = s.estimator_inputs(f0_held, f0_hz > 0, loudness_db.float())
        estimated = s.estimator(pitch, voicing, loudness, speaker_id if s.config.n_speakers > 1 else None, gru)
        raw = estimated.controls  # [1, C, K]
        # Padding frames (flush, a short last block) repeat the last real frame: the offline render clamps at its end.
        raw = _hold_last_valid_frame(raw, valid, context_controls[:, :, -1:])
        f0_held = _hold_last_valid_frame(f0_held.unsqueeze(1), valid, context_f0[:, -1:].unsqueeze(1)).squeeze(1)
        # The first call has no context: its two context frames copy the first frame (as offline clamps).
        context_controls = torch.where(first.view(1, 1, 1), raw[:, :, :1].expand(-1, -1, CONTEXT_FRAMES), context_controls)
        context_f0 = torch.where(first.view(1, 1), f0_held[:, :1].expand(-1, CONTEXT_FRAMES), context_f0)
        window_raw = torch.cat([context_controls, raw], dim=2)  # [1, C, K + 2]: frames N-K-2 .. N-1
        window_f0 = torch.cat([context_f0, f0_held], dim=1)  # [1, K + 2]
        controls = s.split_controls(window_raw)
        # ---- sample rate: each component on the window, then the middle K frames (see the module docstring) ----
        window_start = (frames_done - CONTEXT_FRAMES) * hop  # absolute sample of the window's first frame
        out_start, out_end = hop, (frames + 1) * hop  # the output region inside the window
        step_cycles = window_f0.double() * hop / self.sample_rate  # [1, K + 2] cycles per frame
        # The phase at the window's start: the carried phase minus one frame (a first call starts frame 0 at 0).
        carried = torch.where(first, -step_cycles[:, 1], phase)
        window_phase = carried - step_cycles[:, 0]
        signals: Dict[str, torch.Tensor] = {}
        histories: List[torch.Tensor] = []
        for name, kind, inputs in self.plan:
            processor = s.synth.processors[name]
            if kind == "harmonic":
                amplitudes = processor.harmonic_amplitudes(controls[inputs["amplitude"].split(".", 1)[1]], controls[inputs["distribution"].split(".", 1)[1]], window_f0)
                wave = harmonic_synthesis(amplitudes, window_f0, self.sample_rate, hop, None, window_phase)
                signals[name] = wave[:, :, out_start:out_end]
            elif kind == "filtered_noise":
                magnitudes = controls[inputs["magnitudes"].split(".", 1)[1]]
                envelope = scale_control(magnitudes + processor.initial_bias, processor.scale)  # as FilteredNoise.forward
                noise_valid = torch.cat([torch.ones(1, CONTEXT_FRAMES), valid.float()], dim=1)  # padding frames add no noise
                noise = self._noise(window_start, (frames + CONTEXT_FRAMES) * hop).view(1, 1, -1)
                noise = noise * torch.repeat_interleave(noise_valid, hop, dim=1).unsqueeze(1)
                signals[name] = processor.filter_noise(noise, envelope)[:, :, out_start:out_end]
            elif kind == "add":
                sources = inputs["audio"]
                sources = [sources] if isinstance(sources, str) else list(sources)
                signals[name] = torch.stack([signals[source] for source in sources]).sum(0)
            else:  # reverb: overlap-save with the cached dry history
                index = self.reverb_names.index(name)
                dry = signals[inputs["audio"]]
                dry = dry * (~first | (torch.arange(dry.size(-1)) >= hop)).to(dry.dtype)  # the first hop of a stream is silence
                extended = torch.cat([reverb_history[index : index + 1], dry[:, 0]], dim=1)  # [1, history + block]
                spectrum = torch.fft.rfft(extended, self.fft_size) * self.reverb_spectra[index]
                wet = torch.fft.irfft(spectrum, self.fft_size)[:, self.history_length : self.history_length + dry.size(-1)]
                signals[name] = (dry[:, 0] + wet if self.reverb_dry[name] else wet).unsqueeze(1)
                histories.append(extended[:, extended.size(1) - self.history_length :])
        audio = signals[s.synth.output][:, 0]  # [1, K * hop]
        audio = audio * (~first | (torch.arange(audio.size(-1)) >= hop)).to(audio.dtype)
        new_phase = torch.remainder(carried + step_cycles[:, 1 : frames + 1].sum(dim=1), 1.0)
        new_history = torch.cat(histories, dim=0) if histories else reverb_history
        return (
            audio,
            estimated.state,
            window_raw[:, :, -CONTEXT_FRAMES:],
            window_f0[:, -CONTEXT_FRAMES:],
            new_phase,
            frames_done + frames,
            new_history,
        )


class StreamingDDSPSinger:
    """A stream of blocks in Python: `process(f0 [K], loudness [K]) -> [K * hop]`, then `flush() -> [hop]`.

    Feed the frames in any grouping of `block_frames`; a shorter last group is padded internally.
    """

    def __init__(self, singer: DDSPSinger, block_frames: int, noise_seconds: float = 60.0, speaker: int = 0) -> None:
        self.core = StreamingCore(singer.eval(), block_frames, noise_seconds).eval()
        self.block_frames = block_frames
        self.hop_size = singer.hop_size
        self.speaker_id = torch.tensor([speaker])
        self.state = self.core.initial_state()

    def reset(self) -> None:
        self.state = self.core.initial_state()

    @torch.no_grad()
    def _step(self, f0: torch.Tensor, loudness: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        audio, *state = self.core(f0, loudness, valid, self.speaker_id, *self.state)
        self.state = StreamState(*state)
        return audio[0]

    def process(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        """`block_frames` new frames `[K]` (F0 in Hz, 0 = unvoiced; loudness in dB) -> `[K * hop]` samples, one hop late.

        The last block of a stream may hold fewer frames: it is padded as `render` pads (the padding repeats the
        last frame, without noise), and its output then already ends with the last real frame (no `flush` needed)."""
        frames = f0_hz.numel()
        if f0_hz.shape != (frames,) or loudness_db.shape != (frames,) or not 1 <= frames <= self.block_frames:
            raise ValueError(f"need f0 and loudness of 1..{self.block_frames} frames, got {tuple(f0_hz.shape)} and {tuple(loudness_db.shape)}")
        pad = torch.zeros(self.block_frames - frames)
        valid = (torch.arange(self.block_frames) < frames).float().view(1, -1)
        return self._step(torch.cat([f0_hz.float(), pad]).view(1, -1), torch.cat([loudness_db.float(), pad]).view(1, -1), valid)

    def flush(self) -> torch.Tensor:
        """The last received frame's samples `[hop]` (it waited for a next frame that will not come)."""
        frames = self.block_frames
        audio = self._step(torch.zeros(1, frames), torch.zeros(1, frames), torch.zeros(1, frames))
        return audio[: self.hop_size]

    def render(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        """A whole track `[T]` block by block (T padded up to whole blocks), trimmed to `[T * hop]`: the offline
        render's samples, through the streaming path (the one-hop latency removed)."""
        frames = f0_hz.numel()
        blocks = math.ceil(frames / self.block_frames)
        pad = blocks * self.block_frames - frames
        f0 = torch.cat([f0_hz.float(), torch.zeros(pad)]).view(blocks, 1, -1)
        loudness = torch.cat([loudness_db.float(), torch.zeros(pad)]).view(blocks, 1, -1)
        valid = (torch.arange(blocks * self.block_frames) < frames).float().view(blocks, 1, -1)
        self.reset()
        pieces = [self._step(f0[i], loudness[i], valid[i]) for i in range(blocks)]
        pieces.append(self.flush())
        return torch.cat(pieces)[self.hop_size : self.hop_size + frames * self.hop_size]


class ScriptedStream(nn.Module):
    """What a plug-in host loads: `forward(f0 [K], loudness [K]) -> [K * hop]`, the state kept inside, `reset()`.

    Wraps the traced `StreamingCore` (fixed block size); `flush()` returns the last frame's samples `[hop]`.
    """

    def __init__(self, traced_core: torch.jit.ScriptModule, initial: StreamState, block_frames: int, hop_size: int, sample_rate: int, speaker: int) -> None:
        super().__init__()
        self.core = traced_core
        self.block_frames = block_frames
        self.hop_size = hop_size
        self.sample_rate = sample_rate
        self.latency_samples = LATENCY_FRAMES * hop_size
        self.register_buffer("speaker_id", torch.tensor([speaker]))
        for name, value in initial._asdict().items():
            self.register_buffer(f"initial_{name}", value.clone())
            self.register_buffer(name, value.clone())

    @torch.jit.export
    def reset(self) -> None:
        self.gru.copy_(self.initial_gru)
        self.context_controls.copy_(self.initial_context_controls)
        self.context_f0.copy_(self.initial_context_f0)
        self.phase.copy_(self.initial_phase)
        self.frames_done.copy_(self.initial_frames_done)
        self.reverb_history.copy_(self.initial_reverb_history)

    def _step(self, f0: torch.Tensor, loudness: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        audio, gru, controls, f0_context, phase, frames_done, history = self.core(
            f0, loudness, valid, self.speaker_id, self.gru, self.context_controls, self.context_f0, self.phase, self.frames_done, self.reverb_history
        )
        self.gru.copy_(gru)
        self.context_controls.copy_(controls)
        self.context_f0.copy_(f0_context)
        self.phase.copy_(phase)
        self.frames_done.copy_(frames_done)
        self.reverb_history.copy_(history)
        return audio[0]

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> torch.Tensor:
        return self._step(f0_hz.view(1, -1).float(), loudness_db.view(1, -1).float(), torch.ones(1, self.block_frames))

    @torch.jit.export
    def flush(self) -> torch.Tensor:
        zeros = torch.zeros(1, self.block_frames)
        return self._step(zeros, zeros, zeros)[: self.hop_size]


@torch.no_grad()
def export_torchscript(singer: DDSPSinger, block_frames: int, speaker: int = 0, noise_seconds: float = 60.0) -> torch.jit.ScriptModule:
    """A TorchScript stream of `singer` for `block_frames`-frame blocks (trace of the core, scripted state holder)."""
    core = StreamingCore(singer.eval(), block_frames, noise_seconds).eval()
    state = core.initial_state()
    example = (torch.full((1, block_frames), 220.0), torch.full((1, block_frames), -30.0), torch.ones(1, block_frames), torch.tensor([speaker]), *state)
    with warnings.catch_warnings():
        # The shape checks of the synthesisers become constants of the trace: right, the block size is fixed.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=DeprecationWarning)
        traced = torch.jit.trace(core, example, check_trace=False)
        return torch.jit.script(ScriptedStream(traced, state, block_frames, singer.hop_size, singer.sample_rate, speaker))
