"""Rank cells by how well they track each feature (|Pearson correlation| over a text), and keep
the result beside the checkpoint (`neurons.json`) so the bot can show the best cell quickly."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.checkpoint import atomic_write_text

log = logging.getLogger(__name__)

CACHE_NAME = "neurons.json"
# Features a cell can follow by looking at the current character alone; shown only when nothing
# that needs memory (quotes, strings, depth, position) was found.
INPUT_DRIVEN = {"line_start", "verse_number", "word_position"}
SHOWCASE_MIN = 0.5


@dataclass
class CellMatch:
    layer: int
    cell: int
    correlation: float


@dataclass
class FeatureResult:
    feature: str
    best: CellMatch
    runners_up: list[CellMatch] = field(default_factory=list)


@dataclass
class Findings:
    checkpoint: str  # the checkpoint's file name, e.g. best.safetensors
    step: int
    value: str  # tanh_c or h
    source: str  # what text the correlations were measured on
    chars: int
    results: list[FeatureResult]

    def showcase(self) -> FeatureResult | None:
        """The most interpretable cell: the strongest that tracks something needing memory."""
        return most_interpretable(self.results)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Findings:
        results = [FeatureResult(r["feature"], CellMatch(**r["best"]), [CellMatch(**m) for m in r["runners_up"]])
                   for r in data["results"]]
        return cls(data["checkpoint"], int(data["step"]), data["value"], data["source"], int(data["chars"]),
                   results)


def most_interpretable(results: list[FeatureResult]) -> FeatureResult | None:
    """The strongest result whose feature needs memory (|correlation| >= SHOWCASE_MIN), else the
    strongest of all; None for none."""
    if not results:
        return None
    strongest = max(results, key=lambda r: abs(r.best.correlation))
    memory = [r for r in results if r.feature not in INPUT_DRIVEN and abs(r.best.correlation) >= SHOWCASE_MIN]
    return max(memory, key=lambda r: abs(r.best.correlation)) if memory else strongest


def pearson(acts: np.ndarray, feats: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """acts (T, N), feats (T, F) -> (N, F) correlations; 0 where a cell or feature is constant.
    Sums are taken in float64 over row chunks, so a long text needs no float64 copy."""
    total = acts.shape[0]
    f = feats - feats.mean(0)
    s1 = np.zeros(acts.shape[1])
    s2 = np.zeros(acts.shape[1])
    cross = np.zeros((acts.shape[1], feats.shape[1]))
    for start in range(0, total, chunk):
        a = acts[start:start + chunk].astype(np.float64)
        s1 += a.sum(0)
        s2 += (a * a).sum(0)
        cross += a.T @ f[start:start + chunk]
    var_a = np.maximum(s2 / total - (s1 / total) ** 2, 0.0)
    std_f = f.std(0)
    denom = np.sqrt(var_a)[:, None] * std_f[None, :] * total
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denom > 1e-12, cross / denom, 0.0)
    return np.clip(r, -1.0, 1.0)


def rank_cells(values: np.ndarray, features: dict[str, np.ndarray], keep: int = 3) -> list[FeatureResult]:
    """values (T, L, H): the best `keep` cells for every feature that varies over the text,
    strongest feature first."""
    steps, layers, hidden = values.shape
    varying = {name: f[:steps] for name, f in features.items() if np.ptp(f[:steps]) > 0}
    if not varying:
        return []
    r = pearson(values.reshape(steps, layers * hidden), np.stack(list(varying.values()), 1))
    results = []
    for j, name in enumerate(varying):
        order = np.argsort(-np.abs(r[:, j]))[:keep]
        matches = [CellMatch(int(i) // hidden, int(i) % hidden, round(float(r[i, j]), 4)) for i in order]
        results.append(FeatureResult(name, matches[0], matches[1:]))
    return sorted(results, key=lambda res: -abs(res.best.correlation))


def cache_path(checkpoint_path: Path) -> Path:
    return Path(checkpoint_path).parent / CACHE_NAME


def save_findings(findings: Findings, checkpoint_path: Path) -> Path | None:
    """Write neurons.json beside the checkpoint; None (and a log line) if that folder is read-only."""
    path = cache_path(checkpoint_path)
    try:
        atomic_write_text(path, findings.to_json())
    except OSError as exc:
        log.warning("cannot save %s: %s", path, exc.strerror)
        return None
    return path


def load_findings(checkpoint_path: Path, step: int) -> Findings | None:
    """The saved findings for this checkpoint file and step, or None if absent or stale."""
    path = cache_path(checkpoint_path)
    try:
        findings = Findings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if findings.checkpoint != Path(checkpoint_path).name or findings.step != step:
        return None
    return findings


def find_cells(generator, text: str, code: bool = False, value: str | None = None, streams: int = 32,
               source: str = "text", on_progress=None):
    """Record `text` (as parallel streams), compute its features and rank the cells.
    Returns (Findings, Activations, features). `on_progress(n)`: characters read so far."""
    from neurons import features as feature_mod
    from neurons.activations import default_value, record

    value = value or default_value(generator)
    acts = record(generator, text, streams=streams, on_progress=on_progress)
    feats = feature_mod.compute(acts.text, code)
    results = rank_cells(acts.values(value), feats)
    ckpt = generator.checkpoint
    name = ckpt.path.name if ckpt is not None and ckpt.path is not None else "in-memory"
    findings = Findings(name, ckpt.step if ckpt is not None else 0, value, source, len(acts.text), results)
    return findings, acts, feats
