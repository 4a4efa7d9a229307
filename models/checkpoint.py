"""The only place that saves or loads checkpoints.

A checkpoint is one `.safetensors` file: the weights, plus the model config, vocabulary, corpus
name, step and metrics as JSON strings in the safetensors header (so the file is self-contained
and loads without pickle). A `.json` sidecar beside it repeats that metadata for people and tools.
Training state for an exact resume (optimizer, RNG, data position, carried hidden state) lives in
a separate `.resume.pt` file of plain tensors and numbers, loaded with `weights_only=True`.

Every file is written to a temporary name, fsynced and renamed over the target, so a kill at any
moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from models.errors import CheckpointError
from models.model import CharRNN, ModelConfig
from models.vocab import Vocab

FORMAT = "rnnbot-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"


@dataclass
class Checkpoint:
    config: ModelConfig
    vocab: Vocab
    state_dict: dict[str, torch.Tensor]
    corpus: str = ""
    step: int = 0
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # free-form (e.g. training config, val_fraction)
    path: Path | None = None

    def build_model(self) -> CharRNN:
        model = CharRNN(self.config)
        model.load_state_dict(self.state_dict)
        model.eval()
        return model

    def metadata(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "vocab": self.vocab.to_list(),
            "corpus": self.corpus,
            "step": self.step,
            "metrics": self.metrics,
            "extra": self.extra,
        }


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_weights(tmp: Path, tensors: dict[str, torch.Tensor], header: dict[str, str]) -> None:
    save_file(tensors, str(tmp), metadata=header)


def save_checkpoint(ckpt: Checkpoint, path: Path) -> Path:
    """Write `path` (.safetensors) and its `.json` sidecar atomically; returns the weights path."""
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        raise ValueError(f"checkpoint path must end in {WEIGHTS_SUFFIX}: {path}")
    meta = ckpt.metadata()
    header = {key: json.dumps(value) for key, value in meta.items()}
    # safetensors wants contiguous, non-shared tensors; fp32 CPU tensors, so files are portable
    # (a model trained on a GPU samples on a CPU-only machine, and the reverse).
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in ckpt.state_dict.items()}
    atomic_write(path, lambda tmp: _write_weights(tmp, tensors, header))
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run directory means its best checkpoint (else its last); a .json sidecar means its weights."""
    p = Path(path)
    if p.is_dir():
        for name in ("best", "last"):
            candidate = p / f"{name}{WEIGHTS_SUFFIX}"
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{p}: no best{WEIGHTS_SUFFIX} or last{WEIGHTS_SUFFIX} in this directory")
    if p.suffix == ".json" and p.with_suffix(WEIGHTS_SUFFIX).is_file():
        return p.with_suffix(WEIGHTS_SUFFIX)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory")
    return p


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; CheckpointError (one line) for anything that is not a sound one.

    The header is checked against the file's tensors before anything is built or loaded: a header
    claiming hidden=30000 over small tensors would otherwise allocate gigabytes first."""
    p = resolve_checkpoint_path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{p}: not a readable safetensors file ({one_line(exc)})") from None
    meta = _read_header(p, header)
    try:
        if meta["format_version"] > FORMAT_VERSION:
            raise CheckpointError(f"{p}: checkpoint format {meta['format_version']} is newer than this rnnbot")
        config = ModelConfig.from_dict(meta["config"])
        vocab = Vocab.from_list(meta["vocab"])
        if config.vocab_size != len(vocab):
            raise ValueError(f"config says {config.vocab_size} symbols, vocabulary has {len(vocab)}")
        _check_shapes(config, shapes)
        step, metrics, extra = meta.get("step", 0), meta.get("metrics", {}), meta.get("extra", {})
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a whole number, got {step!r}")
        for name, value in (("metrics", metrics), ("extra", extra)):
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
        if not isinstance(extra.get("start_context", ""), str):
            raise ValueError("extra.start_context must be text")
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p}: corrupt rnnbot checkpoint ({one_line(exc)})") from None
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{p}: not a readable safetensors file ({one_line(exc)})") from None
    return Checkpoint(config, vocab, tensors, str(meta.get("corpus", "")), step, metrics, extra, p)


def _read_header(p: Path, header: dict[str, str]) -> dict:
    """The JSON values of an rnnbot header. Other safetensors files (e.g. {"format": "pt"}) are not
    rnnbot checkpoints, whatever else their header holds."""
    try:
        is_ours = json.loads(header.get("format", "null")) == FORMAT
    except ValueError:
        is_ours = False
    if not is_ours:
        raise CheckpointError(f"{p}: a safetensors file, but not an rnnbot checkpoint (no '{FORMAT}' header)")
    meta = {}
    for key, value in header.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            raise CheckpointError(f"{p}: corrupt rnnbot checkpoint (its {key} is not JSON)") from None
    return meta


def _check_shapes(config: ModelConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """The tensors the config needs, by name and shape, against the file's; nothing is allocated
    (the model is built on the meta device)."""
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in CharRNN(config).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise ValueError(f"tensors do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, shape in expected.items():
        if shapes[name] != shape:
            size = ", ".join(f"{k}={v}" for k, v in config.to_dict().items() if k != "dropout")
            raise ValueError(f"the config ({size}) needs {name} of shape {list(shape)}, the file has "
                             f"{list(shapes[name])}")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def save_resume_state(state: dict, path: Path) -> None:
    """Written with every tensor on the CPU, so a run continues on any device (load_resume_state)."""
    state = on_cpu(state)
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def on_cpu(value):
    """`value` with every tensor inside it (dicts, lists, tuples) moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


def load_resume_state(path: Path, device: torch.device | str = "cpu") -> dict:
    """The resume state, its tensors mapped onto `device` (the one training continues on)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no resume state here (was this run directory made by `rnnbot train`?)")
    try:
        return torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(f"{p}: corrupt resume state ({str(exc).splitlines()[0]})") from None
