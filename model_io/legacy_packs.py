"""Version-1 packs (written by `inference/visinger.py --pack` and `inference/baseline.py --pack` before packs
held a model description) read as `SavedModels`, so that they still load; `Singer.load(old).pack(new)`
rewrites one as a version-2 pack.

Version 1, the DDSP singer: `ddsp_singer.pt` + `config.yaml` (see `DDSP_V1`). Version 1, VISinger: `generator.pt` {format "korean-visinger-pack", version 1, generator_args,
generator (state), source}, `config.yaml`, `phone_set.json`, `stats.json`. Version 1, the pair:
`acoustic.pt` / `vocoder.pt` {format "korean-svs-baseline-pack", version 1, kind, arguments, state,
source}, `config.yaml` (acoustic), `vocoder_config.yaml`, `phone_set.json`, `stats.json`. Both kinds
stored the constructor arguments, so the description is rebuilt from what the files say (the class
of each kind was fixed in version 1).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config.errors import UserInputError
from config.loader import config_section, load_config
from model_io.checkpoint_file import read_torch_file
from model_io.description import ACOUSTIC, SINGER, TRANSFER, VOCODER, ModelDescription, ModelSpec
from model_io.saved import SavedModels, TrainingRecord
from preprocessor.audio import AudioSettings
from preprocessor.text.phone_set import read_phone_set

VISINGER_V1 = ("korean-visinger-pack", "generator.pt")
# The DDSP singer's first pack (inference/transfer.py --pack before it moved to model_io): `ddsp_singer.pt`
# {format, version 1, arguments (DDSPSingerConfig), state, source} + `config.yaml` (the training config).
DDSP_V1 = ("korean-ddsp-singer-pack", "ddsp_singer.pt")
DDSP_STATISTICS = ("loudness_mean", "loudness_std", "pitch_mean_midi", "pitch_std_midi")
PAIR_V1 = ("korean-svs-baseline-pack", "acoustic.pt", "vocoder.pt")
# What each version-1 file held: (class path, config class or None for keyword arguments, role).
V1_CLASSES = {
    "generator": ("modules.visinger.VISingerGenerator", "modules.visinger.VISingerGeneratorConfig", SINGER),
    "acoustic": ("modules.fs2_singer.FS2Singer", "modules.fs2_singer.FS2SingerConfig", ACOUSTIC),
    "vocoder": ("modules.hifigan.HiFiGANGenerator", None, VOCODER),
}


def is_version_1_pack(folder: Path) -> bool:
    return (folder / VISINGER_V1[1]).is_file() or (folder / PAIR_V1[1]).is_file() or (folder / DDSP_V1[1]).is_file()


def _payload(path: Path, pack_format: str, kind: str | None) -> dict[str, Any]:
    payload = read_torch_file(path, "re-create the pack")
    if not isinstance(payload, dict) or payload.get("format") != pack_format or payload.get("version") != 1 or payload.get("kind", kind) != kind:
        raise UserInputError(f"{path}: not a {pack_format} v1 file; re-create the pack with inference/visinger.py --pack or inference/baseline.py --pack")
    return payload


def _audio(config_path: Path) -> AudioSettings:
    try:
        return config_section(load_config(config_path), AudioSettings, "audio")
    except UserInputError as error:
        raise UserInputError(f"{config_path}: the pack's config has no valid audio section ({error}); re-create the pack") from None


def visinger_arguments_of_version_1(arguments: dict[str, Any]) -> dict[str, Any]:
    """Version-1 VISinger arguments chose the decoder with `harmonic_source: bool`; today `decoder` names it."""
    arguments = dict(arguments)
    if "harmonic_source" in arguments:
        arguments["decoder"] = "nsf_hifigan" if arguments.pop("harmonic_source") else "hifigan"
    return arguments


def load_ddsp_version_1_pack(folder: Path) -> SavedModels:
    """A DDSP singer's first pack as `SavedModels` (the statistics from its weights' buffers, the loudness window from its config)."""
    payload = _payload(folder / DDSP_V1[1], DDSP_V1[0], None)
    config = load_config(folder / "config.yaml")
    try:
        stats = {"loudness_n_fft": int(config["audio_folder"]["loudness_n_fft"])}
        stats.update({name: float(payload["state"][name]) for name in DDSP_STATISTICS})
    except (KeyError, TypeError, ValueError) as error:
        raise UserInputError(f"{folder}: not a complete DDSP singer pack ({error!r} missing); re-create it with inference/transfer.py --pack") from None
    spec = ModelSpec("modules.ddsp_singer.DDSPSinger", dict(payload["arguments"]), "modules.ddsp_singer.DDSPSingerConfig", TRANSFER)
    description = ModelDescription({"generator": spec}, _audio(folder / "config.yaml"), stats=stats, code_version="version-1 pack")
    trained = (TrainingRecord(str(config.get("task_cls", "unknown")), 0, {}, config, str(payload.get("source") or folder), "unknown", ("generator",)),)
    return SavedModels(description, {"generator": payload["state"]}, trained, folder)


def load_version_1_pack(folder: Path) -> SavedModels:
    """The models of a version-1 pack folder (VISinger, the pair or the DDSP singer) as `SavedModels`."""
    if (folder / DDSP_V1[1]).is_file():
        return load_ddsp_version_1_pack(folder)
    read_phone_set(folder / "phone_set.json")  # a pack from another phone set is an error, not garbage audio
    stats_path = folder / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
    if (folder / VISINGER_V1[1]).is_file():
        payload = _payload(folder / VISINGER_V1[1], VISINGER_V1[0], None)
        parts = {"generator": (visinger_arguments_of_version_1(payload["generator_args"]), payload["generator"], "config.yaml", payload.get("source"))}
    else:
        acoustic = _payload(folder / PAIR_V1[1], PAIR_V1[0], "acoustic")
        if not (folder / PAIR_V1[2]).is_file():
            raise UserInputError(f"{folder}: a version-1 pair pack without {PAIR_V1[2]}; re-create it with inference/baseline.py --pack")
        vocoder = _payload(folder / PAIR_V1[2], PAIR_V1[0], "vocoder")
        parts = {
            "acoustic": (acoustic["arguments"], acoustic["state"], "config.yaml", acoustic.get("source")),
            "vocoder": (vocoder["arguments"], vocoder["state"], "vocoder_config.yaml", vocoder.get("source")),
        }
    models = {name: ModelSpec(V1_CLASSES[name][0], dict(arguments), V1_CLASSES[name][1], V1_CLASSES[name][2]) for name, (arguments, *_) in parts.items()}
    description = ModelDescription(models, _audio(folder / "config.yaml"), stats=stats, code_version="version-1 pack")
    description.check_phone_set(str(folder))
    trained = tuple(
        TrainingRecord("unknown (version-1 pack)", 0, {}, load_config(folder / config_name), str(source or folder), "unknown", (name,))
        for name, (_, _, config_name, source) in parts.items()
    )
    return SavedModels(description, {name: state for name, (_, state, *_) in parts.items()}, trained, folder)
