"""Measure a trained KJV run and package it as rnnbot's bundled model, with its model card.

    python bench/model_card.py RUN_DIR [--posts 200] [--install]

Measures, on this machine: `rnnbot eval` over the full validation tail and over its first
SLICE_CHARS characters (the tests re-check the slice), samples at T = 0.5 / 0.8 / 1.0, and the
quality of scheduled posts under the default POST_* settings (the candidate filter, K = 16 per
round, until --posts candidates are accepted). Prints the figures as JSON. With --install it
also copies the run's best checkpoint into models/weights/kjv/ with the figures in its metadata
(`extra.model_card`, in the safetensors header and the .json sidecar) and the loss curve to
docs/img/model-card-loss.png; docs/model-card.md presents them.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.scheduler.candidates import VERSE, WORD, CorpusIndex, check_candidate, normalise  # noqa: E402
from bot.settings import Settings  # noqa: E402
from models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from models.generator import Generator  # noqa: E402
from trainer.corpora import load_corpus  # noqa: E402
from trainer.data import encode  # noqa: E402
from trainer.evaluate import bits, estimate_loss  # noqa: E402

SLICE_CHARS = 20_000
TEMPERATURES = (0.5, 0.8, 1.0)
WEIGHTS = ROOT / "models" / "weights" / "kjv"


def evaluate(ckpt, val_text: str) -> dict:
    model = ckpt.build_model()
    full = estimate_loss(model, encode(ckpt.vocab, val_text))
    part = estimate_loss(model, encode(ckpt.vocab, val_text[:SLICE_CHARS]))
    return {"eval": {"nats_per_char": round(full, 4), "bits_per_char": round(bits(full), 4), "chars": len(val_text)},
            "eval_slice": {"nats_per_char": round(part, 6), "chars": SLICE_CHARS}}


def post_quality(generator: Generator, corpus: CorpusIndex, settings: Settings, wanted: int,
                 max_samples: int) -> dict:
    """The candidate filter as the scheduler runs it, over rounds of POST_CANDIDATES samples, until
    `wanted` are accepted (or `max_samples` drawn: a weak model may rarely pass)."""
    rules = dict(min_chars=settings.post_min_chars, max_chars=settings.post_max_chars, corpus=corpus)
    k, t0, rounds = settings.post_candidates, time.perf_counter(), 0
    samples = accepted = verse_lines = copied = accepted_copied = 0
    accepted_words = known_accepted = 0
    unfiltered_words = known_unfiltered = 0  # over candidates that pass every check but the word check
    seen: set[str] = set()
    examples = []
    while accepted < wanted and samples < max_samples:
        rounds += 1
        print(f"post quality: round {rounds}, {accepted} of {samples} samples accepted", file=sys.stderr)
        found = generator.complete([""] * k, max_chars=settings.post_max_chars + 1,
                                   temperature=settings.post_temperature, stop_at="\n")
        for c in found:
            samples += 1
            text, finished = c.text.strip(), c.finish_reason == "stop"
            verse_lines += bool(finished and VERSE.match(text))
            copied += bool(VERSE.match(text) and corpus.copied_words(VERSE.match(text).group(3)))
            loose = check_candidate(text, **rules, posted_before=seen, finished=finished, max_unknown_words=-1)
            if loose.ok:  # every check but the word check: what the filter would see
                unfiltered_words, known_unfiltered = tally(corpus, text, unfiltered_words, known_unfiltered)
            verdict = check_candidate(text, **rules, posted_before=seen, finished=finished,
                                      max_unknown_words=settings.post_max_unknown_words)
            if verdict.ok:
                accepted += 1
                seen.add(normalise(text))
                accepted_words, known_accepted = tally(corpus, text, accepted_words, known_accepted)
                accepted_copied += bool(corpus.copied_words(VERSE.match(text).group(3)))
                if len(examples) < 8:
                    examples.append(text)
    elapsed = time.perf_counter() - t0
    return {"samples": samples, "accepted": accepted, "rounds": rounds,
            "acceptance_rate": round(accepted / samples, 3),
            "seconds_per_accepted_post": round(elapsed / accepted, 3) if accepted else None,
            "complete_verse_line_share": round(verse_lines / samples, 3),
            "known_word_share_filter_on": round(known_accepted / max(accepted_words, 1), 4),
            "known_word_share_filter_off": round(known_unfiltered / max(unfiltered_words, 1), 4),
            "samples_copying_8_words": copied, "accepted_copying_8_words": accepted_copied,
            "examples": examples}


def tally(corpus: CorpusIndex, line: str, words: int, known: int) -> tuple[int, int]:
    """Add the line's words, and those of them the corpus has, to the running counts."""
    found = WORD.findall(VERSE.match(line).group(3).lower())
    return words + len(found), known + sum(w in corpus.lexicon.words for w in found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--posts", type=int, default=200, help="accepted candidates to measure post quality over")
    parser.add_argument("--max-samples", type=int, default=4000, help="give up after this many samples")
    parser.add_argument("--install", action="store_true", help="copy into models/weights/kjv and write the card")
    parser.add_argument("--resumed", action="store_true", help="the run was continued with --resume")
    args = parser.parse_args()
    torch.manual_seed(0)
    ckpt = load_checkpoint(args.run_dir)
    corpus_text = load_corpus(ckpt.corpus).text
    _, val_text = load_corpus(ckpt.corpus).split(ckpt.extra.get("val_fraction", 0.1))
    print("evaluating on the validation tail", file=sys.stderr)
    figures = evaluate(ckpt, val_text)
    generator = Generator(ckpt.build_model().eval(), ckpt.vocab, ckpt, precision="auto")  # as served
    figures["samples"] = {str(t): c.text for t, c in zip(TEMPERATURES, generator.complete(
        [""] * 3, max_chars=280, temperature=list(TEMPERATURES), seed=1, stop_at="\n"))}
    figures["posts"] = post_quality(generator, CorpusIndex(corpus_text), Settings(_env_file=None), args.posts,
                                     args.max_samples)
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.install:
        install(args.run_dir, ckpt, figures, args.resumed)
    return 0


def install(run_dir: Path, ckpt, figures: dict, resumed: bool) -> None:
    cfg = ckpt.extra.get("train_config", {})
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    card = {"command": training_command(cfg),
            **({"resumed_with": f"rnnbot train --resume {run_dir.name}"} if resumed else {}),
            "hardware": hardware(), "steps": ckpt.step, "chars_seen": ckpt.metrics.get("chars_seen"),
            "wall_time_s": ckpt.metrics.get("elapsed_s"), **figures,
            "loss_curve": "docs/img/model-card-loss.png",
            "validation_curve": [(m["step"], round(m["val_loss"], 4)) for m in metrics if m["kind"] == "eval"]}
    ckpt.extra = {**ckpt.extra, "model_card": card}
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    save_checkpoint(ckpt, WEIGHTS / "best.safetensors")
    shutil.copyfile(run_dir / "loss.png", ROOT / "docs" / "img" / "model-card-loss.png")
    print(f"installed {WEIGHTS / 'best.safetensors'} ({(WEIGHTS / 'best.safetensors').stat().st_size:,} bytes)")


def training_command(cfg: dict) -> str:
    flags = ["corpus", "layers", "hidden", "embedding", "dropout", "seq_len", "batch_size", "lr", "warmup_steps",
             "max_steps", "max_minutes", "eval_every", "seed"]
    return "rnnbot train " + " ".join(f"--{f.replace('_', '-')} {cfg[f]}" for f in flags if cfg.get(f) is not None) \
        + f" --run-dir {Path(cfg.get('run_dir', 'runs/kjv')).name}"


def hardware() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (f"{cores} vCPUs of an {cpu} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


if __name__ == "__main__":
    sys.exit(main())
