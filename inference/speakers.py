"""Which voice sings: a speaker by name or id, or a weighted mix of the speakers' embeddings.

    --speaker demo_low              # a name the model file records (its training data's speakers)
    --speaker 1                     # or an id (0 .. n_speakers - 1)
    --speaker demo:0.7,demo_low:0.3 # a mix: the weighted sum of the embeddings (weights scaled to sum to 1)

`parse_speaker(spec, names)` turns what the user wrote into a `SpeakerChoice`: one id (`value` an int,
the model's id path) or a mix (`value` a tuple of `n_speakers` weights, sung through the models' weight
path, `modules.speaker_embedding`). A mix that names one speaker at weight 1 sings exactly as that
speaker. Every mistake is one `UserInputError` naming the known speakers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from config.errors import UserInputError

# What a render file or the models take: an id, or one weight per speaker.
SpeakerValue = int | tuple[float, ...]


@dataclass(frozen=True)
class SpeakerChoice:
    """`label`: the choice as written back to the user (`demo_low`, `demo:0.70,demo_low:0.30`); `value`: see `SpeakerValue`."""

    label: str
    value: SpeakerValue

    @property
    def is_mix(self) -> bool:
        return isinstance(self.value, tuple)


def speaker_names(recorded: Sequence[str], n_speakers: int) -> tuple[str, ...]:
    """The model's speaker names: those its file records (id order), else the ids as text ("0", "1", ...)."""
    return tuple(recorded) if len(recorded) == n_speakers else tuple(str(i) for i in range(n_speakers))


def _known(names: Sequence[str]) -> str:
    listed = ", ".join(f"{name} ({index})" for index, name in enumerate(names))
    example = f"{names[0]}:0.7,{names[1]}:0.3" if len(names) > 1 else f"{names[0]}"
    return f"this model's speakers: {listed}; pass a name, an id or a mix such as {example}"


def _resolve(token: str, names: Sequence[str], spec: str) -> int:
    if token in names:
        return names.index(token)
    if token.isdigit():
        if int(token) < len(names):
            return int(token)
        raise UserInputError(f"--speaker {token}: this model has {len(names)} speaker(s); {_known(names)}")
    raise UserInputError(f"--speaker {spec}: unknown speaker {token!r}; {_known(names)}")


def parse_speaker(spec: str | int, names: Sequence[str]) -> SpeakerChoice:
    """`spec` (a name, an id, or `name:weight,...`) against the model's speaker `names` (id order)."""
    names = tuple(names)
    if isinstance(spec, bool):
        raise UserInputError(f"--speaker {spec!r}: not a speaker; {_known(names)}")
    if isinstance(spec, int):
        if not 0 <= spec < len(names):
            raise UserInputError(f"--speaker {spec}: this model has {len(names)} speaker(s); {_known(names)}")
        return SpeakerChoice(names[spec], spec)
    text = str(spec).strip()
    if ":" not in text and "," not in text:
        index = _resolve(text, names, repr(text))
        return SpeakerChoice(names[index], index)
    weights = [0.0] * len(names)
    seen = set()
    for part in text.split(","):
        name, colon, number = part.strip().rpartition(":")
        if not colon or not name:
            raise UserInputError(f"--speaker {text!r}: {part.strip()!r} is not name:weight; {_known(names)}")
        index = _resolve(name.strip(), names, repr(text))
        try:
            weight = float(number)
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise UserInputError(f"--speaker {text!r}: the weight of {name.strip()} is {number!r}, not a number >= 0; {_known(names)}")
        if index in seen:
            raise UserInputError(f"--speaker {text!r}: {names[index]} is named twice, name each speaker once; {_known(names)}")
        seen.add(index)
        weights[index] = weight
    total = sum(weights)
    if total <= 0:
        raise UserInputError(f"--speaker {text!r}: the weights add up to 0, give at least one a weight > 0; {_known(names)}")
    mix = tuple(w / total for w in weights)
    label = ",".join(f"{names[i]}:{w:.2f}" for i, w in enumerate(mix) if w > 0)
    return SpeakerChoice(label, mix)


def check_speaker_value(value: SpeakerValue, n_speakers: int, where: str) -> None:
    """An id in range, or one finite weight >= 0 per speaker (not all 0): what a render file may hold."""
    if isinstance(value, tuple):
        if len(value) != n_speakers or not all(math.isfinite(w) and w >= 0 for w in value) or sum(value) <= 0:
            raise UserInputError(f"{where}: speaker weights {list(value)} must be {n_speakers} numbers >= 0, not all 0; one per speaker of this model")
    elif not 0 <= value < n_speakers:
        raise UserInputError(f"{where} {value}: this model has {n_speakers} speaker(s); pass --speaker between 0 and {n_speakers - 1}")
