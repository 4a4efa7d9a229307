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

Every flag can also be set with an environment variable `RNNBOT_<NAME>` (flags win).
`rnnbot train --resume RUN_DIR` continues a run; only the *how long* and *output* flags
(`--max-steps`, `--max-minutes`, `--stop-after`, `--eval-every`, `--log-every`, `--sample-chars`,
`--threads`, `--database-url`) may change on resume.
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
