"""Per-step overhead of a batch-1 LSTM generation step: the ways to cut it, measured in one process.

For small models a step's ~25 small operations cost more than its arithmetic. Compared here, on
the same weights (fp32, and int8 through models/quantized.py):
  allocating   the step as rnnbot had it before: torch.cat of [x, h] per deeper layer, fresh
               tensors for gates and intermediates, slices made per call
  compiled     `allocating` under torch.compile (inductor; --cpp-wrapper for its C++ wrapper),
               with its compile time; the int8 product is wrapped as a torch.library custom op
               (the aten function has no fake-tensor kernel, so dynamo cannot trace it as is)
  rnnbot       models/fast_step.py: hidden states kept in one block of rows that the products
               read as column ranges, gates written into buffers sliced once, nothing
               allocated per step but the logits
Each runs CHARS steps per round, in turn; medians over rounds, in microseconds per step.

    python bench/step_overhead.py --checkpoint runs/kjv [--threads 1] [--rounds 7] [--no-compile] [--clock cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import add_timing_args, apply_timing_args, clock
from models.checkpoint import load_checkpoint
from models.fast_step import FastStepper
from models.model import CharRNN, ModelConfig
from models.quantized import PAD, Int8Linear

CHARS = 280


class AllocatingStep:
    """An LSTM step written the plain way (what models/fast_step.py did before)."""

    def __init__(self, stepper: FastStepper, int8: bool):
        self.H, self.L = stepper.hidden, stepper.layers
        self.table0, self.w_head, self.b_head = stepper.table0_f32, stepper.w_head, stepper.b_head
        self.pad = torch.tensor([PAD])
        if int8:  # products on [x, h, p] with p last
            self.hh0 = Int8Linear(stepper.w_hh[0][0].T, None, pad_at=stepper.hidden)
            self.cat = [None] + [Int8Linear(w.T[:, self._unpadded(2 * self.H)], b, pad_at=2 * self.H)
                                 for w, b in stepper.w_cat[1:]]
        self.int8 = int8
        self.w_hh0 = stepper.w_hh[0][0]
        self.w_cat = [None] + [(w[self._unpadded(2 * self.H)], b) for w, b in stepper.w_cat[1:]]

    def _unpadded(self, k: int) -> torch.Tensor:  # drop the block layout's two zero rows at H
        H, P = self.H, len(PAD)
        return torch.cat([torch.arange(H), torch.arange(H + P, k + P)])

    def __call__(self, ids: torch.Tensor, h_all: torch.Tensor, c_all: torch.Tensor) -> torch.Tensor:
        H, x = self.H, None
        for layer in range(self.L):
            h, c = h_all[layer], c_all[layer]
            if layer == 0:
                gates = (self.hh0(torch.cat([h, self.pad], 1), self.table0[ids]) if self.int8
                         else torch.addmm(self.table0[ids], h, self.w_hh0))
            else:
                w, b = self.w_cat[layer]
                gates = (self.cat[layer](torch.cat([x, h, self.pad], 1)) if self.int8
                         else torch.addmm(b, torch.cat([x, h], 1), w))
            ifo = gates[:, :3 * H].sigmoid_()
            g = gates[:, 3 * H:].tanh_()
            c.mul_(ifo[:, H:2 * H]).addcmul_(ifo[:, :H], g)
            torch.mul(ifo[:, 2 * H:], c.tanh(), out=h)
            x = h
        return torch.addmm(self.b_head, x, self.w_head)


def custom_op_for_compile() -> None:
    """Route Int8Linear.raw through a torch.library op with a fake kernel, so dynamo can trace it."""
    @torch.library.custom_op("rnnbot_bench::int8_raw", mutates_args=())
    def int8_raw(x: torch.Tensor, q: torch.Tensor, packed: torch.Tensor, col: torch.Tensor,
                 zero: torch.Tensor) -> torch.Tensor:
        return torch.fbgemm_linear_int8_weight_fp32_activation(x, q, packed, col, 1.0, 0, zero)

    @int8_raw.register_fake
    def _(x, q, packed, col, zero):
        return x.new_empty(x.shape[0], q.shape[0])

    Int8Linear.raw = lambda self, x: int8_raw(x, self.q, self.packed, self.col_offsets, self._zero)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="an LSTM model (run dir or file); random 2x256 if absent")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--cpp-wrapper", action="store_true", help="torch.compile with inductor's C++ wrapper")
    add_timing_args(parser)
    args = parser.parse_args()
    apply_timing_args(args)
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint).build_model().eval()
    else:
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(76, hidden=256)).eval()
    cfg = model.config
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; model {cfg.layers}x{cfg.hidden} {cfg.cell}, batch 1")
    if not args.no_compile:
        custom_op_for_compile()
        if args.cpp_wrapper:
            import torch._inductor.config as inductor_config

            inductor_config.cpp_wrapper = True
    ids = torch.tensor([5])
    fns, notes = {}, []
    for precision in ("fp32", "int8"):
        stepper = FastStepper(model, precision)
        plain = AllocatingStep(stepper, precision == "int8")
        state = stepper.init_state(1)
        h, c = torch.zeros(cfg.layers, 1, cfg.hidden), torch.zeros(cfg.layers, 1, cfg.hidden)
        fns[f"{precision} allocating"] = lambda plain=plain, h=h, c=c: plain(ids, h, c)
        fns[f"{precision} rnnbot"] = lambda stepper=stepper, state=state: stepper(ids, state)
        if not args.no_compile:
            compiled = torch.compile(plain.__call__, dynamic=False)
            t0 = time.perf_counter()
            try:
                with torch.inference_mode():
                    compiled(ids, h.clone(), c.clone())
                notes.append(f"{precision}: torch.compile of the allocating step took {time.perf_counter() - t0:.1f} s")
                fns[f"{precision} compiled"] = lambda compiled=compiled, h=h, c=c: compiled(ids, h, c)
            except Exception as e:
                notes.append(f"{precision}: torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:150]}")
    times = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():
            for _ in range(20):
                fn()
        for _ in range(args.rounds):
            for name, fn in fns.items():
                t0 = clock()
                for _ in range(CHARS):
                    fn()
                times[name].append((clock() - t0) / CHARS)
    for name, t in times.items():
        print(f"{name:<18} {statistics.median(t) * 1e6:8.1f} us per step")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
