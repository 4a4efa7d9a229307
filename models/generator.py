"""Generator: loads a checkpoint once, then completes batches of prompts.

Each prompt is burned in (its characters update the hidden state, all prompts in one packed
pass), then characters are sampled one at a time, feeding each back while carrying the state;
the prefix is never re-run. Rows that finish leave the batch, so the rest step faster.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.checkpoint import Checkpoint, load_checkpoint
from models.fast_step import FastStepper
from models.model import CharRNN, State
from models.native_lstm import NativeLSTM, native_kernel, native_supports
from models.precision import NATIVE_MAX_BATCH
from models.sampling import check_sampling_args, gumbel_noise, sample_next
from models.vocab import Vocab


@dataclass
class Completion:
    prompt: str
    text: str  # the sampled continuation, without the prompt and without the stop string
    finish_reason: str  # "stop" (hit a stop string) or "length" (max_chars reached)
    unknown_chars: list[str] = field(default_factory=list)  # prompt chars the model has never seen


def per_prompt(value, n: int, what: str) -> list:
    values = [value] * n if isinstance(value, (int, float)) else list(value)
    if len(values) != n:
        raise ValueError(f"{len(values)} {what} for {n} prompts")
    return values


class Generator:
    def __init__(self, model: CharRNN, vocab: Vocab, checkpoint: Checkpoint | None = None,
                 precision: str = "fp32", start_context: str | None = None,
                 device: torch.device | str | None = None):
        """Sample from `model` (call model.eval() first). Weights are copied into the fast stepper,
        so a model that keeps training needs a new Generator to sample its new weights.

        `precision` (models/precision.py GENERATION_PRECISIONS): fp32, bf16, int8, or auto (int8
        weights where they are faster for the batch in hand). The same seed gives the same text
        on the same precision and device; int8 and fp32 texts may part after a while.
        `device`: where to sample (default: the model's own); the model is moved there.

        int8 and auto on a CPU with AVX-512 VNNI: an LSTM's completions of up to NATIVE_MAX_BATCH
        prompts run in the native kernel (models/native_lstm.py), the whole completion in one call,
        unless a stop string is longer than one character; the rest take the torch step."""
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.vocab = vocab
        self.checkpoint = checkpoint
        native = (precision in ("auto", "int8") and self.device.type == "cpu" and native_kernel() == "vnni"
                  and native_supports(model))
        self._native = NativeLSTM(model, "vnni") if native else None
        # With the native kernel, auto's torch step (batches above NATIVE_MAX_BATCH, long stop
        # strings) keeps fp32 weights only: fbgemm's int8 copies would cost memory for batches the
        # bot never makes.
        self._step = FastStepper(model, "fp32" if native and precision == "auto" else precision, self.device)
        # An empty prompt is burned in on this: a few whole lines of training text saved in the
        # checkpoint (so the state is one the model knows at a line start), else a bare newline.
        if start_context is None and checkpoint is not None:
            start_context = checkpoint.extra.get("start_context")
        self.start_context = start_context or "\n"
        self._start_ids = vocab.encode(self.start_context)

    @classmethod
    def load(cls, path: str | Path, precision: str = "fp32", device: torch.device | str = "cpu") -> Generator:
        checkpoint = load_checkpoint(path)
        return cls(checkpoint.build_model(), checkpoint.vocab, checkpoint, precision, device=device)

    @property
    def name(self) -> str:
        path = self.checkpoint.path if self.checkpoint else None
        return str(path) if path else "in-memory"

    def _burn_in(self, prompt_ids: list[list[int]]) -> tuple[torch.Tensor, State]:
        """Run every prompt from a zero state: logits after each prompt's last char, and states."""
        lengths = torch.tensor([len(p) for p in prompt_ids])
        padded = torch.zeros(len(prompt_ids), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            padded[row, : len(ids)] = torch.tensor(ids)
        logits, state = self.model.run_packed(padded.to(self.device), lengths)
        return logits, tuple(s.contiguous() for s in state)

    @torch.inference_mode()
    def complete(
        self,
        prompts: Sequence[str],
        max_chars: int | Sequence[int] = 280,
        temperature: float | Sequence[float] = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | Sequence[int] | None = None,
        stop_at: str | Sequence[str] | None = None,
    ) -> list[Completion]:
        """Complete every prompt; row i draws from seed + i (or seed[i] when given one per prompt;
        random when None).

        `max_chars` and `temperature` are one value or one per prompt; temperature 0 means argmax.
        `stop_at` is a string or strings that end a completion (e.g. "\\n" for one verse).
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not one string")
        prompts = list(prompts)
        if not prompts:
            return []
        n = len(prompts)
        temps = per_prompt(temperature, n, "temperatures")
        limits = per_prompt(max_chars, n, "lengths")
        check_sampling_args(temps, limits, top_k, top_p)
        if seed is None:
            seed = secrets.randbits(62)
        seeds = [seed + i for i in range(n)] if isinstance(seed, int) else per_prompt(seed, n, "seeds")
        stops = _Stops(self.vocab, stop_at, self.device)
        prompt_ids = [self.vocab.encode(p) if p else self._start_ids for p in prompts]
        if self.uses_native(n) and not stops.strings:
            return self._complete_native(prompts, prompt_ids, limits, temps, seeds, top_k, top_p, stops)
        rows = _Rows(limits, temps, seeds, len(self.vocab), self.device)
        logits, state = self._burn_in(prompt_ids)
        for t in range(rows.max_chars):
            next_ids = rows.sample(logits, t, top_k, top_p)
            done = rows.reached_limit(t, stops.finish(rows, next_ids, t))
            if done is not None and bool(done.any()):
                if rows.drop(done):
                    break
                next_ids, state = next_ids[rows.kept], tuple(s[:, rows.kept].contiguous() for s in state)
            logits, state = self._step(next_ids, state)
        return [Completion(prompt, stops.trim(self.vocab.decode(ids), stopped), "stop" if stopped else "length",
                           self.vocab.unknown_chars(prompt))
                for prompt, (ids, stopped) in zip(prompts, rows.results())]

    def uses_native(self, batch: int) -> bool:
        """Whether completions of `batch` prompts (with single-character stops) run in the native kernel."""
        return self._native is not None and batch <= NATIVE_MAX_BATCH

    def _complete_native(self, prompts: list[str], prompt_ids: list[list[int]], limits: list[int],
                         temps: list[float], seeds: list[int], top_k: int | None, top_p: float | None,
                         stops: _Stops) -> list[Completion]:
        # The same noise as the torch path (_Rows): row i's draws depend only on its seed.
        noise = gumbel_noise(seeds, max(limits), len(self.vocab))
        noise[:, :, 0] = float("-inf")  # never emit the unknown symbol
        temps_t = torch.tensor(temps, dtype=torch.float32)
        # prompts are burned in by the kernel too; rows are shared out among torch's threads
        out, lengths, stopped = self._native.generate(
            prompt_ids, noise, 1.0 / temps_t.clamp_min(1e-6), temps_t > 0, top_k, top_p, stops.ids.tolist(), limits,
            threads=torch.get_num_threads())
        return [Completion(prompt, self.vocab.decode(out[i, : lengths[i]].tolist()), "stop" if stopped[i] else "length",
                           self.vocab.unknown_chars(prompt))
                for i, prompt in enumerate(prompts)]

    @torch.inference_mode()
    def trace(self, ids: torch.Tensor) -> Iterator[tuple[torch.Tensor, State]]:
        """Read `ids` (B, T) from the zero state one character at a time, through the same step
        generation uses; after each character yield the next-character logits (B, V) and the state,
        (h, c) for an LSTM, each (layers, B, hidden). Both are overwritten by the next step: copy
        what you keep."""
        ids = ids.to(self.device)
        state = self._step.init_state(ids.shape[0])
        for t in range(ids.shape[1]):
            logits, state = self._step(ids[:, t], state)
            yield logits, state

    @torch.inference_mode()
    def score(self, texts: Sequence[str], context: str = "\n") -> list[float]:
        """Mean log-likelihood per character (nats, <= 0) of each text following `context`."""
        prefix = self.vocab.encode(context)
        rows = [prefix + self.vocab.encode(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        ids = ids.to(self.device)
        logits, _ = self.model(ids[:, :-1])
        logp = torch.log_softmax(logits.float(), -1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
        scores = []
        for i, t in enumerate(texts):
            span = logp[i, len(prefix) - 1 : len(prefix) - 1 + len(t)]
            scores.append(float(span.mean()) if len(t) else 0.0)
        return scores


class _Stops:
    """Stop strings: single characters are checked on the sampled ids, longer strings on the text."""

    def __init__(self, vocab: Vocab, stop_at: str | Sequence[str] | None, device: torch.device):
        stops = [stop_at] if isinstance(stop_at, str) else [s for s in (stop_at or []) if s]
        self.vocab, self.device = vocab, device
        self.ids = torch.tensor([vocab.encode(s)[0] for s in stops if len(s) == 1 and s in vocab], device=device)
        self.strings = [s for s in stops if len(s) > 1]
        self.longest = max((len(s) for s in self.strings), default=0)

    def finish(self, rows: _Rows, next_ids: torch.Tensor, t: int) -> torch.Tensor | None:
        """Mark the rows that just sampled a stop as finished; (active,) bool mask of them, or None."""
        single = torch.isin(next_ids, self.ids) if len(self.ids) else None
        done = single
        if self.strings:
            hits = torch.tensor([any(self.vocab.decode(rows.out[row, max(0, t + 1 - self.longest): t + 1].tolist())
                                     .endswith(s) for s in self.strings) for row in rows.active.tolist()],
                                device=self.device)
            done = hits if done is None else done | hits
        if done is not None and bool(done.any()):
            # a single-character stop is not part of the text; a stop string is cut after decoding
            rows.stop(done, single[done] if single is not None
                      else torch.zeros(int(done.sum()), dtype=torch.bool, device=self.device), t)
        return done

    def trim(self, text: str, stopped: bool) -> str:
        if stopped:
            for s in self.strings:
                if text.endswith(s):
                    return text[: -len(s)]
        return text


class _Rows:
    """The batch being sampled: each row's output and length, and which rows are still active.

    Rows that finish leave the batch. Until the first one does, batch row i is row i and plain
    slices serve; all bookkeeping for finished rows runs only on the (rare) steps where one does.
    """

    def __init__(self, limits: list[int], temps: list[float], seeds: list[int], vocab_size: int,
                 device: torch.device):
        n = len(limits)
        self.max_chars = max(limits)
        # Row i's random stream depends only on its seed, not on the batch it is part of, nor on the
        # device: it is drawn on the CPU, so a GPU samples from the same noise.
        self.noise = gumbel_noise(seeds, self.max_chars, vocab_size).to(device)  # (n, max_chars, V)
        self.noise[:, :, 0] = float("-inf")  # never emit the unknown symbol
        self.out = torch.zeros(n, self.max_chars, dtype=torch.long, device=device)
        self.lengths = torch.tensor(limits, dtype=torch.long, device=device)
        self.limit = self.lengths.clone()
        self.stopped = torch.zeros(n, dtype=torch.bool, device=device)
        self.active = torch.arange(n, device=device)  # original row of each batch row still generating
        self.kept: torch.Tensor | None = None  # batch rows kept by the last drop()
        self.compacted = False
        self.inv_temp = 1.0 / torch.tensor(temps, dtype=torch.float32, device=device).clamp_min(1e-6)
        self.hot = torch.tensor(temps, device=device) > 0
        self.all_hot = bool(self.hot.all())
        self.next_limit = min(limits)  # the first step at which some active row reaches its own length

    def sample(self, logits: torch.Tensor, t: int, top_k: int | None, top_p: float | None) -> torch.Tensor:
        if not self.all_hot:
            logits[:, 0] = float("-inf")  # greedy rows must not emit the unknown symbol either
        noise = self.noise[self.active, t] if self.compacted else self.noise[:, t]
        next_ids = sample_next(logits, self.inv_temp, noise, top_k, top_p, None if self.all_hot else self.hot)
        if self.compacted:
            self.out[self.active, t] = next_ids
        else:
            self.out[:, t] = next_ids
        return next_ids

    def stop(self, done: torch.Tensor, single: torch.Tensor, t: int) -> None:
        finished = self.active[done]
        self.lengths[finished] = torch.where(single, t, t + 1)
        self.stopped[finished] = True

    def reached_limit(self, t: int, done: torch.Tensor | None) -> torch.Tensor | None:
        if t + 1 < self.next_limit:
            return done
        reached = self.limit[self.active] == t + 1
        return reached if done is None else done | reached

    def drop(self, done: torch.Tensor) -> bool:
        """Remove the finished rows; True when none is left."""
        keep = (~done).nonzero().squeeze(1)
        if len(keep) == 0:
            return True
        self.kept = keep
        self.active, self.inv_temp, self.hot = self.active[keep], self.inv_temp[keep], self.hot[keep]
        self.all_hot = bool(self.hot.all())
        self.compacted = True
        self.next_limit = int(self.limit[self.active].min())
        return False

    def results(self) -> Iterator[tuple[list[int], bool]]:
        for row in range(len(self.out)):
            yield self.out[row, : self.lengths[row]].tolist(), bool(self.stopped[row])
