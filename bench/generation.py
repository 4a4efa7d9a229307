"""Generation speed: the issue's baseline against rnnbot's Generator, in one process.

Baseline (fixed by the issue, do not change): for each character `out, h = lstm(embed(x), h)` on
torch.nn.LSTM in fp32, softmax over head(out)/T, torch.multinomial, batch size 1.

    python bench/generation.py [--checkpoint runs/kjv] [--threads N] [--repeats 3]

Prints one table: configuration, baseline, project, ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.checkpoint import load_checkpoint
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.precision import bf16_supported
from models.vocab import Vocab

CHARS = 280
PROMPTS = ["And God said", "24:3 And there went up", "", "In the beginning", "Blessed are the",
           "1:1 Paul, an apostle", "Then said Jesus unto them,", "Thus saith the LORD"]


@torch.inference_mode()
def baseline_complete(model: CharRNN, vocab: Vocab, prompt: str, chars: int, temperature: float, seed: int) -> str:
    torch.manual_seed(seed)
    embed, lstm, head = model.embed, model.rnn, model.head
    h = None
    ids = vocab.encode(prompt or "\n")
    for cid in ids:  # burn-in, one character at a time
        out, h = lstm(embed(torch.tensor([[cid]])), h)
    text = []
    for _ in range(chars):
        probs = torch.softmax(head(out[:, -1]) / temperature, dim=-1)
        x = torch.multinomial(probs, 1)
        text.append(int(x))
        out, h = lstm(embed(x), h)
    return vocab.decode(text)


@torch.inference_mode()
def distribution_gap(fp32: Generator, bf16: Generator, vocab: Vocab) -> float:
    """Mean KL(fp32 || bf16) of the next-char distributions along a text sampled by the fp32 path."""
    text = "".join(c.text for c in fp32.complete(PROMPTS, max_chars=250, temperature=0.8, seed=5))
    ids = torch.tensor(vocab.encode(text))
    s32, s16 = fp32.stepper.init_state(1), bf16.stepper.init_state(1)
    total = 0.0
    for cid in ids[:2000]:
        p, _ = fp32.stepper(cid.view(1), s32)
        q, _ = bf16.stepper(cid.view(1), s16)
        total += float(torch.sum(p.softmax(-1) * (p.log_softmax(-1) - q.log_softmax(-1))))
    return total / min(2000, len(ids))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def models_to_bench(checkpoint: str | None):
    vocab = Vocab.from_text("".join(chr(c) for c in range(32, 107)))  # 76 symbols like KJV
    if checkpoint:
        ckpt = load_checkpoint(checkpoint)
        c = ckpt.config
        yield f"default KJV model ({c.layers}x{c.hidden} {c.cell})", ckpt.build_model(), ckpt.vocab
    else:
        torch.manual_seed(0)
        yield "default config 2x256 lstm (random weights)", CharRNN(ModelConfig(len(vocab), hidden=256)).eval(), vocab
    torch.manual_seed(0)
    yield "2x512 lstm", CharRNN(ModelConfig(len(vocab), hidden=512)).eval(), vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="the default KJV model (run dir or file); random weights if absent")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or ("runs/kjv" if Path("runs/kjv/best.safetensors").exists() else None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    rows, notes = [], []
    for label, model, vocab in models_to_bench(checkpoint):
        gen = Generator(model, vocab)
        prompt = PROMPTS[0]
        base = timed(lambda: baseline_complete(model, vocab, prompt, CHARS, 0.8, 1), args.repeats)
        ours = timed(lambda: gen.complete([prompt], max_chars=CHARS, temperature=0.8, seed=1), args.repeats)
        rows.append((f"{label}: one {CHARS}-char completion, s", base, ours, base / ours))

        n = args.concurrent
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        temps = [(0.5, 0.8, 1.0)[i % 3] for i in range(n)]
        # Baseline serves them one by one: time the first 8 in sequence (every prompt once).
        sample = range(min(8, n))
        one_by_one = timed(lambda: [baseline_complete(model, vocab, prompts[i], CHARS, temps[i], i) for i in sample],
                           args.repeats)
        base_cps = len(sample) * CHARS / one_by_one
        batch = timed(lambda: gen.complete(prompts, max_chars=CHARS, temperature=temps, seed=3), args.repeats)
        ours_cps = n * CHARS / batch
        rows.append((f"{label}: {n} concurrent completions, chars/s", base_cps, ours_cps, ours_cps / base_cps))
        if bf16_supported():
            gen16 = Generator(model, vocab, precision="bf16")
            batch16 = timed(lambda: gen16.complete(prompts, max_chars=CHARS, temperature=temps, seed=3), args.repeats)
            rows.append((f"{label}: same, bf16 weights, chars/s", base_cps, n * CHARS / batch16,
                         n * CHARS / batch16 / base_cps))
            notes.append(f"{label}: bf16 vs fp32 next-char distributions over 2,000 KJV-like steps: "
                         f"mean KL {distribution_gap(gen, gen16, vocab):.2e} nats")

    width = max(len(r[0]) for r in rows)
    print(f"{'configuration':<{width}}  {'baseline':>10}  {'rnnbot':>10}  {'ratio':>7}")
    for name, base, ours, ratio in rows:
        print(f"{name:<{width}}  {base:>10.4g}  {ours:>10.4g}  {ratio:>6.1f}x")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
