"""GPU throughput: rnnbot against plain nn.LSTM loops on the same CUDA GPU, in one process.

Training: the trainer's step (cuDNN LSTM, bf16/fp16 autocast) against bench/training.py's plain fp32
nn.LSTM loop. Generation: 256 concurrent 280-character completions, rnnbot's batched generator
against a plain batched nn.LSTM sampling loop. Run by bench/gpu_check.sh; needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.training import Baseline
from models.device import describe, resolve_device, synchronize
from models.generator import Generator
from trainer.config import TrainConfig
from trainer.corpora import load_corpus
from trainer.train import Trainer

CHARS = 280


def timed(fn, device, repeat: int) -> float:
    """Seconds per call, after one warm-up call, the GPU's queue drained before each clock read."""
    fn()
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / repeat


def training(args, device) -> None:
    cfg = TrainConfig(corpus="kjv", hidden=args.hidden, layers=args.layers, embedding=64,
                      batch_size=args.batch_size, seq_len=args.seq_len, device=str(device),
                      run_dir="/tmp/rnnbot-bench-gpu")
    ours = Trainer(cfg, load_corpus("kjv"))
    ours.model.train()
    base = Baseline(ours, cfg.lr, cfg.grad_clip)
    base.model.to(device)
    x, y, _ = ours.batcher.next()
    xd, yd = x.to(device), y.to(device)
    chars = args.batch_size * args.seq_len
    b = chars / timed(lambda: base.train_step(xd, yd), device, args.steps)
    o = chars / timed(lambda: ours.train_step(x, y), device, args.steps)  # its own pinned copy included
    print(f"training {args.layers}x{args.hidden} B={args.batch_size} T={args.seq_len} ({ours.precision}): "
          f"plain nn.LSTM fp32 {b:,.0f} chars/s, rnnbot {o:,.0f} chars/s, {o / b:.2f}x")


@torch.inference_mode()
def plain_batched_sampling(gen: Generator, prompts: list[str], chars: int) -> list[str]:
    """The baseline: the same weights in nn.LSTM, one batched step per character, multinomial draws."""
    model, vocab, device = gen.model, gen.vocab, gen.device
    width = max(len(p) for p in prompts)
    ids = torch.tensor([vocab.encode(p.rjust(width)) for p in prompts], device=device)
    out, h = model.rnn(model.embed(ids), None)
    picked = []
    for _ in range(chars):
        x = torch.multinomial(torch.softmax(model.head(out[:, -1]), dim=-1), 1)
        picked.append(x)
        out, h = model.rnn(model.embed(x), h)
    return torch.cat(picked, 1).tolist()


def generation(args, device) -> None:
    gen = Generator.load(args.checkpoint, device=device)
    prompts = [f"{i % 50 + 1}:{i % 30 + 1} And" for i in range(args.concurrent)]
    total = args.concurrent * CHARS
    b = total / timed(lambda: plain_batched_sampling(gen, prompts, CHARS), device, 3)
    o = total / timed(lambda: gen.complete(prompts, max_chars=CHARS, temperature=0.8, seed=1), device, 3)
    print(f"generation {args.concurrent} x {CHARS} chars ({gen.name}): plain nn.LSTM {b:,.0f} chars/s, "
          f"rnnbot {o:,.0f} chars/s, {o / b:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checkpoint", required=True, help="the model for the generation figures")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=256)
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"torch {torch.__version__} on {describe(device)}")
    training(args, device)
    generation(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
