"""prepare, train, sample, eval: corpus -> trainer -> checkpoint -> generator."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cli.options import add_config_args, build_config, env_options, given_options
from models.choices import DEVICE_HELP, GENERATION_PRECISIONS
from models.errors import RnnbotError
from trainer.config import TrainConfig

ENV_PREFIX = "RNNBOT_"
# What may change when a run is resumed; the rest would make it a different run.
RESUME_OVERRIDES = {"max_steps", "max_minutes", "stop_after", "eval_every", "log_every", "sample_chars",
                    "threads", "database_url", "device"}
STOP_WORDS = {"newline": "\n", "none": None}
DEFAULT_CHECKPOINT_HELP = ("run directory (its best checkpoint) or checkpoint file "
                           "(default: the trained run in runs/kjv, else the bundled KJV model)")
MAX_SAMPLES = 1024  # rnnbot sample --num: one batch
MAX_SAMPLE_CHARS = 100_000
DEVICE_FLAG_HELP = f"{DEVICE_HELP} (default: auto)"


def register(sub) -> None:
    p = sub.add_parser("prepare", help="load a corpus, print its size and vocabulary, optionally write it")
    p.add_argument("--corpus", default="kjv", help="kjv, python-src, or a UTF-8 text file, directory or glob")
    p.add_argument("--book-names", action="store_true", help="KJV: prefix verses with their book name")
    p.add_argument("--out", type=Path, help="write the prepared text here")
    p.set_defaults(handler=cmd_prepare)

    p = sub.add_parser("train", help="train a character-level RNN (or --resume a run, or --init-from a "
                                     "checkpoint to fine-tune it)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run exactly where it stopped")
    add_config_args(p, TrainConfig, ENV_PREFIX, "training options")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("sample", help="complete a prompt with a trained model")
    p.add_argument("--checkpoint", help=DEFAULT_CHECKPOINT_HELP)
    p.add_argument("--prime", default="", help="burn-in text the samples continue")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = argmax; higher = more random")
    p.add_argument("--length", type=int, default=280, help="characters to sample at most")
    p.add_argument("--num", type=int, default=1, help="how many samples (sampled as one batch)")
    p.add_argument("--top-k", type=int, help="sample only among the k likeliest characters")
    p.add_argument("--top-p", type=float, help="sample only within this probability mass")
    p.add_argument("--seed", type=int, help="random seed (sample i uses seed + i)")
    p.add_argument("--stop-at", default="none", help="'newline' ends each sample at a line end; or any string")
    p.add_argument("--device", default="auto", help=DEVICE_FLAG_HELP)
    p.add_argument("--precision", default="auto", choices=GENERATION_PRECISIONS,
                   help="weights the generation step runs on (auto: int8 where it is faster for the batch; "
                        "bf16 only on CPUs with native bf16)")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("eval", help="validation loss of a checkpoint on a corpus's validation split")
    p.add_argument("--checkpoint", help=DEFAULT_CHECKPOINT_HELP)
    p.add_argument("--corpus", help="corpus (default: the one it was trained on)")
    p.add_argument("--book-names", action="store_true", help="KJV: prefix verses with their book name")
    p.add_argument("--val-fraction", type=float, help="default: the fraction used in training")
    p.add_argument("--max-chars", type=int, help="evaluate only the first N characters of the validation split")
    p.add_argument("--device", default="auto", help=DEVICE_FLAG_HELP)
    p.set_defaults(handler=cmd_eval)


def checkpoint_or_default(checkpoint: str | None) -> str:
    """--checkpoint, else a trained run in runs/kjv, else the bundled model (said on stderr)."""
    if checkpoint:
        return checkpoint
    from models.bundled import default_model

    path, where = default_model()
    print(f"rnnbot: no --checkpoint: using {where}", file=sys.stderr)
    return str(path)


def chosen_device(spec: str):
    """--device resolved: a one-line error when this machine lacks it."""
    from models.device import resolve_device

    return resolve_device(spec)


def announce_device(device) -> None:
    """Say on stderr where the work runs (once the model has loaded: errors come first, alone)."""
    from models.device import describe

    print(f"rnnbot: running on {describe(device)}", file=sys.stderr)


def cmd_prepare(args: argparse.Namespace) -> int:
    from models.vocab import Vocab
    from trainer.corpora import load_corpus

    corpus = load_corpus(args.corpus, args.book_names)
    vocab = Vocab.from_text(corpus.text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(corpus.text, encoding="utf-8")
    # The README's tour shows these two lines; a test keeps them the same.
    print(f"{corpus.name}: {len(corpus.text):,} characters, {corpus.text.count(chr(10)):,} lines, "
          f"{len(vocab) - 1} distinct characters (+1 unknown symbol)")
    print("vocabulary: " + "".join(vocab.chars[1:]).encode("unicode_escape").decode("ascii"))
    if args.out:
        print(f"written to {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.train import Trainer

    if args.resume:
        changes = {**env_options(TrainConfig, ENV_PREFIX), **given_options(args, TrainConfig)}
        changes.pop("run_dir", None)
        refused = sorted(set(given_options(args, TrainConfig)) - RESUME_OVERRIDES - {"run_dir"})
        if refused:
            raise RnnbotError("cannot change " + ", ".join("--" + r.replace("_", "-") for r in refused)
                              + " when resuming (it would be a different run)")
        trainer = Trainer.resume(args.resume, **{k: v for k, v in changes.items() if k in RESUME_OVERRIDES})
    else:
        cfg = build_config(TrainConfig, args, ENV_PREFIX)
        if not cfg.max_steps and not cfg.max_minutes:
            cfg = cfg.with_changes(max_minutes=5.0)
        explicit = {*env_options(TrainConfig, ENV_PREFIX), *given_options(args, TrainConfig)}
        trainer = Trainer.start(cfg, explicit)
    if trainer.cfg.database_url and trainer.dist.is_main:
        from db.session import safe_url

        print(f"database: {safe_url(trainer.cfg.database_url)}", flush=True)
    result = trainer.run()
    if result.step == 0 and result.status == "finished":  # the budget ran out first: no model to keep
        raise RnnbotError(" ".join(result.notes) or "no training steps")
    val = ("-" if result.val_loss is None
           else f"{result.val_loss:.4f} nats/char ({result.val_loss / math.log(2):.4f} bits/char)")
    if trainer.dist.is_main:  # under torchrun, one summary line (rank 0 evaluated and wrote the files)
        print(f"{result.status} at step {result.step} after {result.elapsed_s:.0f}s; val {val}; "
              f"checkpoints in {trainer.files.root}")
        for note in result.notes:
            print(note)
    return 0 if result.status != "interrupted" else 130


def cmd_sample(args: argparse.Namespace) -> int:
    from models.generator import Generator
    from models.sampling import check_sampling_args

    if not 1 <= args.num <= MAX_SAMPLES:
        raise RnnbotError(f"--num must be from 1 to {MAX_SAMPLES}, got {args.num}")
    if args.length > MAX_SAMPLE_CHARS:  # the sampling noise alone takes length x vocabulary floats per sample
        raise RnnbotError(f"--length must be at most {MAX_SAMPLE_CHARS:,}, got {args.length:,}")
    check_sampling_args([args.temperature], [args.length], args.top_k, args.top_p)
    stop = STOP_WORDS.get(args.stop_at, args.stop_at)
    device = chosen_device(args.device)
    generator = Generator.load(checkpoint_or_default(args.checkpoint), args.precision, device)
    announce_device(device)
    completions = generator.complete([args.prime] * args.num, max_chars=args.length, temperature=args.temperature,
                                     top_k=args.top_k, top_p=args.top_p, seed=args.seed, stop_at=stop)
    if completions[0].unknown_chars:
        shown = ", ".join(repr(c) for c in completions[0].unknown_chars)
        print(f"rnnbot: warning: the model has never seen {shown}; treated as unknown", file=sys.stderr)
    multiline = any("\n" in args.prime + c.text for c in completions)
    for i, c in enumerate(completions):
        if i and multiline:
            print()
        print(args.prime + c.text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from models.checkpoint import load_checkpoint
    from trainer.corpora import load_corpus
    from trainer.data import encode
    from trainer.evaluate import bits, estimate_loss
    from trainer.progress import TaskProgress

    if args.max_chars is not None and args.max_chars < 2:
        raise RnnbotError(f"--max-chars must be at least 2, got {args.max_chars}")
    device = chosen_device(args.device)
    ckpt = load_checkpoint(checkpoint_or_default(args.checkpoint))
    corpus_name = args.corpus or ckpt.corpus
    if not corpus_name:
        raise RnnbotError("this checkpoint does not name its corpus: pass --corpus")
    announce_device(device)
    corpus = load_corpus(corpus_name, args.book_names)
    fraction = args.val_fraction or ckpt.extra.get("val_fraction", 0.1)
    _, val_text = corpus.split(fraction)
    scope = f"last {fraction:g}"
    if args.max_chars is not None and args.max_chars < len(val_text):
        val_text, scope = val_text[: args.max_chars], f"first {args.max_chars:,} chars of the last {fraction:g}"
    unknown = ckpt.vocab.unknown_chars(val_text)
    if unknown:
        print(f"rnnbot: warning: {len(unknown)} validation characters are outside the model's vocabulary",
              file=sys.stderr)
    ids = encode(ckpt.vocab, val_text)
    with TaskProgress(len(ids) - 1, "evaluating", "chars") as progress:
        nats = estimate_loss(ckpt.build_model().to(device), ids, on_progress=progress.update)
    print(f"{ckpt.path} on {corpus.name} validation ({len(val_text):,} chars, {scope}): "
          f"{nats:.4f} nats/char, {bits(nats):.4f} bits/char")
    return 0
