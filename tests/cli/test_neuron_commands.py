"""`rnnbot neurons show` and `rnnbot neurons find` end to end, with clear errors for bad cells."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from neurons.png import png_size
from tests.fixtures.runs import quotes_text
from tests.helpers import png_dimensions, run_cli


@pytest.fixture
def run_copy(quotes_run, tmp_path):
    """A private copy of the trained run, so that neurons.json written here stays here."""
    import shutil

    return shutil.copytree(quotes_run, tmp_path / "run")


def test_show_writes_html_and_png(run_copy, tmp_path, capsys):
    text = 'ab "tuv" <cd>\nfe'
    out = tmp_path / "pics" / "quote"
    assert main(["neurons", "show", "--checkpoint", str(run_copy), "--prime", text, "--layer", "0",
                 "--cell", "3", "--top5", "--width", "10", "--out", str(out)]) == 0
    assert "layer 0, cell 3 (tanh_c)" in capsys.readouterr().out
    page = (tmp_path / "pics" / "quote.html").read_text(encoding="utf-8")
    assert "&lt;cd&gt;" not in page and ">&lt;</b>" in page  # escaped, one character per cell
    assert page.count('<span class="k">') == len(text)
    png = (tmp_path / "pics" / "quote.png").read_bytes()
    assert png_dimensions(png) == png_size(text, 10, guesses=True)


def test_show_reads_a_file_and_warns_about_unknown_characters(run_copy, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text('ab "Q" cd\n', encoding="utf-8")
    assert main(["neurons", "show", "--checkpoint", str(run_copy), "--text", str(source), "--layer", "0",
                 "--cell", "0", "--value", "h", "--out", str(tmp_path / "x")]) == 0
    assert "never seen 'Q'" in capsys.readouterr().err
    assert png_dimensions((tmp_path / "x.png").read_bytes()) == png_size('ab "Q" cd\n', 80)


@pytest.mark.parametrize("flags, message", [
    (["--layer", "1", "--cell", "0"], "layer 1 is out of range: this model has 1 layer (0-0)"),
    (["--layer", "0", "--cell", "32"], "cell 32 is out of range: each layer has 32 cells (0-31)"),
    (["--layer", "-1", "--cell", "0"], "layer -1 is out of range"),
    (["--layer", "0"], "pass both --layer and --cell"),
    ([], "run `rnnbot neurons find` on this checkpoint first"),
])
def test_show_rejects_bad_cells_clearly(run_copy, tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert main(["neurons", "show", "--checkpoint", str(run_copy), "--prime", "ab", *flags,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnbot: error: ") and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("never*"))  # nothing written


def test_find_prints_the_table_writes_the_gallery_and_remembers_the_cell(run_copy, tmp_path, capsys):
    held_out = tmp_path / "held_out.txt"
    held_out.write_text(quotes_text(60, seed=1), encoding="utf-8")
    corpus = json.loads((run_copy / "best.json").read_text())["corpus"]
    # The training corpus gives its validation split; that split is only 40 lines here, so also
    # measure on a fresh file to show any text works.
    assert main(["neurons", "find", "--checkpoint", str(run_copy), "--corpus", str(held_out),
                 "--streams", "4", "--out", str(tmp_path / "gallery")]) == 0
    out, err = capsys.readouterr()
    assert f"reading the text: {len(held_out.read_text(encoding='utf-8')):,} chars…" in err  # progress
    row = next(line for line in out.splitlines() if line.startswith("in_quotes"))
    assert abs(float(row.split()[3])) >= 0.9
    assert "most interpretable:" in out and "(in_quotes)" in out
    page = (tmp_path / "gallery" / "index.html").read_text(encoding="utf-8")
    assert 'id="in_quotes"' in page and (tmp_path / "gallery" / "in_quotes.png").is_file()
    assert not (run_copy / "neurons.json").exists()  # another corpus: not this model's own choice

    assert main(["neurons", "find", "--checkpoint", str(run_copy), "--corpus", corpus, "--streams", "2"]) == 0
    out = capsys.readouterr().out
    assert "validation split" in out and f"saved: {run_copy / 'neurons.json'}" in out
    assert (run_copy / "neurons" / "index.html").is_file()
    # show without --layer/--cell now draws the saved cell
    assert main(["neurons", "show", "--checkpoint", str(run_copy), "--prime", 'a "tu" b',
                 "--out", str(tmp_path / "auto")]) == 0
    page = (tmp_path / "auto.html").read_text(encoding="utf-8")
    assert "chosen for this text among the cells neurons find saved: inside double quotes" in page


def test_find_errors(run_copy, tmp_path, capsys):
    # through the installed entry point once, as a user runs it
    result = run_cli("neurons", "find", "--checkpoint", str(run_copy), "--corpus", str(tmp_path / "missing.txt"))
    assert result.returncode == 2
    assert "rnnbot: error: unknown corpus" in result.stderr and "Traceback" not in result.stderr
    assert main(["neurons", "find", "--checkpoint", str(run_copy), "--chars", "5"]) == 2
    assert "--chars must be at least 100" in capsys.readouterr().err
    assert main(["neurons", "find", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
