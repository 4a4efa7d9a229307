"""Which float format to compute in on this CPU."""

from __future__ import annotations

import torch

from models.errors import RnnbotError

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_supported() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(requested: str) -> str:
    if requested not in PRECISIONS:
        raise RnnbotError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if requested == "bf16" and not bf16_supported():
        raise RnnbotError("--precision bf16: this CPU has no native bf16 support (AVX512-BF16 or AMX); "
                          "use --precision fp32 or auto")
    return requested


def torch_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if resolve_precision(precision) == "bf16" else torch.float32
