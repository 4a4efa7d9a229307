"""Training throughput: a plain fp32 nn.LSTM loop against rnnbot's trainer step, in one process.

Baseline: the plainest way to train this model, embedding -> torch.nn.LSTM -> linear in fp32,
AdamW, gradient clipping, the same batch, sequence length and sizes. The project path is `Trainer.train_step`
exactly as `rnnbot train` runs it (`--precision auto`: bf16 autocast where the CPU has native bf16).

    python bench/training.py [--hidden 512 --layers 2 --batch-size 64 --seq-len 128]
                             [--steps 20 --rounds 3] [--quality-minutes M]

Both run on the same KJV batches, alternating in rounds so that load from other processes hits
both alike; the table shows the median chars/s. `--quality-minutes M` then trains each path for M
minutes of wall clock from the same initial weights and reports the KJV validation loss.
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

from trainer.config import TrainConfig
from trainer.corpora import load_corpus
from trainer.evaluate import estimate_loss
from trainer.train import Trainer


class PlainLSTM(torch.nn.Module):
    """The baseline network: what a first PyTorch char-RNN looks like."""

    def __init__(self, vocab: int, hidden: int, layers: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.rnn = torch.nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state


class Baseline:
    def __init__(self, trainer: Trainer, lr: float, clip: float):
        cfg = trainer.cfg
        torch.manual_seed(cfg.seed)
        self.model = PlainLSTM(len(trainer.vocab), cfg.hidden, cfg.layers)
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


def chars_per_s(step, batches, chars_per_batch: int) -> float:
    t0 = time.perf_counter()
    for x, y in batches:
        step(x, y)
    return len(batches) * chars_per_batch / (time.perf_counter() - t0)


def train_for(step, batcher, seconds: float) -> int:
    steps, t_end = 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        x, y, _ = batcher.next()
        step(x, y)
        steps += 1
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=20, help="steps per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quality-minutes", type=float, default=0.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(corpus="kjv", hidden=args.hidden, layers=args.layers, batch_size=args.batch_size,
                      seq_len=args.seq_len, lr=args.lr, run_dir="/tmp/rnnbot-bench-training")
    project = Trainer(cfg, load_corpus("kjv"))
    project.model.train()
    for group in project.optimizer.param_groups:
        group["lr"] = args.lr
    baseline = Baseline(project, args.lr, cfg.grad_clip)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, project precision {project.precision}")

    batches = [project.batcher.next()[:2] for _ in range(args.steps)]
    chars = args.batch_size * args.seq_len
    for step in (baseline.train_step, project.train_step):  # warm-up (oneDNN primitive caches)
        chars_per_s(step, batches[:3], chars)
    base, ours = [], []
    for _ in range(args.rounds):
        base.append(chars_per_s(baseline.train_step, batches, chars))
        ours.append(chars_per_s(project.train_step, batches, chars))
    b, o = statistics.median(base), statistics.median(ours)
    label = f"{args.layers}x{args.hidden} lstm B={args.batch_size} T={args.seq_len}: training chars/s"
    print(f"{'configuration':<{len(label)}}  {'baseline':>10}  {'rnnbot':>10}  {'ratio':>7}")
    print(f"{label}  {b:>10,.0f}  {o:>10,.0f}  {o / b:>6.2f}x")

    if args.quality_minutes:
        seconds = args.quality_minutes * 60
        val = project.val_ids
        fresh = Trainer(cfg, project.corpus)
        fresh.model.train()
        for group in fresh.optimizer.param_groups:
            group["lr"] = args.lr
        base_model = Baseline(fresh, args.lr, cfg.grad_clip)
        n_base = train_for(base_model.train_step, Trainer(cfg, project.corpus).batcher, seconds)
        base_val = estimate_loss(base_model.model, val)
        n_ours = train_for(fresh.train_step, fresh.batcher, seconds)
        ours_val = estimate_loss(fresh.model, val, autocast=fresh.autocast)
        print(f"after {args.quality_minutes:g} min each at constant lr {args.lr:g}: baseline {n_base} steps, "
              f"val {base_val:.4f} nats/char; rnnbot {n_ours} steps, val {ours_val:.4f} nats/char")


if __name__ == "__main__":
    main()
