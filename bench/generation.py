"""Generation speed: per-character nn.LSTM (the faster of its two CPU paths) against rnnbot's
Generator, in one process.

Baseline: for each character `out, h = lstm(embed(x), h)` on torch.nn.LSTM in fp32, softmax over
head(out)/T, torch.multinomial, batch size 1 -- what a first PyTorch char-RNN sampler looks like.
nn.LSTM has two CPU paths: oneDNN's (taken by default for fp32 on CPU) and ATen's native one
(with torch.backends.mkldnn.flags(enabled=False)). At batch 1 oneDNN's can be several times
slower, so both are measured in the same run and the baseline is the faster of the two; a
baseline that is slower than it needs to be would flatter rnnbot.

    python bench/generation.py [--checkpoint runs/kjv] [--checkpoint-512 DIR] [--threads N]
                               [--rounds 5] [--clock cpu] [--precisions auto,fp32,int8]
                               [--kl-steps 2000] [--sweep 1,2,4,...]

Every timed thing runs once per round, in turn (so load from other processes hits all alike);
the tables show medians over rounds. Also printed: this machine's read bandwidth (a large tensor
summed from memory, and a 12 MB one from cache), the bytes of weights each path reads per
character at batch 1 and the GB/s that makes, and KL(fp32 || int8) of the next-character
distributions along text sampled from the fp32 model. `--sweep` instead times one step of the
torch step on fp32 and int8 weights and of the native int8 kernel at each batch size given (what
models/precision.py AUTO_INT8_MAX_BATCH and NATIVE_MAX_BATCH are chosen from).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import add_timing_args, apply_timing_args, clock
from models.checkpoint import load_checkpoint
from models.fast_step import FastStepper
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.native_lstm import NativeLSTM, native_kernel, native_supports
from models.sampling import gumbel_noise
from models.vocab import Vocab

CHARS = 280
PROMPTS = ["And God said", "24:3 And there went up", "", "In the beginning", "Blessed are the",
           "1:1 Paul, an apostle", "Then said Jesus unto them,", "Thus saith the LORD"]
# torch.backends.mkldnn.flags() warns about TF32 on Intel GPUs each time it is entered.
warnings.filterwarnings("ignore", message="TF32 acceleration")


@torch.inference_mode()
def baseline_complete(model: CharRNN, vocab: Vocab, prompt: str, chars: int, temperature: float, seed: int,
                      onednn: bool = True) -> str:
    """The baseline sampler; onednn=False runs nn.LSTM on ATen's native CPU path."""
    torch.manual_seed(seed)
    embed, lstm, head = model.embed, model.rnn, model.head
    with torch.backends.mkldnn.flags(enabled=onednn):
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


def baseline_weight_bytes(model: CharRNN) -> int:
    """Bytes the baseline reads per character: every LSTM and head weight, one embedding row."""
    lstm_and_head = sum(p.numel() * p.element_size() for p in (*model.rnn.parameters(), *model.head.parameters()))
    return lstm_and_head + model.embed.weight[0].numel() * 4


@torch.inference_mode()
def distribution_gap(model: CharRNN, precision: str, steps: int = 2000, seed: int = 0,
                     native: bool = False) -> tuple[float, float]:
    """Mean and max KL(fp32 || precision), nats, of the next-char distributions along `steps`
    characters sampled (temperature 1) from the fp32 stepper; each stepper carries its own state.
    native: the native int8 kernel's step instead of the torch step at `precision`."""
    ref = FastStepper(model, "fp32")
    if native:
        kernel = NativeLSTM(model)
        s_other = kernel.init_state(1)

        def other(ids, state):
            return kernel.step(ids, state), state
    else:
        other = FastStepper(model, precision)
        s_other = other.init_state(1)
    s_ref = ref.init_state(1)
    rng = torch.Generator().manual_seed(seed)
    ids = torch.tensor([1])
    total, worst = 0.0, 0.0
    for _ in range(steps):
        p, s_ref = ref(ids, s_ref)
        q, s_other = other(ids, s_other)
        logp, logq = p.log_softmax(-1), q.log_softmax(-1)
        kl = float((logp.exp() * (logp - logq)).sum())
        total, worst = total + kl, max(worst, kl)
        ids = torch.multinomial(logp.exp()[0], 1, generator=rng)
    return total / steps, worst


def read_bandwidth(nbytes: int, seconds: float = 0.3) -> float:
    """GB/s of summing an fp32 tensor of `nbytes` (from DRAM when large, from cache when small)."""
    x = torch.rand(nbytes // 4)
    x.sum()
    n, t0 = 0, clock()
    while clock() - t0 < seconds:
        x.sum()
        n += 1
    return n * nbytes / (clock() - t0) / 1e9


def in_rounds(fns: dict, rounds: int) -> dict:
    """{name: fn} -> {name: [seconds per round]}, each fn run once per round in turn after a warm-up."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


def medians(times: dict) -> dict:
    return {name: statistics.median(t) for name, t in times.items()}


def round_ratio(slow: list, fast: list) -> float:
    """Median over rounds of slow/fast: each round's two runs saw about the same load."""
    return statistics.median(s / f for s, f in zip(slow, fast))


def native_chars_at_batch_1(kernel: NativeLSTM, vocab_size: int, chars: int = CHARS):
    """The native kernel alone: `chars` characters sampled after a one-character prompt."""
    noise = gumbel_noise([1], chars, vocab_size)
    noise[:, :, 0] = float("-inf")
    one, hot = torch.ones(1), torch.ones(1, dtype=torch.bool)
    return lambda: kernel.generate([[1]], noise, one, hot, None, None, [], [chars], torch.get_num_threads())


def steps_at_batch_1(stepper: FastStepper, steps: int = CHARS):
    def run():
        state, ids = stepper.init_state(1), torch.tensor([5])
        with torch.inference_mode():
            for _ in range(steps):
                _, state = stepper(ids, state)
    return run


def sweep(model: CharRNN, batches: list[int], rounds: int) -> None:
    """One step of the torch step (fp32, int8) and of the native kernel (sampling included) per batch size."""
    steppers = {p: FastStepper(model, p) for p in ("fp32", "int8")}
    kernel = NativeLSTM(model) if native_kernel() == "vnni" and native_supports(model) else None
    names = [*steppers, *(["native"] if kernel else [])]
    print(f"{'batch':>6}" + "".join(f"  {p + ' us':>10}" for p in names)
          + "".join(f"  {p + ' chars/s':>15}" for p in names))
    for batch in batches:
        ids = torch.randint(1, 70, (batch,), generator=torch.Generator().manual_seed(batch))
        steps = max(4, 256 // batch)
        fns = {}
        for p, stepper in steppers.items():
            state = stepper.init_state(batch)

            def run(stepper=stepper, state=state):
                with torch.inference_mode():
                    for _ in range(steps):
                        stepper(ids, state)
            fns[p] = run
        if kernel:
            noise = gumbel_noise(list(range(batch)), steps, model.config.vocab_size)
            noise[:, :, 0] = float("-inf")
            one, hot = torch.ones(batch), torch.ones(batch, dtype=torch.bool)
            prompts = [[int(i)] for i in ids]
            # steps characters after a one-character prompt: steps + 1 steps, the first without sampling
            fns["native"] = lambda: kernel.generate(prompts, noise, one, hot, None, None, [], [steps] * batch,
                                                    torch.get_num_threads())
        t = medians(in_rounds(fns, rounds))
        t = {p: v / (steps + (p == "native")) for p, v in t.items()}
        print(f"{batch:>6}" + "".join(f"  {t[p] * 1e6:>10.1f}" for p in names)
              + "".join(f"  {batch / t[p]:>15,.0f}" for p in names), flush=True)


def models_to_bench(checkpoint: str | None, checkpoint_512: str | None):
    vocab = Vocab.from_text("".join(chr(c) for c in range(32, 107)))  # 76 symbols like KJV
    for path, hidden in ((checkpoint, 256), (checkpoint_512, 512)):
        if path:
            ckpt = load_checkpoint(path)
            c = ckpt.config
            yield f"{c.layers}x{c.hidden} KJV", f"{ckpt.path}", ckpt.build_model().eval(), ckpt.vocab
        else:
            torch.manual_seed(0)
            config = ModelConfig(len(vocab), hidden=hidden, embedding=0 if hidden == 256 else 64)
            yield f"2x{hidden} random", f"random weights, {config}", CharRNN(config).eval(), vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="the default 2x256 KJV model (run dir or file); random weights if absent")
    parser.add_argument("--checkpoint-512", help="a 2x512 KJV model; random weights (embedding 64) if absent")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--precisions", default="auto,fp32",
                        help="Generator precisions to time (auto is what the bot runs)")
    parser.add_argument("--kl-steps", type=int, default=2000)
    parser.add_argument("--sweep", help="comma-separated batch sizes: time fp32 and int8 steps instead")
    add_timing_args(parser)
    args = parser.parse_args()
    apply_timing_args(args)
    precisions = args.precisions.split(",")
    checkpoint = args.checkpoint or ("runs/kjv" if Path("runs/kjv/best.safetensors").exists() else None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.clock} clock, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    dram = statistics.median(read_bandwidth(1 << 29) for _ in range(3))
    cache = statistics.median(read_bandwidth(12 << 20) for _ in range(3))
    print(f"read bandwidth (tensor.sum): {dram:.1f} GB/s from memory (512 MiB), {cache:.1f} GB/s from cache (12 MiB)")
    if args.sweep:
        for label, source, model, _ in models_to_bench(checkpoint, args.checkpoint_512):
            print(f"\n{label}: {source}: one step, median of {args.rounds} rounds")
            sweep(model, [int(b) for b in args.sweep.split(",")], args.rounds)
        return

    rows, notes = [], []
    for label, source, model, vocab in models_to_bench(checkpoint, args.checkpoint_512):
        print(f"\n{label}: {source}", flush=True)
        gens = {p: Generator(model, vocab, precision=p) for p in precisions}
        prompt = PROMPTS[0]
        fns = {"oneDNN": lambda: baseline_complete(model, vocab, prompt, CHARS, 0.8, 1, onednn=True),
               "native": lambda: baseline_complete(model, vocab, prompt, CHARS, 0.8, 1, onednn=False)}
        for p, gen in gens.items():
            fns[p] = lambda gen=gen: gen.complete([prompt], max_chars=CHARS, temperature=0.8, seed=1)
        for p, gen in gens.items():
            native = gen.uses_native(1)
            paths = ["the native int8 kernel" if gen.uses_native(b) else "the torch step" for b in (1, args.concurrent)]
            print(f"  {p}: batch 1 on {paths[0]}, {args.concurrent} prompts on {paths[1]}")
            fns[f"{p} steps"] = (native_chars_at_batch_1(gen._native, len(vocab)) if native
                                 else steps_at_batch_1(gen._step))
        single_t = in_rounds(fns, args.rounds)
        single = medians(single_t)
        fair = "native" if single["native"] < single["oneDNN"] else "oneDNN"
        base = single[fair]
        for p in precisions:
            rows.append((f"{label}: one {CHARS}-char completion, s, {p}", single["oneDNN"], single["native"],
                         single[p], base / single[p], round_ratio(single_t[fair], single_t[p])))

        n = args.concurrent
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        temps = [(0.5, 0.8, 1.0)[i % 3] for i in range(n)]
        # The baseline serves them one by one: time the first 8 in sequence (every prompt once).
        sample = range(min(8, n))
        fns = {path: (lambda onednn=(path == "oneDNN"): [
                   baseline_complete(model, vocab, prompts[i], CHARS, temps[i], i, onednn=onednn) for i in sample])
               for path in ("oneDNN", "native")}
        for p, gen in gens.items():
            fns[p] = lambda gen=gen: gen.complete(prompts, max_chars=CHARS, temperature=temps, seed=3)
        many_t = in_rounds(fns, args.rounds)
        cps = {k: (len(sample) if k in ("oneDNN", "native") else n) * CHARS / t for k, t in medians(many_t).items()}
        fair = "native" if cps["native"] > cps["oneDNN"] else "oneDNN"
        for p in precisions:
            rows.append((f"{label}: {n} concurrent completions, chars/s, {p}", cps["oneDNN"], cps["native"],
                         cps[p], cps[p] / cps[fair], round_ratio(many_t[fair], many_t[p]) * n / len(sample)))

        base_bytes = baseline_weight_bytes(model)
        notes.append(f"{label}: batch-1 weights read per char: baseline {base_bytes / 1e6:.2f} MB at "
                     f"{base_bytes * CHARS / base / 1e9:.1f} GB/s (whole completion)")
        for p, gen in gens.items():
            per_step = single[f"{p} steps"] / CHARS
            native = gen.uses_native(1)
            nbytes = gen._native.nbytes if native else gen._step.weight_bytes(1)
            what = "native kernel, sampling included" if native else "torch steps alone"
            notes.append(f"  {p}: {nbytes / 1e6:.2f} MB per step, {per_step * 1e6:.0f} us per step, "
                         f"{nbytes / per_step / 1e9:.1f} GB/s ({what}); "
                         f"whole completion {single[p] / CHARS * 1e6:.0f} us per char")
        if args.kl_steps:
            for name, native in (("torch int8", False), ("native int8", True)):
                if native and not any(gen.uses_native(1) for gen in gens.values()):
                    continue
                mean, worst = distribution_gap(model, "int8", args.kl_steps, native=native)
                notes.append(f"  KL(fp32 || {name}) over {args.kl_steps} sampled steps: "
                             f"mean {mean:.2e}, max {worst:.2e} nats")

    print(f"\nread bandwidth: {dram:.1f} GB/s from memory, {cache:.1f} GB/s from cache; "
          f"load average {os.getloadavg()[0]:.1f} at end\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'configuration':<{width}}  {'base oneDNN':>11}  {'base native':>11}  {'rnnbot':>10}  {'ratio':>7}  "
          f"{'per round':>9}")
    for name, onednn, native, ours, ratio, per_round in rows:
        print(f"{name:<{width}}  {onednn:>11.4g}  {native:>11.4g}  {ours:>10.4g}  {ratio:>6.1f}x  {per_round:>8.1f}x")
    print("medians over rounds; ratio: against the faster baseline path's median; per round: the median of "
          "each round's ratio to that path")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
