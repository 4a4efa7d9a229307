"""The pre-generation buffer: a few scored candidates kept ready, so a post never waits on the model.

A background task tops the buffer up whenever it falls below `size`: one round samples K lines
through the generation worker (batched with users' requests), checks each (bot/scheduler/
candidates.py), scores the survivors with the model, and keeps the best `size`. Every sample is
recorded in `generations`: accepted ones as "candidate", the others as "rejected" with the reason
(also the ones a better round pushed out of the buffer).

A model whose samples all fail the filters would otherwise only log "0 of 16 accepted" forever:
after `starved_after` such rounds in a row the buffer logs a WARNING naming the model and why its
samples were rejected, and calls `on_starved` (the poster tells the admins, once until a post
succeeds).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.scheduler import candidates as rules
from bot.scheduler.candidates import CorpusIndex
from bot.worker import GenerationWorker, ModelStore, QueueFull
from db import repositories as repo
from db.session import Database, unavailable_reason

log = logging.getLogger(__name__)

MAX_IDLE_BACKOFF_S = 30.0
DATABASE_RETRY_S = 2.0


@dataclass(frozen=True)
class Candidate:
    text: str
    score: float
    generation_id: int | None = None  # None when nothing is recorded (dry run)


@dataclass(frozen=True)
class CandidateRules:
    min_chars: int
    max_chars: int
    temperature: float
    per_round: int  # K: samples generated per round
    max_unknown_words: int = 0  # words not in the corpus a candidate may contain (< 0: any)


@dataclass
class Round:
    accepted: list[Candidate] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (text, reason)


class CandidateBuffer:
    def __init__(self, worker: GenerationWorker, models: ModelStore, rules_: CandidateRules, *, size: int,
                 corpus: CorpusIndex | None, model: str | None = None, database: Database | None = None,
                 record: bool = True, starved_after: int = 3):
        """`database` None: ignore what was posted before; `record` False: write nothing (the dry run);
        `starved_after`: rounds in a row without an acceptable sample before it warns."""
        self.worker, self.models, self.rules, self.size = worker, models, rules_, size
        self.corpus, self.model, self.database = corpus, model, database
        self.record = record and database is not None
        self.heavy = None  # a HeavyWork to score on (the bot's); None: a thread of the default pool
        self._ready: list[Candidate] = []  # best first
        self._need = asyncio.Event()  # set while the buffer wants more
        self._changed = asyncio.Event()  # set whenever candidates arrive
        self._task: asyncio.Task | None = None
        self.rounds = 0
        self.last_round = Round()
        self.starved_after = starved_after
        self.starved_rounds = 0  # rounds in a row without an acceptable sample
        self._starved_reasons: Counter[str] = Counter()  # their rejections, by kind
        self.on_starved: Callable[[str], Awaitable[None]] | None = None  # told once per such streak

    @property
    def model_name(self) -> str:
        return self.models.resolve(self.model)

    def __len__(self) -> int:
        return len(self._ready)

    # ----- the background task -----
    async def start(self) -> None:
        if self._task is None:
            if self.record:
                try:
                    await self._reload_stored()
                except Exception as exc:  # a start-up must not fail on it: new candidates are generated
                    reason = unavailable_reason(exc)
                    if reason is None:
                        raise
                    log.warning("post candidates: could not reload the stored ones (%s); generating new ones",
                                reason)
            self._need.set()
            self._task = asyncio.create_task(self._refill_forever(), name="post-candidates")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _refill_forever(self) -> None:
        idle_rounds = 0
        while True:
            await self._need.wait()
            delay = 0.0
            try:
                found = await self.refill_once()
                await self._count_starved(found)
            except QueueFull:
                delay = 1.0  # the bot is busy with users; they come first
            except Exception as exc:
                reason = unavailable_reason(exc)
                if reason is None:
                    log.exception("generating post candidates failed")
                    delay = MAX_IDLE_BACKOFF_S
                else:  # candidates are recorded before they may be posted: wait for the database
                    log.warning("generating post candidates: the database is unreachable (%s)", reason)
                    delay = DATABASE_RETRY_S
            else:
                # A model that produces nothing acceptable should not spin the CPU.
                idle_rounds = 0 if found else idle_rounds + 1
                delay = min(MAX_IDLE_BACKOFF_S, 0.25 * 2 ** idle_rounds) if idle_rounds else 0.0
            if len(self._ready) >= self.size:
                self._need.clear()
            if delay:
                await asyncio.sleep(delay)

    # ----- what the poster calls -----
    async def take(self, timeout: float) -> Candidate | None:
        """The best ready candidate (removed from the buffer); None if none arrives within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._ready:
            self._need.set()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return None
        candidate = self._ready.pop(0)
        self._need.set()
        return candidate

    def peek(self) -> Candidate | None:
        return self._ready[0] if self._ready else None

    def put_back(self, candidate: Candidate) -> None:
        """Return an unused candidate (its slot went to another process)."""
        self._add([candidate])

    # ----- one round -----
    async def refill_once(self) -> int:
        """Generate one round into the buffer; returns how many candidates were accepted."""
        found = await self.generate_round()
        evicted = self._add(found.accepted)
        if self.record and evicted:
            reason = f"outscored: the buffer kept {self.size} better candidates"
            ids = sorted(c.generation_id for c in evicted)  # locked in id order, as every process does
            await self.database.run(lambda s: [repo.reject_generation(s, generation_id=g, reason=reason)
                                      for g in ids])
        return len(found.accepted)

    async def generate_round(self) -> Round:
        """Sample K lines, check them, record them, score the ones that pass (best first)."""
        name, k = self.model_name, self.rules.per_round
        results = await asyncio.gather(*(self.worker.complete(
            "", max_chars=self.rules.max_chars + 1, temperature=self.rules.temperature, model=name, stop_at="\n")
            for _ in range(k)), return_exceptions=True)
        completions = [r for r in results if not isinstance(r, BaseException)]
        if not completions:
            raise next(r for r in results if isinstance(r, BaseException))
        posted = await self._posted_before()
        verdicts, seen = [], set(posted)
        for completion in completions:
            text = completion.text.strip()
            verdict = rules.check_candidate(text, min_chars=self.rules.min_chars, max_chars=self.rules.max_chars,
                                            corpus=self.corpus, posted_before=seen,
                                            finished=completion.finish_reason == "stop",
                                            max_unknown_words=self.rules.max_unknown_words)
            if verdict.ok:
                seen.add(rules.normalise(text))
            verdicts.append((text, verdict))
        passed = [text for text, verdict in verdicts if verdict.ok]
        scores = await self._score(name, passed) if passed else []
        ranked = dict(zip(passed, scores))
        found = Round(rejected=[(text, v.reason) for text, v in verdicts if not v.ok])
        ids = await self._record(name, verdicts) if self.record else {}
        found.accepted = sorted((Candidate(text, ranked[text], ids.get(text)) for text in passed),
                                key=lambda c: -c.score)
        self.rounds += 1
        self.last_round = found
        log.info("post candidates: %d of %d accepted (%d ready)", len(passed), len(verdicts), len(self._ready))
        return found

    async def _count_starved(self, accepted: int) -> None:
        """Count rounds without an acceptable sample; at `starved_after` in a row, say so loudly."""
        if accepted:
            self.starved_rounds = 0
            self._starved_reasons.clear()
            return
        self.starved_rounds += 1
        self._starved_reasons.update(rejection_kind(reason) for _, reason in self.last_round.rejected)
        if self.starved_rounds != self.starved_after:
            return
        samples = sum(self._starved_reasons.values())
        reasons = ", ".join(f"{kind} ({n})" for kind, n in self._starved_reasons.most_common(5))
        message = (f"model {self.model_name!r}: none of {samples} samples in the last {self.starved_rounds} rounds "
                   f"passed the post filters; rejected as {reasons or 'nothing (no samples)'}. Nothing is posted "
                   "until one passes: check the model (or POST_MIN_CHARS, POST_MAX_CHARS, POST_MAX_UNKNOWN_WORDS)")
        log.warning("post candidates: %s", message)
        if self.on_starved is not None:
            try:
                await self.on_starved(message)
            except Exception:  # telling the admins must not stop the buffer
                log.warning("could not report the candidate drought", exc_info=True)

    # ----- helpers -----
    def _add(self, new: list[Candidate]) -> list[Candidate]:
        """Merge `new` in by score; returns what no longer fits."""
        if not new:
            return []
        merged = sorted(self._ready + new, key=lambda c: -c.score)
        self._ready, evicted = merged[: self.size], merged[self.size:]
        self._changed.set()
        return evicted

    async def _score(self, name: str, texts: list[str]) -> list[float]:
        generator = self.models.get(name)
        if self.heavy is not None:  # in the bot: never on the threads database calls need
            logprobs = await self.heavy.run(generator.score, texts, "\n", wait=True)
        else:
            logprobs = await asyncio.to_thread(generator.score, texts, "\n")
        return [rules.score(text, lp) for text, lp in zip(texts, logprobs)]

    async def _posted_before(self) -> set[str]:
        ready = {rules.normalise(c.text) for c in self._ready}
        if self.database is None:
            return ready
        texts = await self.database.run(lambda s: repo.posted_texts(s))
        return ready | {rules.normalise(t) for t in texts}

    async def _record(self, name: str, verdicts) -> dict[str, int]:
        params = repo.SamplingParams(temperature=self.rules.temperature, max_chars=self.rules.max_chars + 1)

        def record(session) -> dict[str, int]:
            ids = {}
            for text, verdict in verdicts:
                row = repo.add_generation(session, text=text, model_name=name, params=params)
                if verdict.ok:
                    ids[text] = row.id
                else:
                    repo.reject_generation(session, generation_id=row.id, reason=verdict.reason)
            return ids

        return await self.database.run(record)

    async def _reload_stored(self) -> None:
        """Candidates a previous run generated but never posted: check them again and keep the best."""
        name = self.model_name
        stored = await self.database.run(lambda s: [(g.id, g.text) for g in repo.candidate_generations(
            s, limit=self.size, model_name=name)])
        if not stored:
            return
        posted = await self._posted_before()
        keep, drop = [], []
        for generation_id, text in stored:
            verdict = rules.check_candidate(text, min_chars=self.rules.min_chars, max_chars=self.rules.max_chars,
                                            corpus=self.corpus, posted_before=posted,
                                            max_unknown_words=self.rules.max_unknown_words)
            (keep if verdict.ok else drop).append((generation_id, text, verdict.reason))
        if drop:
            await self.database.run(
                lambda s: [repo.reject_generation(s, generation_id=g, reason=r) for g, _, r in drop])
        if keep:
            scores = await self._score(name, [text for _, text, _ in keep])
            self._add([Candidate(text, score, g) for (g, text, _), score in zip(keep, scores)])
            log.info("post candidates: %d stored candidates reloaded", len(keep))



def rejection_kind(reason: str) -> str:
    """A rejection without its particulars: 'too short (17 < 40 chars)' -> 'too short',
    "words not in the corpus: 'ceat'" -> 'words not in the corpus'."""
    return reason.split(" (", 1)[0].split(": ", 1)[0]
