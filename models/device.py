"""Which device to compute on: `auto`, `cpu`, `cuda` or `cuda:N`, checked once with a clear error.

`auto` is the first CUDA GPU when torch sees one, else the CPU. Checkpoints are device-free:
weights are always saved as CPU tensors and loaded onto whatever device is chosen here.
"""

from __future__ import annotations

import re

import torch

from models.choices import DEVICE_HELP
from models.errors import RnnbotError

_SPEC = re.compile(r"auto|cpu|cuda(?::(\d+))?")


def resolve_device(spec: str = "auto") -> torch.device:
    """The torch.device for `spec`; RnnbotError (one line) when it is malformed or not here."""
    text = (spec or "auto").strip().lower()
    match = _SPEC.fullmatch(text)
    if match is None:
        raise RnnbotError(f"device {spec!r} is not one of {DEVICE_HELP}")
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RnnbotError(f"device {spec!r}: no CUDA GPU is available here (this PyTorch "
                          f"{'has no CUDA support' if torch.version.cuda is None else 'sees no GPU'}); "
                          "use cpu or auto")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise RnnbotError(f"device {spec!r}: this machine has {count} GPU{'s' if count != 1 else ''} "
                          f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return torch.device("cuda", index)


def describe(device: torch.device) -> str:
    """`cpu`, or `cuda:0 (NVIDIA H200)`: what start-up messages print."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read afterwards counts it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
