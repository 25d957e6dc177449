"""What a model file says about itself: enough to rebuild every model in it with no task code and no config.

A `ModelDescription` is stored under the key `description` of every runner checkpoint (written by
`Trainer.checkpoint_state` from `BaseTask.model_description()`) and of every pack. Per model: the
class path, the constructor arguments (the fields of its config dataclass, or plain keyword
arguments) and its role at inference; for the file: the audio settings, the phone set, the F0 /
note-range statistics of the training data, the code and torch versions.

A new model family registers itself by returning, from its task's `model_description()`,
`ModelSpec.of(MyModel, my_config, role=...)` per model: `MyModel` must live under `modules/` and be
built either by `MyModel.from_config(config)` or by `MyModel(**dataclasses.asdict(config))`, and its
config dataclass must take plain values (numbers, strings, booleans, tuples, None). Nothing else is
registered anywhere: the loader imports the class named in the file.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from config.errors import UserInputError
from model_io.checkpoint_file import code_version, first_state_mismatch
from preprocessor.audio import AudioSettings
from preprocessor.text.phone_set import PHONE_SET

DESCRIPTION_FORMAT = "svs-model-description"
DESCRIPTION_VERSION = 1
# What a model does at inference. A file whose models have none of the first four does nothing at inference.
SINGER = "singer"  # score -> waveform (VISinger)
ACOUSTIC = "acoustic"  # score -> mel (the FS2 singer); needs a vocoder
VOCODER = "vocoder"  # mel -> waveform (HiFi-GAN)
TRANSFER = "transfer"  # F0 + loudness of a recording -> waveform in the learnt voice (the DDSP singer; timbre transfer)
TRAINING_ONLY = "training"  # a discriminator: stored so that the file is complete, never built by inference
ROLES = (SINGER, ACOUSTIC, VOCODER, TRANSFER, TRAINING_ONLY)
# Model classes are imported by the name a file gives: only the project's network package may be named,
# so that a file cannot make the loader import arbitrary code.
ALLOWED_CLASS_PREFIXES = ("modules.",)


def _plain(value: Any) -> Any:
    """Lists become tuples (config dataclasses hold tuples; YAML and `asdict` give lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(item) for item in value)
    return value


def _import_attribute(path: str, where: str) -> Any:
    if not isinstance(path, str) or not path.startswith(ALLOWED_CLASS_PREFIXES) or "." not in path:
        raise UserInputError(f"{where}: names class {path!r}, outside {', '.join(ALLOWED_CLASS_PREFIXES)}; only the project's own models load")
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise UserInputError(f"{where}: class {path!r} does not exist in this code (no module {module_name}); use the code version it was written by") from None
    found = getattr(module, name, None)
    if not isinstance(found, type):
        raise UserInputError(f"{where}: module {module_name} has no class {name!r}; use the code version it was written by")
    return found


def class_path_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild one model: `class_path` (under `modules.`), its `arguments`, the `config_class` they
    fill (None: they are the class's keyword arguments) and its `role` (one of `ROLES`)."""

    class_path: str
    arguments: Mapping[str, Any]
    config_class: str | None = None
    role: str = TRAINING_ONLY

    @classmethod
    def of(cls, model_class: type, config: Any = None, *, arguments: Mapping[str, Any] | None = None, role: str = TRAINING_ONLY) -> ModelSpec:
        """A spec from a config dataclass instance (`config`) or from plain keyword `arguments` (one of them)."""
        if (config is None) == (arguments is None):
            raise TypeError("pass exactly one of config (a dataclass instance) and arguments (a dict)")
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {ROLES}")
        if config is not None:
            return cls(class_path_of(model_class), dataclasses.asdict(config), class_path_of(type(config)), role)
        return cls(class_path_of(model_class), dict(arguments or {}), None, role)

    def to_dict(self) -> dict[str, Any]:
        return {"class_path": self.class_path, "config_class": self.config_class, "arguments": dict(self.arguments), "role": self.role}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ModelSpec:
        if not isinstance(data, dict) or not isinstance(data.get("arguments"), dict) or data.get("role") not in ROLES:
            raise UserInputError(f"{where}: a model description without class_path / arguments / role; re-create the file with this code")
        return cls(data["class_path"], data["arguments"], data.get("config_class"), data["role"])

    def build(self, where: str) -> nn.Module:
        """A freshly initialised model (weights not loaded): the class, called with the stored arguments."""
        model_class = _import_attribute(self.class_path, where)
        arguments = {key: _plain(value) for key, value in self.arguments.items()}
        try:
            if self.config_class is None:
                return model_class(**arguments)
            config = _import_attribute(self.config_class, where)(**arguments)
            if hasattr(model_class, "from_config"):
                return model_class.from_config(config)
            return model_class(**dataclasses.asdict(config))
        except (TypeError, ValueError) as error:
            raise UserInputError(f"{where}: the stored arguments do not build {self.class_path} ({error}); use the code version it was written by") from None


def build_with_state(spec: ModelSpec, state: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """`spec.build()` with `state` loaded (an error naming the first tensor that does not fit), in eval mode."""
    model = spec.build(where)
    mismatch = first_state_mismatch(model.state_dict(), dict(state))
    if mismatch:
        raise UserInputError(f"{where}: not this model's weights: {mismatch}")
    model.load_state_dict(state)
    return model.eval()


@dataclass(frozen=True)
class ModelDescription:
    """Everything but the weights: `models` by name, the audio settings, phone set and data statistics."""

    models: Mapping[str, ModelSpec]
    audio: AudioSettings
    phone_set: tuple[str, ...] = tuple(PHONE_SET)
    # log_f0_mean / log_f0_std, note_pitch_min / note_pitch_max, speakers, per_speaker; a transfer model: its loudness meter window
    # (loudness_n_fft) and the training data's loudness / pitch statistics (the model's buffers, for the model card)
    stats: Mapping[str, Any] = field(default_factory=dict)
    code_version: str = "unknown"
    torch_version: str = ""

    @property
    def pitch_range(self) -> tuple[int, int] | None:
        """The trained MIDI note range, when the statistics hold one."""
        stats = self.stats
        if "note_pitch_min" in stats and "note_pitch_max" in stats and stats["note_pitch_min"] <= stats["note_pitch_max"]:
            return int(stats["note_pitch_min"]), int(stats["note_pitch_max"])
        return None

    @property
    def speakers(self) -> tuple[str, ...]:
        """The speaker names of the training data, id order (`f0_stats.json` "speakers"); () when the file has none."""
        names = self.stats.get("speakers")
        return tuple(names) if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names) else ()

    def speaker_pitch_range(self, name: str) -> tuple[int, int] | None:
        """One speaker's trained MIDI note range (`f0_stats.json` "per_speaker"), None when not recorded."""
        stats = dict(self.stats.get("per_speaker") or {}).get(name) or {}
        if "note_pitch_min" in stats and "note_pitch_max" in stats and stats["note_pitch_min"] <= stats["note_pitch_max"]:
            return int(stats["note_pitch_min"]), int(stats["note_pitch_max"])
        return None

    def names_with_role(self, role: str) -> list[str]:
        return [name for name, spec in self.models.items() if spec.role == role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DESCRIPTION_FORMAT,
            "version": DESCRIPTION_VERSION,
            "models": {name: spec.to_dict() for name, spec in self.models.items()},
            "audio": dataclasses.asdict(self.audio),
            "phone_set": list(self.phone_set),
            "stats": dict(self.stats),
            "code_version": self.code_version,
            "torch_version": self.torch_version,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ModelDescription:
        if not isinstance(data, dict) or data.get("format") != DESCRIPTION_FORMAT:
            raise UserInputError(f"{where}: no model description in it; re-create the file with this code")
        if data.get("version") != DESCRIPTION_VERSION:
            raise UserInputError(f"{where}: model description version {data.get('version')} is not {DESCRIPTION_VERSION}; use the code version it was written by")
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            raise UserInputError(f"{where}: the model description lists no model; re-create the file with this code")
        try:
            audio = AudioSettings(**{key: _plain(value) for key, value in dict(data["audio"]).items()})
        except (KeyError, TypeError, ValueError) as error:
            raise UserInputError(f"{where}: the stored audio settings are not valid here ({error}); use the code version it was written by") from None
        return cls(
            models={name: ModelSpec.from_dict(spec, f"{where}: model '{name}'") for name, spec in models.items()},
            audio=audio,
            phone_set=tuple(data.get("phone_set") or ()),
            stats=dict(data.get("stats") or {}),
            code_version=str(data.get("code_version", "unknown")),
            torch_version=str(data.get("torch_version", "")),
        )

    def check_phone_set(self, where: str) -> None:
        """A model trained with another phone set would sing garbage: refuse it by name."""
        if tuple(self.phone_set) != tuple(PHONE_SET):
            raise UserInputError(
                f"{where}: trained with a phone set of {len(self.phone_set)} phones that is not this code's ({len(PHONE_SET)}); "
                "use the code version it was trained with"
            )


def read_dataset_stats(binary_dir: Path | str | None) -> dict[str, Any]:
    """`f0_stats.json` of a binarized dataset (F0 statistics, trained note range), {} when it is not there."""
    path = Path(binary_dir) / "f0_stats.json" if binary_dir else None
    if path is not None and path.is_file():
        from preprocessor.binary_dataset import read_f0_stats

        return read_f0_stats(path)  # a truncated or edited file: one line saying to re-binarize
    return {}


def describe(models: Mapping[str, ModelSpec], audio: AudioSettings, stats: Mapping[str, Any]) -> ModelDescription:
    """A description of `models` as trained now by this code (phone set, code and torch versions filled in)."""
    return ModelDescription(dict(models), audio, tuple(PHONE_SET), dict(stats), code_version(), str(torch.__version__))


# Audio settings that define a mel frame: an acoustic model's output must be its vocoder's input.
MEL_FIELDS = ("sample_rate", "hop_size", "win_size", "n_fft", "n_mels", "fmin", "fmax")


def check_same_features(acoustic_audio: AudioSettings, vocoder_audio: AudioSettings, acoustic_name: str, vocoder_name: str) -> None:
    """The vocoder must read the very mels the acoustic model writes (rate, hop, window, FFT, mel bank)."""
    for name in MEL_FIELDS:
        a, v = getattr(acoustic_audio, name), getattr(vocoder_audio, name)
        if a != v:
            raise UserInputError(
                f"{vocoder_name}: its mels differ from those of {acoustic_name} at audio.{name} ({v} vs {a}); "
                "pair an acoustic model and a vocoder trained on the same features"
            )
