"""docs/flags.md is generated from TrainConfig, so the documentation cannot drift from the flags.

    python -m cli.flags_doc > docs/flags.md
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from cli.options import flag
from trainer.config import TrainConfig

# Groups in the order of the dataclass; each names its first field.
GROUPS = {"corpus": "Data", "cell": "Model", "seq_len": "Optimisation", "max_steps": "How long",
          "eval_every": "Evaluation and outputs"}

HEADER = """# `rnnbot train` flags

Every flag can also be set as `RNNBOT_<NAME>`, in the environment or in `.env` in the working
directory. The order, as for every `rnnbot` command: the flag, then the environment, then `.env`,
then the default below. An empty value counts as unset.

`rnnbot train --resume RUN_DIR` continues a run; only the *how long* and *output* flags
(`--max-steps`, `--max-minutes`, `--stop-after`, `--eval-every`, `--log-every`, `--sample-chars`,
`--threads`, `--database-url`) may change on resume.

`rnnbot train --init-from CHECKPOINT --corpus NEW --run-dir NEW_DIR ...` fine-tunes: a new run
starts from the checkpoint's weights with a fresh optimizer and learning-rate schedule. The
vocabulary and the architecture (`--cell`, `--layers`, `--hidden`, `--embedding`) are the
checkpoint's; the vocabulary does not grow. Characters of the new corpus that it lacks are
listed with their counts at the start and read as the unknown symbol, as in generation.
"""


def render_markdown() -> str:
    lines = [HEADER]
    for f in fields(TrainConfig):
        if f.name in GROUPS:
            lines += ["", f"## {GROUPS[f.name]}", "", "| flag | default | what it does |", "|---|---|---|"]
        default = "none" if f.default is None or f.default is MISSING else f.default
        names = " ".join(f"`{n}`" for n in [flag(f.name), *f.metadata.get("aliases", ())])
        help_text = f.metadata["help"]
        if "choices" in f.metadata:
            help_text += f" ({' / '.join(f.metadata['choices'])})"
        lines.append(f"| {names} | {default} | {help_text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
