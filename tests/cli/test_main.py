"""The `rnnbot` command line itself: a mistyped flag is answered by its subcommand."""

from __future__ import annotations

import pytest

from cli.main import main
from tests.helpers import run_cli


def test_a_mistyped_flag_gets_the_subcommands_usage_and_the_closest_flag(trained_run):
    proc = run_cli("sample", "--checkpoint", str(trained_run), "--temprature", "0.5")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("usage: rnnbot sample [-h] [--checkpoint CHECKPOINT]")
    assert proc.stderr.splitlines()[-1] == ("rnnbot sample: error: unrecognized arguments: --temprature 0.5 "
                                            "(did you mean --temperature?)")


@pytest.mark.parametrize("args, usage, error", [
    (["neurons", "show", "--checkpoint", "x", "--prime", "a", "--out", "p", "--widht", "3"],
     "usage: rnnbot neurons show ", "unrecognized arguments: --widht 3 (did you mean --width?)"),
    (["eval", "--checkpoint=x", "--corpsu=kjv"], "usage: rnnbot eval ",
     "unrecognized arguments: --corpsu=kjv (did you mean --corpus?)"),
    (["neurons", "find", "--chras", "500"], "usage: rnnbot neurons find ",
     "the following arguments are required: --checkpoint; --chras is not a flag of rnnbot neurons find "
     "(did you mean --chars?)"),
    (["sample", "--checkpoint", "x", "--zzzzzz"], "usage: rnnbot sample ",
     "unrecognized arguments: --zzzzzz (rnnbot sample has no --zzzzzz)"),
])
def test_flag_errors_name_the_subcommand(args, usage, error, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(args)
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert err.splitlines()[-1].split(": error: ", 1)[1] == error


def test_abbreviated_flags_still_work(capsys):
    # argparse accepts unambiguous prefixes; they are not typos.
    assert main(["eval", "--check", "/nonexistent/run"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
