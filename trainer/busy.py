"""Was the machine busy? A run's speed against earlier runs of the same configuration, and the
other processes that used the CPU meanwhile (from /proc; nothing is named where there is none).

Earlier speeds are kept beside the run directories (`<runs>/.train-speeds.json`): the median
steps/s of the last few runs of each configuration on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from models.checkpoint import atomic_write_text

log = logging.getLogger(__name__)

HISTORY_NAME = ".train-speeds.json"
HISTORY_KEEP = 10  # speeds kept per configuration
SLOW_RATIO = 0.5  # slower than half the usual speed: say so
BUSY_SHARE = 0.5  # other processes took at least half of the CPU time this run's threads wanted
MIN_TRAIN_S = 5.0  # shorter runs are mostly start-up: their speed says nothing
PROC = Path("/proc")


def config_key(cfg, precision: str, threads: int) -> str:
    """What sets the speed of a step: the network, the batch, the precision and the threads."""
    return (f"{cfg.cell} {cfg.layers}x{cfg.hidden} emb {cfg.embedding or cfg.hidden} "
            f"batch {cfg.batch_size}x{cfg.seq_len} {precision} threads {threads}")


class SpeedHistory:
    """Steps/s of earlier runs, per configuration key, in one small JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def beside(cls, run_dir: str | Path) -> SpeedHistory:
        return cls(Path(run_dir).resolve().parent / HISTORY_NAME)

    def load(self) -> dict[str, list[float]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: [float(x) for x in v if isinstance(x, int | float) and x > 0]
                for k, v in data.items() if isinstance(v, list)}

    def typical(self, key: str) -> tuple[float, int] | None:
        """(median steps/s, how many runs) of this configuration, or None before its first run."""
        speeds = self.load().get(key)
        return (statistics.median(speeds), len(speeds)) if speeds else None

    def record(self, key: str, steps_per_s: float) -> None:
        data = self.load()
        data[key] = (data.get(key, []) + [round(steps_per_s, 4)])[-HISTORY_KEEP:]
        try:
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except OSError as exc:  # a read-only runs folder: only the comparison is lost
            log.debug("cannot write %s: %s", self.path, exc.strerror)


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    name: str
    ticks: int  # user + system clock ticks so far


def cpu_snapshot() -> dict[int, ProcessCpu]:
    """Every process's CPU time so far, from /proc ({} where there is no /proc)."""
    found = {}
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return {}
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
        comm, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
        found[int(entry.name)] = ProcessCpu(int(entry.name), process_name(cmdline, comm), ticks)
    return found


def process_name(cmdline: bytes, comm: str, limit: int = 40) -> str:
    """A short, recognisable name: the command and its first argument ("python -m cli", "rnnbot train")."""
    args = [a for a in cmdline.decode("utf-8", "replace").split("\0") if a]
    if not args:
        return comm
    name = " ".join(os.path.basename(a) for a in args[:3])
    return name if len(name) <= limit else name[: limit - 1] + "…"


def cpu_hogs(before: dict[int, ProcessCpu], after: dict[int, ProcessCpu], wall_s: float,
             exclude: set[int], top: int = 3) -> list[tuple[ProcessCpu, float]]:
    """The processes that used the most CPU between two snapshots, with their share of one CPU
    (1.0 = a whole core), busiest first; at least 5% of a core each."""
    if wall_s <= 0:
        return []
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = []
    for pid, proc in after.items():
        if pid in exclude:
            continue
        share = (proc.ticks - (before[pid].ticks if pid in before else 0)) / hz / wall_s
        if share >= 0.05:
            used.append((proc, min(share, float(os.cpu_count() or 1))))
    return sorted(used, key=lambda item: -item[1])[:top]


def slow_run_note(steps_per_s: float, typical: tuple[float, int] | None, hogs: list[tuple[ProcessCpu, float]],
                  threads: int) -> str | None:
    """The closing line of a run that was far slower than usual (or that shared a busy CPU), else None."""
    others = sum(share for _, share in hogs)
    slow = typical is not None and steps_per_s < SLOW_RATIO * typical[0]
    busy = typical is None and others >= BUSY_SHARE * threads
    if not (slow or busy):
        return None
    if typical is not None:
        runs = f"{typical[1]} earlier run{'s' if typical[1] != 1 else ''}"
        head = (f"slow run: {steps_per_s:.2f} steps/s, {steps_per_s / typical[0]:.0%} of the "
                f"{typical[0]:.2f} steps/s this configuration usually reaches here (median of {runs})")
    else:
        head = f"slow run: {steps_per_s:.2f} steps/s while other processes kept the CPU busy"
    if hogs:
        named = ", ".join(f"{p.name} (pid {p.pid}, {share:.0%} of a CPU)" for p, share in hogs)
        return f"{head}; also using the CPU: {named}"
    return f"{head}; the CPU was probably busy with other work"
