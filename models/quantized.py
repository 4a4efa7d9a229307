"""int8 weights for generation's matrix products (fbgemm; one scale per output channel).

At batch 1 a generation step is bound by the bytes of weights it reads plus a fixed cost per
operation; int8 weights are a quarter of fp32's bytes. Routes measured on an AVX2-only EPYC
(bench/matmul_routes.py; figures in bench/README.md):
  - torch._weight_int8pack_mm and torch._int_mm have no fast AVX2 kernel here (several times
    slower than fp32); oneDNN's qlinear_pointwise was slower than fbgemm;
  - fbgemm's int8 GEMM (quantized::linear_dynamic, or with a fixed input scale) is fast, but a
    torch.ops call that takes a packed-params object costs ~25-40 us of Python-side overhead per
    product, more than a whole 2x256 product;
  - torch.fbgemm_linear_int8_weight_fp32_activation runs the same fbgemm kernel as a plain aten
    function (a few us per call): this module uses it.

That function quantizes its input with a scale and zero point from the input's own min and max
(8 bits, unsigned) and has one weight scale per matrix. Both are arranged from outside:
  - every input carries two constant columns, -1 and 3 (PAD), whose weights are zero. Hidden
    states, the only inputs here, are in (-1, 1) for every cell, so min and max are always -1 and
    3: scale 4/255 and zero point 64, and h takes the values 0..128 (7 bits). The scale is thus
    the same for every batch, so a row's result does not depend on the other rows (the int32
    accumulation is exact): a prompt samples the same text alone or in a batch. And AVX2 has no
    VNNI: fbgemm's u8 x s8 multiply-add (vpmaddubsw) sums pairs of products in int16, which
    2 * 128 * 127 fits and 2 * 255 * 127 would overflow;
  - weights are quantized per output row (symmetric, round to nearest, [-127, 127]) and passed
    with scale 1; each row's scale is applied after, in the addcmul that adds the bias.
Both torch functions are deprecated in PyTorch 2.13 (each warns once per process, here, at load);
requirements pin torch==2.13.0, and int8_supported() makes callers fall back to fp32 without them.
"""

from __future__ import annotations

import warnings

import torch

PAD = (-1.0, 3.0)  # the constant columns every input of Int8Linear carries (their weights are zero)


def int8_supported() -> bool:
    """True where this torch build has fbgemm's int8 kernels (x86 builds; fbgemm needs AVX2)."""
    return (hasattr(torch, "fbgemm_linear_int8_weight_fp32_activation")
            and torch.backends.quantized.supported_engines.count("fbgemm") > 0)


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight (N, K) float -> int8 (N, K) and per-row scale (N,): symmetric, round to nearest."""
    scale = weight.abs().amax(1).clamp_min(1e-12) / 127
    return torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


class Int8Linear:
    """y = x @ weight.T + bias on int8 weights, for x (B, K) float32 whose values are in [-1, 1]
    except for two columns holding PAD, where weight's columns are zero.

    `pad_at` is the index of PAD's first column in x (weight has zeros there, or gets them if it
    has K - 2 columns).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, pad_at: int | None = None):
        weight = weight.detach().float()
        N = weight.shape[0]
        if pad_at is not None:
            weight = torch.cat([weight[:, :pad_at], torch.zeros(N, len(PAD)), weight[:, pad_at:]], 1)
        self.q, self.scale = quantize_rows(weight)
        self.q = self.q.contiguous()
        self.col_offsets = self.q.sum(1, dtype=torch.int32)
        self.bias = torch.zeros(N) if bias is None else bias.detach().float().contiguous()
        self._zero = torch.zeros(N)
        self.nbytes = self.q.numel() + self.scale.numel() * 4 + (0 if bias is None else N * 4)
        with warnings.catch_warnings():
            # "deprecated and will be removed in a future PyTorch release", once per process
            warnings.simplefilter("ignore", UserWarning)
            self.packed = torch.fbgemm_pack_quantized_matrix(self.q)
            self.raw(torch.zeros(1, self.q.shape[1]))  # the op's own warning, here rather than mid-generation

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """x @ q.T, each output column in units of its row's scale, no bias."""
        return torch.fbgemm_linear_int8_weight_fp32_activation(x, self.q, self.packed, self.col_offsets,
                                                               1.0, 0, self._zero)

    def __call__(self, x: torch.Tensor, add: torch.Tensor | None = None, out: torch.Tensor | None = None):
        """x @ weight.T + bias, or + `add` (B, N) in place of the bias; into `out` when given."""
        add = self.bias if add is None else add
        if out is None:
            return torch.addcmul(add, self.raw(x), self.scale)
        return torch.addcmul(add, self.raw(x), self.scale, out=out)

    def dequantized(self) -> torch.Tensor:
        """The (N, K) float weights the product effectively uses (for tests and error analysis)."""
        return self.q.float() * self.scale[:, None]
