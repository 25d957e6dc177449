"""`--device auto|cpu|cuda|cuda:N`: the one parser of a device name, for every CLI (and `trainer.device`)."""
from __future__ import annotations

import re

import torch

from config.errors import UserInputError

DEFAULT_DEVICE = "auto"
DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N (default: auto)"
DEVICE_NAME = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(name: str, where: str = "--device") -> str:
    """`name` when it is auto, cpu, cuda or cuda:N; else a one-line `UserInputError` naming `where`."""
    if DEVICE_NAME.match(str(name)) is None:
        raise UserInputError(f"{where} is {name!r}; use auto, cpu, cuda or cuda:N")
    return str(name)


def resolve_device(name: str, where: str = "--device") -> torch.device:
    """The device `name` stands for here: auto = the current CUDA device when one is present, else the CPU."""
    check_device_name(name, where)
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserInputError(f"{where} {name}: no CUDA device is available here; use {where} cpu (or auto)")
    device = torch.device("cuda") if name == "auto" else torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UserInputError(f"{where} {name}: this machine has {torch.cuda.device_count()} CUDA device(s); use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device
