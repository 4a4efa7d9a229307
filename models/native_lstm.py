"""The native int8 LSTM (models/csrc/lstm_int8.c): whole completions in one C call.

Built at install time as the optional extension `models._lstm_int8` (setup.py); where it could not
be built (no C compiler) or the CPU lacks AVX-512 VNNI, `native_kernel()` says so and generation
uses the torch path (models/fast_step.py). It is a plain shared library, called through ctypes:
it takes the addresses of torch tensors and needs nothing from Python while it runs, so the
GIL is released for the whole completion.

What it covers: LSTM models whose hidden size is a multiple of 16, on the CPU; completions whose
stop strings are single characters. Others go through the torch path (Generator decides).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from functools import cache

import torch

from models.model import CharRNN, State
from models.quantized import quantize_rows

log = logging.getLogger(__name__)

MAX_LAYERS = 16  # lstm_int8.c's MAX_LAYERS
KERNELS = ("vnni", "portable")


class _Model(ctypes.Structure):
    _fields_ = [
        ("layers", ctypes.c_int32), ("hidden", ctypes.c_int32), ("vocab", ctypes.c_int32), ("kernel", ctypes.c_int32),
        ("table0", ctypes.c_void_p),
        ("weight", ctypes.c_void_p * MAX_LAYERS), ("scale", ctypes.c_void_p * MAX_LAYERS),
        ("offset", ctypes.c_void_p * MAX_LAYERS), ("bias", ctypes.c_void_p * MAX_LAYERS),
        ("head_t", ctypes.c_void_p), ("head_b", ctypes.c_void_p),
    ]


@cache
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("models._lstm_int8")
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError as e:  # built, but not loadable here (a copied tree, a missing libgomp): the torch path
        log.warning("the native int8 LSTM did not load (%s); generation uses the torch step", e)
        return None
    ptr, i32, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_float
    lib.lstm_int8_vnni_supported.restype = ctypes.c_int
    lib.lstm_int8_step.argtypes = [ptr, i32, ptr, ptr, ptr, ptr]
    lib.lstm_int8_generate.argtypes = [ptr, i32, i32, i32, ptr, ptr, ptr, ptr, i32, ptr, ptr, ptr, i32, f32, ptr, ptr,
                                       ptr, ptr, ptr]
    return lib


def native_kernel() -> str | None:
    """The fastest native kernel this machine runs: "vnni" (AVX-512 VNNI), "portable" (plain C,
    correct anywhere but slower than the torch path), or None where the extension is not built."""
    lib = _library()
    if lib is None:
        return None
    return "vnni" if lib.lstm_int8_vnni_supported() else "portable"


def native_supports(model: CharRNN) -> bool:
    cfg = model.config
    return cfg.cell == "lstm" and cfg.hidden % 16 == 0 and cfg.layers <= MAX_LAYERS


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


class NativeLSTM:
    """int8 weights of an LSTM CharRNN in the native layout, and the calls that use them."""

    def __init__(self, model: CharRNN, kernel: str | None = None):
        """kernel: "vnni" or "portable" (default: native_kernel())."""
        kernel = kernel or native_kernel()
        if kernel not in KERNELS or _library() is None:
            raise RuntimeError("the native int8 LSTM is not built on this machine (setup.py builds it)")
        if kernel == "vnni" and not _library().lstm_int8_vnni_supported():
            raise RuntimeError("this CPU has no AVX-512 VNNI")
        if not native_supports(model):
            raise ValueError("the native kernel runs LSTMs whose hidden size is a multiple of 16")
        cfg, rnn = model.config, model.rnn
        self.layers, self.hidden, self.vocab, self.kernel = cfg.layers, cfg.hidden, cfg.vocab_size, kernel
        H = cfg.hidden

        def w(name):
            return getattr(rnn, name).detach().float().cpu()

        with torch.no_grad():
            self.table0 = (model.embed.weight.detach().float().cpu() @ w("weight_ih_l0").T
                           + w("bias_ih_l0") + w("bias_hh_l0")).contiguous()
            self.weights, self.scales, self.offsets, self.biases = [], [], [], []
            for layer in range(cfg.layers):
                if layer == 0:
                    matrix, bias = w("weight_hh_l0"), torch.zeros(4 * H)
                else:
                    matrix = torch.cat([w(f"weight_ih_l{layer}"), w(f"weight_hh_l{layer}")], 1)
                    bias = w(f"bias_ih_l{layer}") + w(f"bias_hh_l{layer}")
                q, scale = quantize_rows(matrix)
                N, K = q.shape
                # (N, K) -> (N/64, K/4, 64, 4): 4 inputs of 64 outputs per 256 bytes (lstm_int8.c)
                self.weights.append(q.view(N // 64, 64, K // 4, 4).permute(0, 2, 1, 3).contiguous())
                self.scales.append((scale / 127).contiguous())  # the inputs' fixed scale, 1/127, folded in
                self.offsets.append((128 * q.sum(1, dtype=torch.int32)).contiguous())
                self.biases.append(bias.contiguous())
            self.head_t = model.head.weight.detach().float().cpu().T.contiguous()
            self.head_b = model.head.bias.detach().float().cpu().contiguous()
        self._c = _Model(cfg.layers, H, cfg.vocab_size, 1 if kernel == "vnni" else 0, _ptr(self.table0))
        for layer in range(cfg.layers):
            self._c.weight[layer] = _ptr(self.weights[layer])
            self._c.scale[layer] = _ptr(self.scales[layer])
            self._c.offset[layer] = _ptr(self.offsets[layer])
            self._c.bias[layer] = _ptr(self.biases[layer])
        self._c.head_t, self._c.head_b = _ptr(self.head_t), _ptr(self.head_b)
        self._ref = ctypes.byref(self._c)

    @property
    def nbytes(self) -> int:
        """Bytes of weights one batch-1 step reads (the int8 matrices, their scales, the head)."""
        return sum(t.numel() * t.element_size() for t in
                   [*self.weights, *self.scales, *self.offsets, *self.biases, self.head_t, self.head_b])

    def init_state(self, batch: int) -> State:
        return (torch.zeros(self.layers, batch, self.hidden), torch.zeros(self.layers, batch, self.hidden))

    def _check_state(self, state: State, batch: int) -> None:
        for s in state:
            if s.dtype != torch.float32 or not s.is_contiguous() or tuple(s.shape) != (self.layers, batch, self.hidden):
                raise ValueError(f"state must be contiguous float32 ({self.layers}, {batch}, {self.hidden})")

    def _check_ids(self, ids: torch.Tensor) -> None:
        # the kernel indexes its table with them: an id out of range would read past it
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab):
            raise ValueError(f"character ids must be in [0, {self.vocab})")

    def step(self, ids: torch.Tensor, state: State) -> torch.Tensor:
        """ids (B,) -> logits (B, V); the state's h and c (contiguous float32) are updated in place."""
        ids = ids.to(torch.int64).contiguous()
        self._check_ids(ids)
        self._check_state(state, len(ids))
        logits = torch.empty(len(ids), self.vocab)
        if _library().lstm_int8_step(self._ref, len(ids), _ptr(ids), _ptr(state[0]), _ptr(state[1]), _ptr(logits)):
            raise MemoryError("lstm_int8_step: out of memory")
        return logits

    def generate(self, prompts: list[list[int]], noise: torch.Tensor, inv_temp: torch.Tensor, hot: torch.Tensor,
                 top_k: int | None, top_p: float | None, stop_ids: list[int], limits: list[int],
                 threads: int = 1) -> tuple[torch.Tensor, list[int], list[bool]]:
        """Complete n prompts (lists of ids, each at least one), read from the zero state.

        noise (n, T, V) Gumbel with noise[..., 0] = -inf; inv_temp (n,) = 1/T; hot (n,) bool;
        stop_ids: single-character stops; limits: each row's length cap (T = max(limits)); rows are
        shared out among `threads` threads.
        -> ids (n, T) (row i valid up to lengths[i]), lengths, stopped."""
        n, T = noise.shape[0], noise.shape[1]
        if noise.dim() != 3 or noise.shape[2] != self.vocab:
            raise ValueError(f"noise must be (rows, steps, {self.vocab})")
        if len(prompts) != n or not all(prompts) or len(limits) != n or min(limits, default=1) < 1 \
                or max(limits, default=0) > T:
            raise ValueError("one non-empty prompt and one limit (at most T) per row of noise")
        P = max(len(p) for p in prompts)
        prompt = torch.zeros(n, P, dtype=torch.int64)
        for row, ids in enumerate(prompts):
            prompt[row, : len(ids)] = torch.tensor(ids)
        self._check_ids(prompt)
        prompt_len = torch.tensor([len(p) for p in prompts], dtype=torch.int32)
        h, c = self.init_state(n)
        noise = noise.float().contiguous()
        inv_temp = inv_temp.float().contiguous()
        hot = hot.to(torch.uint8).contiguous()
        is_stop = torch.zeros(self.vocab, dtype=torch.uint8)
        if stop_ids:
            is_stop[torch.tensor(stop_ids)] = 1
        limit_t = torch.tensor(limits, dtype=torch.int32)
        out = torch.zeros(n, T, dtype=torch.int64)
        lengths = torch.zeros(n, dtype=torch.int32)
        stopped = torch.zeros(n, dtype=torch.uint8)
        rc = _library().lstm_int8_generate(
            self._ref, n, threads, P, _ptr(prompt), _ptr(prompt_len), _ptr(h), _ptr(c), T, _ptr(noise),
            _ptr(inv_temp), _ptr(hot), top_k or 0, 1.0 if top_p is None else float(top_p), _ptr(is_stop),
            _ptr(limit_t), _ptr(out), _ptr(lengths), _ptr(stopped))
        if rc:
            raise MemoryError("lstm_int8_generate: out of memory")
        return out, lengths.tolist(), [bool(s) for s in stopped.tolist()]
