"""Everything a run directory holds besides checkpoints: metrics, samples, the loss plot."""

from __future__ import annotations

import json
from pathlib import Path

from models.checkpoint import atomic_write


class RunFiles:
    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir)
        self.config = self.root / "config.json"
        self.metrics = self.root / "metrics.jsonl"
        self.samples = self.root / "samples.jsonl"
        self.samples_md = self.root / "samples.md"
        self.plot = self.root / "loss.png"
        self.resume = self.root / "last.resume.pt"

    def checkpoint(self, name: str) -> Path:
        return self.root / f"{name}.safetensors"

    def append_jsonl(self, path: Path, record: dict) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop log lines written after the checkpoint we resume from."""
        for path in (self.metrics, self.samples):
            if path.exists():
                lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
                kept = [ln for ln in lines if (record := _record(ln)) is not None and record.get("step", 0) <= step]
                path.write_text("".join(kept), encoding="utf-8")

    def record_samples(self, step: int, val_loss: float, samples: list[tuple[float, str]]) -> None:
        """Keep the samples of one evaluation: machine-readable and as a page to read."""
        for temperature, text in samples:
            self.append_jsonl(self.samples, {"step": step, "val_loss": val_loss,
                                             "temperature": temperature, "text": text})
        with self.samples_md.open("a", encoding="utf-8") as f:
            f.write(f"## step {step} (val {val_loss:.3f} nats/char)\n\n")
            for temperature, text in samples:
                f.write(f"temperature {temperature}:\n\n```\n{text}\n```\n\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        lines = self.metrics.read_text(encoding="utf-8").splitlines()
        return [record for ln in lines if (record := _record(ln)) is not None]

    def plot_loss(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.read_metrics()
        train = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
        val = [(r["step"], r["val_loss"]) for r in records if r["kind"] == "eval"]
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        if train:
            ax.plot(*zip(*train), label="train", linewidth=1)
        if val:
            ax.plot(*zip(*val), "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/char)")
        ax.set_title(self.root.name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_write(self.plot, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)


def _record(line: str) -> dict | None:
    """One JSON-lines record, or None for a blank line or one a killed process left cut short."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
