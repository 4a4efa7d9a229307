"""Training throughput: a plain fp32 nn.LSTM loop against rnnbot's trainer step, in one process.

Baseline: embedding -> torch.nn.LSTM -> linear in fp32, AdamW, gradient clipping, the same batch,
sequence length and sizes: the training loop a first PyTorch char-RNN has. The project path is
`Trainer.train_step` exactly as `rnnbot train` runs it (`--precision auto`: bf16 autocast where the
CPU has native bf16, fp32 elsewhere).

    python bench/training.py [--hidden 512 --layers 2 --embedding 0 --batch-size 64 --seq-len 128]
                             [--project-batch-size B --project-lr LR] [--steps 20 --rounds 3]
                             [--threads N] [--clock cpu] [--bf16] [--quality-minutes M]

Both networks have the same sizes: `--embedding 0` (the default here, unlike `rnnbot train`'s 64)
gives both an embedding as wide as the hidden layer. `--project-batch-size` runs rnnbot's step on
a larger batch than the baseline's (a lever the issue names); chars/s stay comparable, and
`--quality-minutes` shows what the larger batch costs or gains in validation loss for the same
wall clock.

Both run on the same KJV batches, alternating in rounds so that load from other processes hits
both alike; the table shows the median chars/s. Then, in the same run, torch's matrix-product rate
on the training step's own shapes (fp32; bf16 too where the CPU has native bf16, or with --bf16),
and each path's achieved GFLOP/s as a share of the best of those rates: how far the step is from
what the products alone would allow. `--quality-minutes M` then trains each path for M minutes of
wall clock from the same initial weights and reports the KJV validation loss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import add_timing_args, apply_timing_args, clock
from models.precision import bf16_supported
from trainer.config import TrainConfig
from trainer.corpora import load_corpus
from trainer.data import StreamBatcher
from trainer.evaluate import estimate_loss
from trainer.train import Trainer


class PlainLSTM(torch.nn.Module):
    """The baseline network: what a first PyTorch char-RNN looks like."""

    def __init__(self, vocab: int, hidden: int, layers: int, embedding: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embedding)
        self.rnn = torch.nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


class Baseline:
    def __init__(self, trainer: Trainer, lr: float, clip: float):
        cfg = trainer.cfg
        torch.manual_seed(cfg.seed)
        self.model = PlainLSTM(len(trainer.vocab), cfg.hidden, cfg.layers, trainer.model.config.embedding_dim)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr)
        self.clip, self.state = clip, None

    def train_step(self, x, y) -> float:
        logits, state = self.model(x, self.state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.state = tuple(s.detach() for s in state)
        return loss.item()


def step_shapes(batch: int, seq_len: int, hidden: int, embedding: int, layers: int, vocab: int) -> dict:
    """(M, K, N) of the products in one LSTM training step (forward and backward)."""
    BT, G = batch * seq_len, 4 * hidden
    shapes = {
        "input projection, all steps (BT x E @ E x 4H)": (BT, embedding, G),
        "recurrent, one time step (B x H @ H x 4H)": (batch, hidden, G),
        "its backward, dh (B x 4H @ 4H x H)": (batch, G, hidden),
        "weight gradient (H x BT @ BT x 4H)": (hidden, BT, G),
        "head (BT x H @ H x V)": (BT, hidden, vocab),
    }
    if layers > 1 and embedding != hidden:
        shapes["deeper input projection (BT x H @ H x 4H)"] = (BT, hidden, G)
    return shapes


def training_flops(batch: int, seq_len: int, hidden: int, embedding: int, layers: int, vocab: int) -> float:
    """FLOPs of one training step's products: forward 2*M*K*N each, backward twice that."""
    BT, G = batch * seq_len, 4 * hidden
    forward = sum(2 * BT * G * ((embedding if layer == 0 else hidden) + hidden) for layer in range(layers))
    forward += 2 * BT * hidden * vocab
    return 3 * forward


def gemm_gflops(M: int, K: int, N: int, dtype: torch.dtype, seconds: float = 0.3) -> float:
    a, b = torch.randn(M, K).to(dtype), torch.randn(K, N).to(dtype)
    a @ b
    n, t0 = 0, clock()
    while clock() - t0 < seconds:
        a @ b
        n += 1
    return 2 * M * K * N * n / (clock() - t0) / 1e9


def chars_per_s(step, batches, chars_per_batch: int) -> float:
    t0 = clock()
    for x, y in batches:
        step(x, y)
    return len(batches) * chars_per_batch / (clock() - t0)


def train_for(step, batcher, seconds: float) -> int:
    steps, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        x, y, _ = batcher.next()
        step(x, y)
        steps += 1
    return steps


def build(cfg: TrainConfig, base_batch: int, base_lr: float, corpus) -> tuple[Trainer, Baseline, StreamBatcher]:
    """rnnbot's trainer (cfg), the baseline of the same sizes, and the baseline's batches of
    `base_batch` streams over the same training text."""
    project = Trainer(cfg, corpus)
    project.model.train()
    for group in project.optimizer.param_groups:
        group["lr"] = cfg.lr
    baseline = Baseline(project, base_lr, cfg.grad_clip)
    return project, baseline, project.dist.batcher(project.train_ids, base_batch, cfg.seq_len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embedding", type=int, default=0, help="embedding width of both (0: as --hidden)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--project-batch-size", type=int, default=0, help="rnnbot's batch (0: as --batch-size)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--project-lr", type=float, default=0.0, help="rnnbot's learning rate (0: as --lr)")
    parser.add_argument("--steps", type=int, default=20, help="steps per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality-minutes", type=float, default=0.0)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 products where bf16 is not native")
    add_timing_args(parser)
    args = parser.parse_args()
    if (args.project_batch_size or args.batch_size) % args.batch_size:
        parser.error("--project-batch-size must be a multiple of --batch-size")
    apply_timing_args(args)
    cfg = TrainConfig(corpus="kjv", hidden=args.hidden, layers=args.layers, embedding=args.embedding,
                      batch_size=args.project_batch_size or args.batch_size, seq_len=args.seq_len,
                      lr=args.project_lr or args.lr, run_dir="/tmp/rnnbot-bench-training")
    corpus = load_corpus("kjv")
    project, baseline, base_batcher = build(cfg, args.batch_size, args.lr, corpus)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, project precision {project.precision}")

    # The same characters for both: the project's batches are the baseline's, stacked.
    per = cfg.batch_size // args.batch_size
    base_batches = [base_batcher.next()[:2] for _ in range(args.steps * per)]
    batches = [tuple(torch.cat(part) for part in zip(*base_batches[i:i + per]))
               for i in range(0, len(base_batches), per)]
    base_chars, chars = args.batch_size * args.seq_len, cfg.batch_size * args.seq_len
    chars_per_s(baseline.train_step, base_batches[:3], base_chars)  # warm-up (oneDNN primitive caches)
    chars_per_s(project.train_step, batches[:3], chars)
    base, ours = [], []
    for _ in range(args.rounds):
        base.append(chars_per_s(baseline.train_step, base_batches, base_chars))
        ours.append(chars_per_s(project.train_step, batches, chars))
    b, o = statistics.median(base), statistics.median(ours)
    batch = f"B={args.batch_size}" + (f" (rnnbot B={cfg.batch_size})" if per > 1 else "")
    label = f"{args.layers}x{args.hidden} lstm {batch} T={args.seq_len}: training chars/s"
    print(f"{'configuration':<{len(label)}}  {'baseline':>10}  {'rnnbot':>10}  {'ratio':>7}")
    print(f"{label}  {b:>10,.0f}  {o:>10,.0f}  {o / b:>6.2f}x")

    embedding = project.model.config.embedding_dim
    vocab = len(project.vocab)
    shapes = step_shapes(args.batch_size, args.seq_len, args.hidden, embedding, args.layers, vocab)
    dtypes = [torch.float32] + ([torch.bfloat16] if bf16_supported() or args.bf16 else [])
    rates = {(name, dt): statistics.median(gemm_gflops(*mkn, dt) for _ in range(3))
             for name, mkn in shapes.items() for dt in dtypes}
    print("\ntorch matrix products on the step's shapes, GFLOP/s (median of 3), in the same run:")
    for dt in dtypes:
        native = "" if dt is torch.float32 else (" (native)" if bf16_supported() else " (emulated: no AVX512-BF16/AMX)")
        print(f"  {str(dt).replace('torch.', '')}{native}:")
        for name, (M, K, N) in shapes.items():
            print(f"    {name:<48} M={M:<5} K={K:<5} N={N:<5} {rates[(name, dt)]:8.1f}")
    best_dt = max(dtypes, key=lambda dt: max(rates[(n, dt)] for n in shapes))
    best = max(rates[(n, best_dt)] for n in shapes)
    flops = training_flops(args.batch_size, args.seq_len, args.hidden, embedding, args.layers, vocab)
    print(f"one training step: {flops / 1e9:.1f} GFLOP in its products (forward + backward)")
    best_fp32 = max(rates[(n, torch.float32)] for n in shapes)
    achieved = {name: flops * rate / base_chars / 1e9  # FLOPs per character do not depend on the batch
                for name, rate in (("baseline", b), ("rnnbot", o))}
    for name, gflops in achieved.items():
        print(f"  {name}: {gflops:.1f} GFLOP/s = {100 * gflops / best:.0f}% of the best product rate "
              f"({best:.1f} GFLOP/s, {str(best_dt).replace('torch.', '')}), "
              f"{100 * gflops / best_fp32:.0f}% of the best fp32 rate ({best_fp32:.1f})")
    # The most any path could gain: every product at the best rate measured, nothing else costing time.
    print(f"ceiling: a step at the best product rate would be {best / achieved['baseline']:.2f}x the baseline")

    if args.quality_minutes:
        seconds = args.quality_minutes * 60
        val = project.val_ids
        fresh, base_model, fresh_base_batcher = build(cfg, args.batch_size, args.lr, corpus)
        n_base = train_for(base_model.train_step, fresh_base_batcher, seconds)
        base_val = estimate_loss(base_model.model, val)
        n_ours = train_for(fresh.train_step, fresh.batcher, seconds)
        ours_val = estimate_loss(fresh.model, val, autocast=fresh.autocast)
        print(f"after {args.quality_minutes:g} min each at constant lr: baseline {n_base} steps of "
              f"B={args.batch_size} at lr {args.lr:g}, val {base_val:.4f} nats/char; rnnbot {n_ours} steps of "
              f"B={cfg.batch_size} at lr {cfg.lr:g}, val {ours_val:.4f} nats/char")


if __name__ == "__main__":
    main()
