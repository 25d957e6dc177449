"""A DDSP signal chain assembled from a YAML-like list of components and their connections
(as DDSP's `ProcessorGroup` DAG), e.g. VISinger 2's harmonic + noise synthesiser with a room:

    - {name: harmonic, kind: harmonic, args: {n_harmonics: 64},
       inputs: {amplitude: controls.amplitude, distribution: controls.harmonic_distribution, f0: f0}}
    - {name: noise, kind: filtered_noise, args: {n_bands: 65}, inputs: {magnitudes: controls.noise_magnitudes}}
    - {name: mix, kind: add, inputs: {audio: [harmonic, noise]}}
    - {name: reverb, kind: reverb, args: {ir_length: 4800}, inputs: {audio: mix}}

Each component names a processor `kind` (`PROCESSORS`: harmonic, filtered_noise, reverb, add), its
constructor `args` (typed keyword arguments; `sample_rate` and `hop_size` come from the chain, never
from `args`) and, for every input port of the processor, where the input comes from:
- `controls.<name>`: a frame-rate control `[B, C, T]` predicted by the network that drives the chain
  (raw; each processor scales its own). `SignalChain.control_channels()` lists every such control
  with its channel count C, in order, so the network can size its output layer;
- `f0`: the pitch `[B, T]` in Hz (0 = unvoiced), given to the chain beside the controls;
- `<component name>`: the waveform `[B, 1, T * hop]` of an EARLIER component (the list is in
  execution order, so there are no cycles).
The chain's output is the last component's waveform (or the one named by `output`); every
component's waveform is returned too (`ChainOutput.signals`), for losses on the parts.
Every processor takes the frame `mask [B, 1, T]` and is zero past it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from modules.ddsp.core import apply_mask, sample_mask
from modules.ddsp.filtered_noise import FilteredNoise
from modules.ddsp.harmonic import HarmonicSynth
from modules.ddsp.reverb import LearntReverb

CONTROL_PREFIX = "controls."
F0_SOURCE = "f0"


class Add(nn.Module):
    """Signal-chain processor: the sum of several waveforms `[B, 1, S]` (port `audio`: a list of sources)."""

    PORTS = {"audio": "audio_list"}

    def __init__(self, hop_size: int) -> None:
        super().__init__()
        self.hop_size = hop_size

    def frame_channels(self) -> dict[str, int]:
        return {}

    def forward(self, audio: Sequence[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        return apply_mask(torch.stack(list(audio)).sum(0), sample_mask(mask, self.hop_size))


PROCESSORS: dict[str, type[nn.Module]] = {"harmonic": HarmonicSynth, "filtered_noise": FilteredNoise, "reverb": LearntReverb, "add": Add}
CHAIN_SUPPLIED_ARGS = ("sample_rate", "hop_size")


@dataclass(frozen=True)
class ComponentSpec:
    """One component: `name` (unique), processor `kind`, `inputs` {port: source or [sources]}, constructor `args`."""

    name: str
    kind: str
    inputs: Mapping[str, str | Sequence[str]]
    args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any], index: int) -> ComponentSpec:
        if isinstance(entry, ComponentSpec):
            return entry
        if not isinstance(entry, Mapping):
            raise ValueError(f"signal chain component {index}: expected a mapping with name, kind, inputs (and args), got {entry!r}")
        unknown = set(entry) - {"name", "kind", "inputs", "args"}
        missing = {"name", "kind", "inputs"} - set(entry)
        if unknown or missing:
            raise ValueError(
                f"signal chain component {index} ({entry.get('name', '?')}): "
                f"unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; use name, kind, inputs, args"
            )
        return cls(str(entry["name"]), str(entry["kind"]), dict(entry["inputs"]), dict(entry.get("args") or {}))


class ChainOutput(NamedTuple):
    audio: torch.Tensor  # [B, 1, T * hop] the output component's waveform
    signals: dict[str, torch.Tensor]  # every component's waveform [B, 1, T * hop], by name


def _sources(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


class SignalChain(nn.Module):
    """Controls `{name: [B, C, T]}` + `f0 [B, T]` + `mask [B, 1, T]` -> `ChainOutput` (see the module docstring).

    Args:
        components: the chain, in execution order (`ComponentSpec`s or their mappings, as in YAML).
        sample_rate: output rate in Hz, given to every processor that takes it.
        hop_size: samples per frame, given to every processor.
        output: the component whose waveform is the chain's output (default: the last).
    """

    def __init__(self, components: Sequence[Mapping[str, Any] | ComponentSpec], sample_rate: int, hop_size: int, output: str | None = None) -> None:
        super().__init__()
        specs = [ComponentSpec.from_mapping(entry, index) for index, entry in enumerate(components)]
        if not specs:
            raise ValueError("a signal chain needs at least one component")
        self.specs = specs
        self.sample_rate = sample_rate
        self.hop_size = hop_size
        self.processors = nn.ModuleDict()
        self._controls: dict[str, int] = {}
        for index, spec in enumerate(specs):
            where = f"signal chain component {index} ({spec.name})"
            if spec.name in self.processors or spec.name in (F0_SOURCE,) or spec.name.startswith(CONTROL_PREFIX):
                raise ValueError(f"{where}: the name is taken (duplicate, 'f0' or 'controls.*'); rename it")
            if spec.kind not in PROCESSORS:
                raise ValueError(f"{where}: unknown kind {spec.kind!r}; choose one of {sorted(PROCESSORS)}")
            processor = self._build(PROCESSORS[spec.kind], spec.args, where)
            self._check_inputs(processor, spec, where)
            self.processors[spec.name] = processor
        self.output = output or specs[-1].name
        if self.output not in self.processors:
            raise ValueError(f"signal chain output {self.output!r} is not a component; choose one of {list(self.processors)}")

    def _build(self, cls: type[nn.Module], args: Mapping[str, Any], where: str) -> nn.Module:
        supplied = [name for name in CHAIN_SUPPLIED_ARGS if name in args]
        if supplied:
            raise ValueError(f"{where}: {supplied} come from the chain (audio settings); remove them from args")
        accepted = inspect.signature(cls.__init__).parameters
        unknown = set(args) - set(accepted)
        if unknown:
            allowed = sorted(set(accepted) - {"self", *CHAIN_SUPPLIED_ARGS})
            raise ValueError(f"{where}: unknown args {sorted(unknown)}; {cls.__name__} takes {allowed}")
        given = {name: value for name, value in (("sample_rate", self.sample_rate), ("hop_size", self.hop_size)) if name in accepted}
        return cls(**given, **args)

    def _check_inputs(self, processor: nn.Module, spec: ComponentSpec, where: str) -> None:
        ports: dict[str, str] = processor.PORTS
        if set(spec.inputs) != set(ports):
            raise ValueError(f"{where}: inputs {sorted(spec.inputs)} must be exactly the ports {sorted(ports)} of {spec.kind}")
        channels = processor.frame_channels()
        for port, kind in ports.items():
            sources = _sources(spec.inputs[port])
            if kind != "audio_list" and len(sources) != 1:
                raise ValueError(f"{where}: port {port!r} takes one source, got {sources}")
            for source in sources:
                if kind == "frames":
                    if not source.startswith(CONTROL_PREFIX):
                        raise ValueError(f"{where}: port {port!r} takes a frame-rate control 'controls.<name>', got {source!r}")
                    name = source[len(CONTROL_PREFIX) :]
                    if self._controls.get(name, channels[port]) != channels[port]:
                        raise ValueError(f"{where}: control {name!r} is used with {self._controls[name]} and {channels[port]} channels")
                    self._controls[name] = channels[port]
                elif kind == "f0":
                    if source != F0_SOURCE:
                        raise ValueError(f"{where}: port {port!r} takes 'f0', got {source!r}")
                elif source not in self.processors:
                    raise ValueError(f"{where}: port {port!r} reads {source!r}, which is not an earlier component; earlier: {list(self.processors)}")

    def control_channels(self) -> dict[str, int]:
        """`{control name: channels}` of every `controls.<name>` the chain reads, in first-use order."""
        return dict(self._controls)

    def uses_noise(self) -> bool:
        """Whether a component draws noise (a `filtered_noise`), which `forward(noise=...)` can fix."""
        return any(isinstance(p, FilteredNoise) for p in self.processors.values())

    def context_samples(self) -> int:
        """Samples on each side of an output sample that can change it (filters and rooms in series add up)."""
        return sum(int(getattr(p, "context_samples", lambda: 0)()) for p in self.processors.values())

    def forward(
        self,
        controls: Mapping[str, torch.Tensor],
        f0: torch.Tensor,
        mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        start_phase: torch.Tensor | None = None,
    ) -> ChainOutput:
        """`controls {name: [B, C, T]}` (raw), `f0 [B, T]` Hz, `mask [B, 1, T]` -> `ChainOutput`.

        `noise [B, 1, T * hop]` (standard normal) is what every `filtered_noise` filters instead of its
        drawn noise (in eval mode they all draw the same fixed sequence, so this is the same render when
        given that sequence); `start_phase [B]` (float64 cycles) starts every `harmonic` component's phase
        there. Both serve an exported graph and a render in chunks."""
        missing = set(self._controls) - set(controls)
        if missing:
            raise ValueError(f"signal chain needs controls {sorted(missing)}; got {sorted(controls)}")
        signals: dict[str, torch.Tensor] = {}

        def resolve(source: str) -> torch.Tensor:
            if source == F0_SOURCE:
                return f0
            if source.startswith(CONTROL_PREFIX):
                return controls[source[len(CONTROL_PREFIX) :]]
            return signals[source]

        for spec in self.specs:
            processor = self.processors[spec.name]
            kwargs: dict[str, Any] = {}
            for port, kind in processor.PORTS.items():
                sources = _sources(spec.inputs[port])
                kwargs[port] = [resolve(s) for s in sources] if kind == "audio_list" else resolve(sources[0])
            if noise is not None and isinstance(processor, FilteredNoise):
                kwargs["noise"] = noise
            if start_phase is not None and isinstance(processor, HarmonicSynth):
                kwargs["start_phase"] = start_phase
            signals[spec.name] = processor(**kwargs, mask=mask)
        return ChainOutput(signals[self.output], signals)


def harmonic_plus_noise_chain(n_harmonics: int = 64, n_bands: int = 65, reverb_ir_length: int = 0) -> list[dict[str, Any]]:
    """VISinger 2's synthesiser as a chain spec: harmonics + filtered noise, summed, through a learnt room if
    `reverb_ir_length > 0`. Controls: `amplitude` [1], `harmonic_distribution` [n_harmonics], `noise_magnitudes` [n_bands]."""
    chain: list[dict[str, Any]] = [
        {
            "name": "harmonic",
            "kind": "harmonic",
            "args": {"n_harmonics": n_harmonics},
            "inputs": {"amplitude": "controls.amplitude", "distribution": "controls.harmonic_distribution", "f0": "f0"},
        },
        {"name": "noise", "kind": "filtered_noise", "args": {"n_bands": n_bands}, "inputs": {"magnitudes": "controls.noise_magnitudes"}},
        {"name": "mix", "kind": "add", "inputs": {"audio": ["harmonic", "noise"]}},
    ]
    if reverb_ir_length > 0:
        chain.append({"name": "reverb", "kind": "reverb", "args": {"ir_length": reverb_ir_length}, "inputs": {"audio": "mix"}})
    return chain
