"""Which float format to compute in on this CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.choices import GENERATION_PRECISIONS, TRAIN_PRECISIONS
from models.errors import RnnbotError
from models.quantized import int8_supported


def bf16_supported() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(requested: str, device: torch.device | str = "cpu") -> str:
    """Training's compute format on `device`. CPU: bf16 autocast where the CPU has native bf16, else
    fp32. CUDA: bf16 autocast where the GPU supports it, else fp16 autocast with a gradient scaler."""
    if requested not in TRAIN_PRECISIONS:
        raise RnnbotError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {requested!r}")
    if torch.device(device).type == "cuda":
        if requested == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            raise RnnbotError("--precision bf16: this GPU has no bf16 support; use --precision fp16, fp32 or auto")
        return requested
    if requested == "fp16":
        raise RnnbotError("--precision fp16 needs a CUDA GPU (fp16 on a CPU is emulated); use fp32 or auto")
    if requested == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if requested == "bf16" and not bf16_supported():
        raise RnnbotError("--precision bf16: this CPU has no native bf16 support (AVX512-BF16 or AMX); "
                          "use --precision fp32 or auto")
    return requested


# Generation: the matrix products of a step run on int8 weights for batches up to int8_max_batch
# rows and on `dense` (fp32 or bf16) weights above (models/fast_step.py).
# `auto`'s switch from int8 to dense weights. Measured on an AVX2-only EPYC (bench/generation.py
# --sweep; bench/README.md): a whole int8 step was faster than fp32 at every batch size tried, 1 to
# 512 rows, on the 2x256 and 2x512 models (0.44-0.80x fp32's time at batch 1, 0.54-0.67x at 64):
# AVX2's u8 x s8 multiply-add does twice an fp32 FMA's work per instruction on a quarter of the
# bytes. Above the largest size measured, dense weights (the exact path). The bot's batches are at
# most MAX_BATCH (64) rows.
AUTO_INT8_MAX_BATCH = 512

# Completions of at most this many prompts run in the native int8 kernel (models/native_lstm.py)
# where it runs (int8 or auto, an LSTM, AVX-512 VNNI); larger batches take the torch step above.
# Measured on the Zen 4 (bench/generation.py --sweep, 2 threads; bench/README.md): a native step
# took 0.23-0.46x the torch int8 step's time at every batch size from 1 to 256, on the 2x256 and
# 2x512 models. Above the largest size measured, the torch step.
NATIVE_MAX_BATCH = 256


@dataclass(frozen=True)
class StepPlan:
    dense: torch.dtype = torch.float32  # weights for batches above int8_max_batch
    int8_max_batch: int = 0  # batches of at most this many rows use int8 weights (0 = never)


def generation_plan(requested: str, device: torch.device | str = "cpu") -> StepPlan:
    """GENERATION_PRECISION / `rnnbot sample --precision` -> the weights a generation step uses on
    `device`. On a GPU, `auto` is fp32 (a step there is not bound by the bytes it reads) and int8
    is refused (fbgemm's kernels are the CPU's)."""
    if requested not in GENERATION_PRECISIONS:
        raise RnnbotError(f"generation precision must be one of {', '.join(GENERATION_PRECISIONS)}, got {requested!r}")
    if torch.device(device).type == "cuda":
        if requested == "int8":
            raise RnnbotError("generation precision int8 runs on the CPU (fbgemm): on a GPU use auto, fp32 or bf16")
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            raise RnnbotError("generation precision bf16: this GPU has no bf16 support; use auto or fp32")
        return StepPlan(torch.bfloat16 if requested == "bf16" else torch.float32, 0)
    if requested == "bf16" and not bf16_supported():
        raise RnnbotError("generation precision bf16: this CPU has no native bf16 support (AVX512-BF16 or AMX); "
                          "use auto, int8 or fp32")
    if requested == "int8" and not int8_supported():
        raise RnnbotError("generation precision int8: this PyTorch build has no fbgemm int8 kernels; use auto or fp32")
    if requested == "int8":
        return StepPlan(torch.float32, 1 << 30)
    if requested == "auto":
        if int8_supported():
            # int8 products up to AUTO_INT8_MAX_BATCH rows, the rest (head, bigger batches) in fp32:
            # with native bf16 (AMX), a bf16 head made a batch-1 step 77 us against 40 us, and 64
            # concurrent completions 8% slower (bench/README.md, "AMX machine").
            return StepPlan(torch.float32, AUTO_INT8_MAX_BATCH)
        return StepPlan(torch.bfloat16 if bf16_supported() else torch.float32, 0)
    return StepPlan(torch.bfloat16 if requested == "bf16" else torch.float32, 0)
