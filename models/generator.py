"""Generator: loads a checkpoint once, then completes batches of prompts.

Each prompt is burned in (its characters update the hidden state, all prompts in one packed
pass), then characters are sampled one at a time, feeding each back while carrying the state;
the prefix is never re-run. Rows that finish leave the batch, so the rest step faster.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.checkpoint import Checkpoint, load_checkpoint
from models.fast_step import FastStepper
from models.model import CharRNN, State
from models.sampling import gumbel_noise, check_sampling_args, sample_next
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
                 precision: str = "fp32", start_context: str | None = None):
        """Sample from `model` (call model.eval() first). Weights are copied into the fast stepper,
        so a model that keeps training needs a new Generator to sample its new weights.

        `precision` (models/precision.py GENERATION_PRECISIONS): fp32, bf16, int8, or auto (int8
        weights where they are faster for the batch in hand). The same seed gives the same text
        on the same precision; int8 and fp32 texts may part after a while."""
        self.model = model
        self.vocab = vocab
        self.checkpoint = checkpoint
        self.stepper = FastStepper(model, precision)
        # An empty prompt is burned in on this: a few whole lines of training text saved in the
        # checkpoint (so the state is one the model knows at a line start), else a bare newline.
        if start_context is None and checkpoint is not None:
            start_context = checkpoint.extra.get("start_context")
        self.start_context = start_context or "\n"
        self._start_ids = vocab.encode(self.start_context)

    @classmethod
    def load(cls, path: str | Path, precision: str = "fp32") -> Generator:
        checkpoint = load_checkpoint(path)
        return cls(checkpoint.build_model(), checkpoint.vocab, checkpoint, precision)

    @property
    def name(self) -> str:
        path = self.checkpoint.path if self.checkpoint else None
        return str(path) if path else "in-memory"

    def burn_in(self, prompt_ids: list[list[int]]) -> tuple[torch.Tensor, State]:
        """Run every prompt from a zero state: logits after each prompt's last char, and states."""
        lengths = torch.tensor([len(p) for p in prompt_ids])
        padded = torch.zeros(len(prompt_ids), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            padded[row, : len(ids)] = torch.tensor(ids)
        logits, state = self.model.run_packed(padded, lengths)
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
        temps = per_prompt(temperature, len(prompts), "temperatures")
        limits = per_prompt(max_chars, len(prompts), "lengths")
        check_sampling_args(temps, limits, top_k, top_p)
        max_chars = max(limits)
        stops = [stop_at] if isinstance(stop_at, str) else [s for s in (stop_at or []) if s]
        stop_ids = torch.tensor([self.vocab.encode(s)[0] for s in stops if len(s) == 1 and s in self.vocab])
        long_stops = [s for s in stops if len(s) > 1]
        if seed is None:
            seed = secrets.randbits(62)
        n = len(prompts)
        seeds = [seed + i for i in range(n)] if isinstance(seed, int) else per_prompt(seed, n, "seeds")
        # Row i's random stream depends only on its seed, not on the batch it is part of.
        noise = gumbel_noise(seeds, max_chars, len(self.vocab))  # (n, max_chars, V)
        noise[:, :, 0] = float("-inf")  # never emit the unknown symbol
        logits, state = self.burn_in([self.vocab.encode(p) if p else self._start_ids for p in prompts])
        out = torch.zeros(n, max_chars, dtype=torch.long)
        lengths = torch.tensor(limits, dtype=torch.long)
        row_limit = lengths.clone()
        stopped = torch.zeros(n, dtype=torch.bool)
        active = torch.arange(n)  # original row of each batch row still generating
        compacted = False  # while no row has finished, batch row i is row i: plain slices, no gathers
        inv_temp = 1.0 / torch.tensor(temps, dtype=torch.float32).clamp_min(1e-6)  # of the active rows
        hot = torch.tensor(temps) > 0
        all_hot = bool(hot.all())
        next_limit = min(limits)  # the first step at which some active row reaches its own length
        # Per character, the loop below is the stepper plus a handful of small ops; all bookkeeping
        # for finished rows runs only on the (rare) steps where a row finishes.
        for t in range(max_chars):
            if not all_hot:
                logits[:, 0] = float("-inf")  # greedy rows must not emit the unknown symbol either
            next_ids = sample_next(logits, inv_temp, noise[active, t] if compacted else noise[:, t],
                                   top_k, top_p, None if all_hot else hot)
            if compacted:
                out[active, t] = next_ids
            else:
                out[:, t] = next_ids
            done = torch.isin(next_ids, stop_ids) if len(stop_ids) else None
            if long_stops:
                hits = self._long_stop_hits(out, active, t, long_stops)
                done = hits if done is None else done | hits
            if done is not None and bool(done.any()):
                finished = active[done]
                single = torch.isin(next_ids[done], stop_ids) if len(stop_ids) else torch.zeros(len(finished), dtype=torch.bool)
                # a single-character stop is not part of the text; a stop string is cut after decoding
                lengths[finished] = torch.where(single, t, t + 1)
                stopped[finished] = True
            if t + 1 >= next_limit:
                reached = row_limit[active] == t + 1  # rows that reached their own length
                done = reached if done is None else done | reached
            if done is not None and bool(done.any()):
                keep = (~done).nonzero().squeeze(1)
                if len(keep) == 0:
                    break
                active, next_ids, inv_temp, hot = active[keep], next_ids[keep], inv_temp[keep], hot[keep]
                all_hot = bool(hot.all())
                state = tuple(s[:, keep].contiguous() for s in state)
                compacted = True
                next_limit = int(row_limit[active].min())
            logits, state = self.stepper(next_ids, state)

        results = []
        for row, prompt in enumerate(prompts):
            text = self.vocab.decode(out[row, : lengths[row]].tolist())
            if stopped[row]:
                for s in long_stops:
                    if text.endswith(s):
                        text = text[: -len(s)]
                        break
            results.append(Completion(prompt, text, "stop" if stopped[row] else "length",
                                      self.vocab.unknown_chars(prompt)))
        return results

    @torch.inference_mode()
    def score(self, texts: Sequence[str], context: str = "\n") -> list[float]:
        """Mean log-likelihood per character (nats, <= 0) of each text following `context`."""
        prefix = self.vocab.encode(context)
        rows = [prefix + self.vocab.encode(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        logits, _ = self.model(ids[:, :-1])
        logp = torch.log_softmax(logits.float(), -1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
        scores = []
        for i, t in enumerate(texts):
            span = logp[i, len(prefix) - 1 : len(prefix) - 1 + len(t)]
            scores.append(float(span.mean()) if len(t) else 0.0)
        return scores

    def _long_stop_hits(self, out: torch.Tensor, active: torch.Tensor, t: int, stops: list[str]) -> torch.Tensor:
        longest = max(len(s) for s in stops)
        hits = torch.zeros(len(active), dtype=torch.bool)
        for b, row in enumerate(active.tolist()):
            tail = self.vocab.decode(out[row, max(0, t + 1 - longest) : t + 1].tolist())
            hits[b] = any(tail.endswith(s) for s in stops)
        return hits
