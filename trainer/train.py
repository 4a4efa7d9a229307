"""The training loop: truncated BPTT over parallel streams, AdamW, warm-up + decay, evaluation on
the whole validation split, samples and checkpoints at every evaluation, and exact resume."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.checkpoint import Checkpoint, atomic_write_text, load_resume_state, save_checkpoint, save_resume_state
from models.device import describe, resolve_device
from models.errors import RnnbotError
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.precision import resolve_precision
from models.vocab import Vocab
from trainer import distributed, finetune
from trainer.artifacts import RunFiles
from trainer.busy import MIN_TRAIN_S, SpeedHistory, config_key, cpu_hogs, cpu_snapshot, slow_run_note
from trainer.config import TrainConfig
from trainer.corpora import Corpus, load_corpus
from trainer.data import encode
from trainer.evaluate import bits, estimate_loss
from trainer.limits import check_memory, check_run_dir
from trainer.progress import TrainingLines, no_steps_note, plain_lines_wanted

log = logging.getLogger(__name__)

SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
RESUME_FORMAT = "rnnbot-resume"


def autocast_for(precision: str, device_type: str = "cpu"):
    if precision in ("bf16", "fp16"):
        return partial(torch.autocast, device_type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext


def get_lr(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine (or step) decay to lr * min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    floor = cfg.lr * cfg.min_lr_ratio
    p = min(1.0, max(0.0, progress))
    if cfg.schedule == "cosine":
        return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    return max(floor, cfg.lr * (1.0 if p < 0.6 else 0.3 if p < 0.85 else 0.09))


@dataclass
class TrainResult:
    step: int
    val_loss: float | None
    best_val_loss: float | None
    elapsed_s: float
    status: str  # finished | paused | interrupted
    notes: list[str] = field(default_factory=list)  # what the user should know about how it went


def corpus_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def start_context(train_text: str, max_chars: int = 300) -> str:
    """Whole lines from the end of the training text. Samples with an empty prompt are burned in on
    them, so they start from a state the model knows (a line start in running text), not from zeros."""
    tail = train_text[-max_chars:]
    first, last = tail.find("\n"), tail.rfind("\n")
    return tail[first + 1 : last + 1] if 0 <= first < last else "\n"


class Trainer:
    def __init__(self, cfg: TrainConfig, corpus: Corpus, vocab: Vocab | None = None):
        self.cfg = cfg
        self.corpus = corpus
        self.files = RunFiles(cfg.run_dir)
        self.device = distributed.rank_device(resolve_device(cfg.device))
        self.precision = resolve_precision(cfg.precision, self.device)
        self.autocast = autocast_for(self.precision, self.device.type)
        # fp16 (GPUs without bf16) needs its loss scaled so small gradients survive; off otherwise.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        train_text, val_text = corpus.split(cfg.val_fraction)
        self.vocab = vocab or Vocab.from_text(corpus.text)
        self.train_ids = encode(self.vocab, train_text)
        self.val_ids = encode(self.vocab, val_text)
        self.start_context = start_context(train_text)
        torch.manual_seed(cfg.seed)
        self.model_config = ModelConfig(len(self.vocab), cfg.cell, cfg.layers, cfg.hidden, cfg.embedding, cfg.dropout)
        check_memory(cfg, len(self.vocab))  # before the model is allocated
        self.model = CharRNN(self.model_config).to(self.device)  # initialised on the CPU: same weights anywhere
        matrices = [p for p in self.model.parameters() if p.dim() >= 2]
        vectors = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": matrices, "weight_decay": cfg.weight_decay}, {"params": vectors, "weight_decay": 0.0}],
            lr=cfg.lr, betas=(0.9, 0.99),
        )
        self.dist = distributed.from_env(cfg.seed, self.device)  # under torchrun: this rank; else a no-op
        self.batcher = self.dist.batcher(self.train_ids, cfg.batch_size, cfg.seq_len)
        self.ddp_model = self.dist.wrap(self.model)  # train_step's forward (DDP averages the gradients)
        self.step, self.elapsed, self.best_val = 0, 0.0, math.inf
        self.last_val: float | None = None
        self.hidden = None  # carried between batches
        self.observers: list = []  # objects with on_eval(trainer, metrics, samples) / on_end(trainer, result)
        self.bar, self.lines = None, None  # a run's progress bar and, where no bar is seen, its progress lines
        self._stop_requested = False

    # ----- construction -----
    @classmethod
    def start(cls, cfg: TrainConfig, explicit: set[str] = frozenset()) -> Trainer:
        """A new run; with cfg.init_from, fine-tuning (trainer/finetune.py). `explicit`: the options
        the user gave, which must not contradict the checkpoint's architecture."""
        check_run_dir(cfg.run_dir)
        if RunFiles(cfg.run_dir).resume.exists():
            raise RnnbotError(f"{cfg.run_dir} already holds a run: continue it with "
                              f"`rnnbot train --resume {cfg.run_dir}` or choose another --run-dir")
        init = None
        if cfg.init_from:
            cfg, init = finetune.initial_checkpoint(cfg, explicit)
        corpus = load_corpus(cfg.corpus, cfg.book_names)
        trainer = cls(cfg, corpus, init.vocab if init else None)
        if init is not None:
            trainer.model.load_state_dict(init.state_dict)
            finetune.report_unknown(finetune.unknown_characters(init.vocab, corpus.text), str(init.path),
                                    corpus.name)
            log.info("fine-tuning from %s (step %d, trained on %s)", init.path, init.step, init.corpus or "?")
        try:
            trainer.files.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RnnbotError(f"--run-dir {cfg.run_dir} cannot be written: {exc.strerror or exc}") from None
        for path in (trainer.files.metrics, trainer.files.samples, trainer.files.samples_md):
            path.unlink(missing_ok=True)
        atomic_write_text(trainer.files.config, json.dumps(cfg.to_dict(), indent=2) + "\n")
        return trainer

    @classmethod
    def resume(cls, run_dir: str, **overrides) -> Trainer:
        files = RunFiles(run_dir)
        state = load_resume_state(files.resume, resolve_device(overrides.get("device") or "auto"))
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise RnnbotError(f"{files.resume}: not an rnnbot resume file")
        missing = sorted({"config", "corpus_sha256", "vocab", "model", "optimizer", "data", "step", "elapsed_s",
                          "best_val", "hidden", "rng"} - set(state))
        if missing or not isinstance(state["config"], dict):
            raise RnnbotError(f"{files.resume}: corrupt resume state (missing {', '.join(missing) or 'config'})")
        cfg = TrainConfig.from_dict({**state["config"], "run_dir": str(run_dir)})
        cfg = cfg.with_changes(**{k: v for k, v in overrides.items() if v is not None})
        corpus = load_corpus(cfg.corpus, cfg.book_names)
        if corpus_digest(corpus.text) != state["corpus_sha256"]:
            raise RnnbotError(f"corpus {cfg.corpus!r} has changed since this run started; "
                              "resuming would read different data")
        trainer = cls(cfg, corpus, Vocab.from_list(state["vocab"]))
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.batcher.load_state_dict(state["data"])
        trainer.step, trainer.elapsed = int(state["step"]), float(state["elapsed_s"])
        trainer.best_val = float(state["best_val"])
        trainer.last_val = state.get("last_val")
        trainer.hidden = tuple(h.to(trainer.device) for h in state["hidden"]) if state["hidden"] is not None else None
        torch.set_rng_state(state["rng"].cpu())
        if trainer.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), trainer.device)
        if state.get("scaler"):
            trainer.scaler.load_state_dict(state["scaler"])
        trainer.files.truncate_after(trainer.step)
        atomic_write_text(files.config, json.dumps(cfg.to_dict(), indent=2) + "\n")
        return trainer

    # ----- the loop -----
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if self.device.type == "cuda":  # batches come from pinned memory, copied while the GPU works
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        if self.hidden is None:
            self.hidden = self.model.init_state(x.shape[0])
        with self.autocast():
            logits, hidden = self.ddp_model(x, self.hidden)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.hidden = tuple(h.detach() for h in hidden)
        return loss.item()  # waits for the GPU: the step's time is counted where it is measured

    def progress(self, elapsed: float) -> float:
        cfg = self.cfg
        parts = []
        if cfg.max_steps:
            parts.append(self.step / cfg.max_steps)
        if cfg.max_minutes:
            parts.append(elapsed / (cfg.max_minutes * 60))
        return max(parts) if parts else 0.0

    def run(self) -> TrainResult:
        cfg = self.cfg
        if not cfg.max_steps and not cfg.max_minutes:
            raise RnnbotError("say how long to train: --max-steps N or --max-minutes M")
        if cfg.database_url and self.dist.is_main:
            from db.training import TrainingRecorder  # only runs that are asked to record need the db

            TrainingRecorder.attach(self)  # keeps a recorder attached before run(), if any
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        chars_per_step = cfg.batch_size * cfg.seq_len
        start_step = self.step
        clock0 = time.perf_counter() - self.elapsed
        eval_reserve = None  # seconds the final evaluation will take, measured at each evaluation
        status, evaluated_at, budget_stop = "finished", None, None
        eval_s, started, cpu_before = 0.0, time.perf_counter(), cpu_snapshot() if self.dist.world_size == 1 else {}
        recent, last_log_t, last_log_step, cps = [], time.perf_counter(), self.step, 0.0
        log.info("training %s %dx%d on %s (%d train / %d val chars, vocab %d, %s on %s, %d params)",
                 cfg.cell, cfg.layers, cfg.hidden, self.corpus.name, len(self.train_ids), len(self.val_ids),
                 len(self.vocab), self.precision, describe(self.device),
                 sum(p.numel() for p in self.model.parameters()))
        self.bar = bar = tqdm(total=cfg.max_steps or int(budget),
                              initial=self.step if cfg.max_steps else int(self.elapsed),
                              unit="step" if cfg.max_steps else "s", dynamic_ncols=True, leave=True,
                              disable=None if self.dist.is_main else True)
        if self.dist.is_main and plain_lines_wanted():
            self.lines = TrainingLines(cfg.max_steps, budget, chars_per_step)
        self.model.train()
        with self._signals_request_stop():
            while True:
                elapsed = time.perf_counter() - clock0
                if cfg.max_steps and self.step >= cfg.max_steps:
                    break
                if budget is not None:
                    reserve = eval_reserve if eval_reserve is not None else len(self.val_ids) / max(3 * cps, 1e4)
                    if self.dist.any(elapsed + reserve >= budget):  # ranks stop together
                        budget_stop = (elapsed, reserve)
                        break
                if self.dist.any(self._stop_requested) or (cfg.stop_after and self.step - start_step >= cfg.stop_after):
                    status = "interrupted" if self._stop_requested else "paused"
                    break
                lr = get_lr(cfg, self.step, self.progress(elapsed))
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x, y, new_epoch = self.batcher.next()
                if new_epoch:
                    self.hidden = None
                recent.append(self.train_step(x, y))
                self.step += 1
                if self.lines is not None:
                    self.lines.step(self.step, recent[-1], time.perf_counter() - clock0)
                if self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    cps = (self.step - last_log_step) * chars_per_step / (now - last_log_t)
                    if self.dist.is_main:
                        self.files.append_jsonl(self.files.metrics, {
                            "kind": "train", "step": self.step, "elapsed_s": round(now - clock0, 3), "lr": lr,
                            "loss": sum(recent) / len(recent), "chars_per_s": round(cps, 1),
                            "epoch": self.batcher.epoch})
                    bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}",
                                    val_bpc="-" if self.last_val is None else f"{bits(self.last_val):.3f}",
                                    chars_s=f"{cps:,.0f}", refresh=False)
                    recent, last_log_t, last_log_step = [], now, self.step
                if cfg.max_steps:
                    bar.update(1)
                else:
                    bar.update(int(time.perf_counter() - clock0) - bar.n)
                if self.step % cfg.eval_every == 0:
                    t0 = time.perf_counter()
                    self.evaluate_and_save(time.perf_counter() - clock0)
                    evaluated_at, eval_reserve = self.step, time.perf_counter() - t0
                    last_log_t += eval_reserve  # chars/s counts training time only
                    eval_s += eval_reserve
                    if self.lines is not None:
                        self.lines.paused(eval_reserve)
        self.elapsed = time.perf_counter() - clock0
        notes = []
        if self.dist.is_main:
            wall_s = time.perf_counter() - started
            notes.append(self.speed_note(self.step - start_step, wall_s - eval_s, wall_s, cpu_before))
        if budget_stop is not None and self.step == start_step:
            notes.insert(0, no_steps_note(cfg.max_minutes, *budget_stop, len(self.val_ids), resumed=self.step > 0))
        if status == "finished":
            # Nothing trained: an untrained "best" checkpoint would pass for a model (make run would serve it).
            if evaluated_at != self.step and self.step > 0:
                self.evaluate_and_save(self.elapsed)
                self.elapsed = time.perf_counter() - clock0
        else:
            self.save(is_best=False)
            log.info("%s at step %d; continue with: rnnbot train --resume %s", status, self.step, cfg.run_dir)
        bar.close()
        self.bar = self.lines = None
        result = TrainResult(self.step, self.last_val, None if math.isinf(self.best_val) else self.best_val,
                             self.elapsed, status, [n for n in notes if n])
        for obs in self.observers:
            obs.on_end(self, result)
        # Free DDP's reducer while the process group lives: if the group's last owner is the
        # reducer, its teardown at exit joins gloo threads that wait for the GIL (a hang).
        self.ddp_model = self.model
        self.dist.close()
        return result

    def speed_note(self, steps: int, train_s: float, wall_s: float, cpu_before: dict) -> str | None:
        """Compare this run's steps/s with earlier runs of its configuration (and remember it); a
        note naming the processes that shared the CPU when it was far slower than usual."""
        if steps < 1 or train_s < MIN_TRAIN_S:
            return None
        threads = torch.get_num_threads()
        key = config_key(self.cfg, self.precision, threads)
        history = SpeedHistory.beside(self.cfg.run_dir)
        typical = history.typical(key)
        history.record(key, steps / train_s)
        hogs = cpu_hogs(cpu_before, cpu_snapshot(), wall_s, exclude={os.getpid()}) if cpu_before else []
        return slow_run_note(steps / train_s, typical, hogs, threads)

    # ----- evaluation, samples, checkpoints -----
    def samples(self) -> list[tuple[float, str]]:
        self.model.eval()
        generator = Generator(self.model, self.vocab, start_context=self.start_context)
        texts = generator.complete([""] * len(SAMPLE_TEMPERATURES), max_chars=self.cfg.sample_chars,
                                   temperature=list(SAMPLE_TEMPERATURES), seed=self.cfg.seed + self.step)
        self.model.train()
        return [(t, c.text) for t, c in zip(SAMPLE_TEMPERATURES, texts)]

    def evaluate_and_save(self, elapsed: float) -> None:
        if not self.dist.is_main:  # rank 0 evaluates and writes; the others wait for its checkpoint
            return self.dist.barrier()
        if self.bar is not None:  # the bar stands still meanwhile: say why
            self.bar.set_description_str("evaluating…", refresh=True)
        if self.lines is not None:
            self.lines.evaluating(self.step, len(self.val_ids) - 1)
        val = estimate_loss(self.model, self.val_ids, autocast=self.autocast)
        if self.bar is not None:
            self.bar.set_description_str("", refresh=False)
        self.last_val = val
        is_best = val < self.best_val
        self.best_val = min(self.best_val, val)
        metrics = {"kind": "eval", "step": self.step, "elapsed_s": round(elapsed, 3),
                   "val_loss": val, "val_bpc": bits(val), "epoch": self.batcher.epoch}
        self.files.append_jsonl(self.files.metrics, metrics)
        samples = self.samples()
        self.files.record_samples(self.step, val, samples)
        log.info("step %d: val %.4f nats/char (%.4f bits/char)%s", self.step, val, bits(val),
                 " new best" if is_best else "")
        self.elapsed = elapsed
        self.save(is_best)
        self.files.plot_loss()
        for obs in self.observers:
            obs.on_eval(self, metrics, samples)

    def checkpoint(self) -> Checkpoint:
        metrics = {"val_loss": self.last_val, "val_bpc": None if self.last_val is None else bits(self.last_val),
                   "best_val_loss": None if math.isinf(self.best_val) else self.best_val,
                   "elapsed_s": round(self.elapsed, 3),
                   "chars_seen": self.step * self.cfg.batch_size * self.cfg.seq_len}
        extra = {"train_config": self.cfg.to_dict(), "val_fraction": self.cfg.val_fraction,
                 "precision": self.precision, "start_context": self.start_context}
        return Checkpoint(self.model_config, self.vocab, self.model.state_dict(), self.corpus.name,
                          self.step, metrics, extra)

    def save(self, is_best: bool) -> None:
        if not self.dist.is_main:
            return self.dist.barrier()
        ckpt = self.checkpoint()
        if is_best:  # best first: a crash before `last` lands leaves a consistent older resume point
            save_checkpoint(ckpt, self.files.checkpoint("best"))
        save_resume_state({
            "format": RESUME_FORMAT, "step": self.step, "elapsed_s": self.elapsed, "best_val": self.best_val,
            "last_val": self.last_val, "config": self.cfg.to_dict(), "vocab": self.vocab.to_list(),
            "corpus_sha256": corpus_digest(self.corpus.text), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "data": self.batcher.state_dict(), "hidden": list(self.hidden) if self.hidden is not None else None,
        }, self.files.resume)
        save_checkpoint(ckpt, self.files.checkpoint("last"))
        self.dist.barrier()  # no rank goes on (or exits) before the checkpoint is complete

    @contextlib.contextmanager
    def _signals_request_stop(self):
        """Ctrl-C / SIGTERM finish the current step, then save and stop; a second Ctrl-C aborts."""
        def request(signum, frame):
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_requested = True

        try:
            previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
