"""The default model: a trained run in the default run directory, else the KJV model that ships
inside the package (trained by `rnnbot train` itself; docs/model-card.md says how).

An explicit MODEL_PATH (or --checkpoint) always wins; callers check that first.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from models.checkpoint import WEIGHTS_SUFFIX
from models.errors import CheckpointError

DEFAULT_RUN_DIR = "runs/kjv"  # where `rnnbot train` and `make train` put the KJV model
BUNDLED_NAME = "kjv"


def bundled_checkpoint() -> Path:
    """The packaged model's weights file; a one-line error if the installation lacks it."""
    path = Path(str(resources.files("models") / "weights" / BUNDLED_NAME / f"best{WEIGHTS_SUFFIX}"))
    if not path.is_file():
        raise CheckpointError(f"the bundled model is missing from this installation ({path}): reinstall rnnbot, "
                              "or set MODEL_PATH to a run directory or .safetensors file")
    return path


def has_checkpoint(run_dir: str | Path) -> bool:
    p = Path(run_dir)
    return any((p / f"{name}{WEIGHTS_SUFFIX}").is_file() for name in ("best", "last"))


def default_model(run_dir: str | Path = DEFAULT_RUN_DIR) -> tuple[Path, str]:
    """(path, where it comes from): a trained run in `run_dir` when it holds a checkpoint, else the
    bundled model."""
    if has_checkpoint(run_dir):
        return Path(run_dir), f"the trained run in {run_dir}"
    return bundled_checkpoint().parent, "the bundled KJV model"
