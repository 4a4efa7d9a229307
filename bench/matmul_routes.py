"""The candidate matrix products for a generation step, per batch size, on this CPU.

A generation step multiplies a (B, K) block of hidden states by a (K, N) weight matrix per layer
(K, N = H, 4H for layer 0's recurrent product, 2H, 4H for each deeper layer). At small B the time
is the time to read the weights, so fewer bytes per weight should win; at large B arithmetic
dominates. This measures each route on the shapes of the 2x256 and 2x512 models, alternating
routes in rounds (one process, so load from other processes hits all of them alike), and prints
median microseconds per product and the largest error against fp32 on inputs in (-1, 1).

    python bench/matmul_routes.py [--threads N] [--batches 1,2,4,8,16,32,64] [--rounds 5] [--clock cpu]

Routes:
  fp32          torch.addmm on fp32 weights (MKL): what the project used before
  bf16          torch.addmm on bf16 weights (oneDNN; emulated without AVX512-BF16/AMX)
  int8-wo       torch._weight_int8pack_mm: int8 weights, fp32 activations (weight-only)
  int8-dyn      torch.ops.quantized.linear_dynamic, fbgemm per-channel int8 weights, activations
                quantized per call from the batch's min/max to 7 bits (reduce_range: AVX2's
                u8*s8 pair sum saturates int16 with 8)
  int8-fixed    torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32: the same fbgemm
                kernel, activations on a fixed 7-bit scale for (-1, 1)
  int8-onednn   quantize_per_tensor + torch.ops.onednn.qlinear_pointwise (u8 x s8, fp32 out)
  int8-aten     torch.fbgemm_linear_int8_weight_fp32_activation + addcmul (models/quantized.py
                Int8Linear; what rnnbot uses): the fbgemm kernel as a plain aten function
  fp16-fbgemm   torch.ops.quantized.linear_dynamic_fp16: fp16 weights, fp32 arithmetic
  fp16-aten     torch.fbgemm_linear_fp16_weight_fp32_activation: the same as a plain aten function
The torch.ops routes that take a packed-params object pay a large fixed cost per call from
Python; compare them with int8-aten, which runs the same fbgemm int8 kernel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import add_timing_args, apply_timing_args, clock
from models import quantized

try:
    import torch.ao.quantization.fx._decomposed
except ImportError:
    pass

SHAPES = {  # name -> (K, N)
    "2x256 layer 0 (256x1024)": (256, 1024),
    "2x256 layer 1 (512x1024)": (512, 1024),
    "2x512 layer 0 (512x2048)": (512, 2048),
    "2x512 layer 1 (1024x2048)": (1024, 2048),
}


def routes_for(w: torch.Tensor, b: torch.Tensor) -> dict:
    """w (N, K), b (N,) -> {route: f(x (B, K)) -> (B, N)}."""
    N, K = w.shape
    wt = w.T.contiguous()
    scale = w.abs().amax(1).clamp_min(1e-12) / 127
    wq = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
    r = {"fp32": lambda x: torch.addmm(b, x, wt)}
    wt16, b16 = wt.bfloat16(), b.bfloat16()
    r["bf16"] = lambda x: torch.addmm(b16, x.bfloat16(), wt16).float()
    r["int8-wo"] = lambda x: torch._weight_int8pack_mm(x, wq, scale) + b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qw = torch.quantize_per_channel(wq.float() * scale[:, None], scale.double(),
                                        torch.zeros(N, dtype=torch.long), 0, torch.qint8)
        before, torch.backends.quantized.engine = torch.backends.quantized.engine, "fbgemm"
        packed = torch.ops.quantized.linear_prepack(qw, b)
        packed16 = torch.ops.quantized.linear_prepack_fp16(w, b)
        torch.backends.quantized.engine = before
    r["int8-dyn"] = lambda x: torch.ops.quantized.linear_dynamic(x, packed, True)
    xs, xz = 1.0 / 63, 64  # x in [-1, 1] -> round(63 x) + 64 in [1, 127]
    r["int8-fixed"] = lambda x: torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x, xs, xz, packed)
    try:
        onednn_w = torch.ops.onednn.qlinear_prepack(wq, None)
        zp = torch.zeros(N, dtype=torch.long)

        def onednn(x):
            qx = torch.ops.quantized_decomposed.quantize_per_tensor(x, xs, xz, 0, 127, torch.uint8)
            return torch.ops.onednn.qlinear_pointwise(qx, xs, xz, onednn_w, scale, zp, b, 1.0, 0,
                                                      torch.float32, "none", [], "")
        onednn(torch.zeros(1, K))
        r["int8-onednn"] = onednn
    except Exception as e:
        print(f"int8-onednn unavailable: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    lin = quantized.Int8Linear(w, b, pad_at=K)
    pad, padded = torch.tensor([quantized.PAD]), {}

    def int8_aten(x):  # the stepper's inputs carry the pad columns already: pad each x once, untimed
        key = (x.data_ptr(), x.shape[0])
        if key not in padded:
            padded[key] = torch.cat([x, pad.expand(x.shape[0], 2)], 1)
        return lin(padded[key])
    r["int8-aten"] = int8_aten
    r["fp16-fbgemm"] = lambda x: torch.ops.quantized.linear_dynamic_fp16(x, packed16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed16_aten = torch.fbgemm_pack_gemm_matrix_fp16(w)
        r["fp16-aten"] = lambda x: torch.fbgemm_linear_fp16_weight_fp32_activation(x, packed16_aten, b)
        r["fp16-aten"](torch.zeros(1, K))
    return r


def time_calls(f, x, seconds: float) -> float:
    f(x)
    n, t0 = 0, clock()
    while True:
        f(x)
        n += 1
        elapsed = clock() - t0
        if elapsed > seconds:
            return elapsed / n


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,2,4,8,16,32,64")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.02, help="per route per round")
    parser.add_argument("--routes", default="", help="comma-separated subset")
    add_timing_args(parser)
    args = parser.parse_args()
    apply_timing_args(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    torch.manual_seed(0)
    batches = [int(b) for b in args.batches.split(",")]
    for shape, (K, N) in SHAPES.items():
        w, b = torch.randn(N, K) / K**0.5, torch.randn(N) * 0.1
        routes = routes_for(w, b)
        if args.routes:
            routes = {k: v for k, v in routes.items() if k in args.routes.split(",")}
        print(f"\n{shape}: median us per product (largest |error| vs fp32 at B=8, inputs in (-1, 1))")
        x8 = torch.rand(8, K) * 2 - 1
        exact = x8 @ w.T + b
        errors = {name: float((f(x8) - exact).abs().max()) for name, f in routes.items()}
        print(f"{'B':>4}  " + "  ".join(f"{name:>11}" for name in routes))
        print(f"{'err':>4}  " + "  ".join(f"{errors[name]:>11.1e}" for name in routes))
        for B in batches:
            x = torch.rand(B, K) * 2 - 1
            times = {name: [] for name in routes}
            for _ in range(args.rounds):
                for name, f in routes.items():
                    times[name].append(time_calls(f, x, args.seconds))
            med = {name: statistics.median(t) * 1e6 for name, t in times.items()}
            best = min(med, key=med.get)
            print(f"{B:>4}  " + "  ".join(f"{med[name]:>10.1f}{'*' if name == best else ' '}" for name in routes))
        print(f"  per product: fp32 reads {4 * K * N / 1e6:.2f} MB of weights, int8 {K * N / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
