"""Feedback on long work: a tqdm bar where a terminal shows it, plain lines where none would.

tqdm draws on stderr and only on a terminal; piped into a file (`make run > log`), a run would
otherwise stay silent between evaluations. So where the output is not a terminal, a line goes out
when the work starts and then every PROGRESS_EVERY_S seconds.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

PROGRESS_EVERY_S = 30.0


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def plain_lines_wanted() -> bool:
    """True when a bar would not be seen: stdout is piped, or stderr (where tqdm draws) is."""
    return not (is_terminal(sys.stdout) and is_terminal(sys.stderr))


def duration(seconds: float) -> str:
    """0.4s, 45s, 3m10s, 1h02m."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Ticker:
    """`due()` is true at its first call, then at most once every `every_s` seconds."""

    def __init__(self, every_s: float = PROGRESS_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every_s, self.clock = every_s, clock
        self.last: float | None = None

    def due(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.every_s:
            return False
        self.last = now
        return True


class TaskProgress:
    """The progress of one long task over `total` units (an evaluation, reading a text).

        with TaskProgress(n, "evaluating", "chars") as progress:
            work(on_progress=progress.update)      # update(done): units done so far

    A bar on a terminal; otherwise "what: 0/n units…" at once and a line every `every_s` seconds,
    with a rate and the time left, on stderr (stdout keeps the command's result)."""

    def __init__(self, total: int, what: str, unit: str = "chars", stream: TextIO | None = None,
                 every_s: float = PROGRESS_EVERY_S):
        self.total, self.what, self.unit = max(1, total), what, unit
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.done = 0
        self.bar = None
        self.ticker = Ticker(every_s)
        if is_terminal(self.stream):
            self.bar = tqdm(total=self.total, desc=what, unit=unit, unit_scale=True, file=self.stream,
                            dynamic_ncols=True, leave=False)
        else:
            self.ticker.due()
            self._line(f"{what}: {self.total:,} {unit}…")

    def update(self, done: int) -> None:
        done = min(done, self.total)
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        if self.bar is None and done < self.total and self.ticker.due():
            spent = time.monotonic() - self.started
            rate = done / spent if spent > 0 else 0.0
            left = f", about {duration((self.total - done) / rate)} left" if rate > 0 else ""
            self._line(f"{self.what}: {done:,}/{self.total:,} {self.unit} ({done / self.total:.0%}), "
                       f"{rate:,.0f} {self.unit}/s{left}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __enter__(self) -> TaskProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class TrainingLines:
    """Plain progress lines for a training run (see the module's docstring): step, loss, chars/s,
    time spent and the time left. Evaluation time is left out of the chars/s."""

    def __init__(self, max_steps: int | None, budget_s: float | None, chars_per_step: int,
                 stream: TextIO | None = None, every_s: float = PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.perf_counter):
        self.max_steps, self.budget_s, self.chars_per_step = max_steps, budget_s, chars_per_step
        self.stream = stream or sys.stdout
        self.clock = clock
        self.ticker = Ticker(every_s, clock)
        self.losses: list[float] = []
        self.mark_step: int | None = None
        self.mark_time = clock()

    def step(self, step: int, loss: float, elapsed_s: float) -> None:
        """After each training step: `elapsed_s` is the run's time so far (the budget's clock)."""
        self.losses.append(loss)
        if self.mark_step is None:
            self.mark_step = step - 1
        if not self.ticker.due():
            return
        now = self.clock()
        steps_per_s = (step - self.mark_step) / max(now - self.mark_time, 1e-9)
        parts = [f"step {step:,}" + (f"/{self.max_steps:,}" if self.max_steps else ""),
                 f"loss {sum(self.losses) / len(self.losses):.3f}",
                 f"{steps_per_s * self.chars_per_step:,.0f} chars/s",
                 f"{duration(elapsed_s)} elapsed"]
        eta = self.eta(step, elapsed_s, steps_per_s)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}")
        print("progress: " + ", ".join(parts), file=self.stream, flush=True)
        self.losses, self.mark_step, self.mark_time = [], step, now

    def paused(self, seconds: float) -> None:
        """Time spent on something else (an evaluation) is not training time."""
        self.mark_time += seconds

    def evaluating(self, step: int, chars: int) -> None:
        print(f"progress: step {step:,}: evaluating on {chars:,} validation characters…", file=self.stream,
              flush=True)

    def eta(self, step: int, elapsed_s: float, steps_per_s: float) -> float | None:
        left = []
        if self.max_steps and steps_per_s > 0:
            left.append((self.max_steps - step) / steps_per_s)
        if self.budget_s:
            left.append(self.budget_s - elapsed_s)
        return max(0.0, min(left)) if left else None


def no_steps_note(max_minutes: float | None, elapsed_s: float, reserve_s: float, val_chars: int,
                  resumed: bool = False) -> str:
    """Why a time budget ran out before any step: the time already spent, and the final
    evaluation's estimated time, which the budget keeps in reserve."""
    budget_s = (max_minutes or 0) * 60
    spent = (f"{duration(elapsed_s)} of it were already spent by earlier sessions of this run" if resumed
             else f"start-up took {duration(elapsed_s)}")
    need_minutes = math.ceil((elapsed_s + reserve_s) / 60) + 1
    return (f"no training steps{' in this session' if resumed else ''}: the {duration(budget_s)} budget "
            f"(--max-minutes {max_minutes:g}) was used up before the first step: {spent}, and the evaluation "
            f"at the end needs about {duration(reserve_s)} for {val_chars:,} validation characters. "
            f"Give --max-minutes {need_minutes} or more, or train by steps with --max-steps N.")
