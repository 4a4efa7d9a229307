"""Generator: loads a checkpoint once, then completes batches of prompts.

Each prompt is burned in (its characters update the hidden state), then characters are sampled
one at a time, feeding each back while carrying the state; the prefix is never re-run.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.checkpoint import Checkpoint, load_checkpoint
from models.model import CharRNN, State
from models.sampling import check_sampling_args, sample_next
from models.vocab import Vocab


@dataclass
class Completion:
    prompt: str
    text: str  # the sampled continuation, without the prompt and without the stop string
    finish_reason: str  # "stop" (hit a stop string) or "length" (max_chars reached)
    unknown_chars: list[str] = field(default_factory=list)  # prompt chars the model has never seen


class Generator:
    def __init__(self, model: CharRNN, vocab: Vocab, checkpoint: Checkpoint | None = None):
        """Sample from `model` (kept in the caller's train/eval mode: call model.eval() first)."""
        self.model = model
        self.vocab = vocab
        self.checkpoint = checkpoint
        # The character that starts a line: an empty prompt is burned in as this.
        self._start_id = vocab.encode("\n")[0]

    @classmethod
    def load(cls, path: str | Path) -> Generator:
        checkpoint = load_checkpoint(path)
        return cls(checkpoint.build_model(), checkpoint.vocab, checkpoint)

    @property
    def name(self) -> str:
        path = self.checkpoint.path if self.checkpoint else None
        return str(path) if path else "in-memory"

    def step(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One character per row: ids (B,) -> logits (B, V) and the new state."""
        logits, state = self.model(ids.unsqueeze(1), state)
        return logits[:, 0], state

    def burn_in(self, prompt_ids: list[list[int]]) -> tuple[torch.Tensor, State]:
        """Run every prompt from a zero state: logits after each prompt's last char, and states."""
        lengths = torch.tensor([len(p) for p in prompt_ids])
        padded = torch.zeros(len(prompt_ids), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            padded[row, : len(ids)] = torch.tensor(ids)
        return self.model.run_packed(padded, lengths)

    @torch.inference_mode()
    def complete(
        self,
        prompts: Sequence[str],
        max_chars: int = 280,
        temperature: float | Sequence[float] = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop_at: str | Sequence[str] | None = None,
    ) -> list[Completion]:
        """Complete every prompt; row i draws from seed + i (a random seed when None).

        `temperature` is one value or one per prompt; 0 means argmax. `stop_at` is a string or
        strings that end a completion (e.g. "\\n" for one verse).
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not one string")
        prompts = list(prompts)
        if not prompts:
            return []
        temps = [float(temperature)] * len(prompts) if isinstance(temperature, (int, float)) else list(temperature)
        if len(temps) != len(prompts):
            raise ValueError(f"{len(temps)} temperatures for {len(prompts)} prompts")
        check_sampling_args(temps, max_chars, top_k, top_p)
        stops = [stop_at] if isinstance(stop_at, str) else [s for s in (stop_at or []) if s]
        if seed is None:
            seed = secrets.randbits(62)

        n = len(prompts)
        uniforms = torch.stack(
            [torch.rand(max_chars, generator=torch.Generator().manual_seed(seed + i)) for i in range(n)]
        )  # (n, max_chars): row i's random stream, independent of the batch it is in
        prompt_ids = [self.vocab.encode(p) if p else [self._start_id] for p in prompts]
        logits, state = self.burn_in(prompt_ids)

        single_char_stops = torch.tensor([self.vocab.encode(s)[0] for s in stops if len(s) == 1 and s in self.vocab])
        long_stops = [s for s in stops if len(s) > 1]
        outputs: list[list[int]] = [[] for _ in range(n)]
        finish = ["length"] * n
        active = torch.arange(n)  # original row of each batch row still generating
        temp_all = torch.tensor(temps)
        for t in range(max_chars):
            logits[:, 0] = float("-inf")  # never emit the unknown symbol
            next_ids = sample_next(logits, temp_all[active], uniforms[active, t], top_k, top_p)
            done = torch.zeros(len(active), dtype=torch.bool)
            if len(single_char_stops):
                done |= torch.isin(next_ids, single_char_stops)
            for b, (row, cid) in enumerate(zip(active.tolist(), next_ids.tolist())):
                if done[b]:
                    finish[row] = "stop"
                    continue
                outputs[row].append(cid)
                if long_stops and self._ends_with_stop(outputs[row], long_stops):
                    done[b] = True
                    finish[row] = "stop"
            if t == max_chars - 1:
                break
            if bool(done.any()):
                keep = (~done).nonzero().squeeze(1)
                if len(keep) == 0:
                    break
                active, next_ids = active[keep], next_ids[keep]
                state = tuple(s[:, keep] for s in state)
            logits, state = self.step(next_ids, state)

        results = []
        for row, prompt in enumerate(prompts):
            text = self.vocab.decode(outputs[row])
            if finish[row] == "stop":
                for s in long_stops:
                    if text.endswith(s):
                        text = text[: -len(s)]
                        break
            results.append(Completion(prompt, text, finish[row], self.vocab.unknown_chars(prompt)))
        return results

    def _ends_with_stop(self, ids: list[int], stops: list[str]) -> bool:
        longest = max(len(s) for s in stops)
        tail = self.vocab.decode(ids[-longest:])
        return any(tail.endswith(s) for s in stops)
