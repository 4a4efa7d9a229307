import json

import pytest

from trainer.corpora import Corpus, CorpusError, format_verse, kjv_path, load_corpus, python_source_files


def test_kjv_verses_in_rnn_bible_format():
    corpus = load_corpus("kjv")
    lines = corpus.text.splitlines()
    assert len(lines) == 31_103
    assert lines[0] == "1:1 In the beginning God created the heaven and the earth."
    assert lines[2] == "1:3 And God said, Let there be light: and there was light."
    assert lines[-1].startswith("22:21 The grace of our Lord Jesus Christ")
    assert len(corpus.text) == 4_303_159


def test_kjv_with_book_names():
    with kjv_path().open(encoding="utf-8") as f:
        verse = json.loads(f.readline())
    assert format_verse(verse, book_names=True) == (
        "Genesis 1:1 In the beginning God created the heaven and the earth.\n")
    assert load_corpus("kjv", book_names=True).text.startswith("Genesis 1:1 In the beginning")


def test_split_is_contiguous_tail():
    train, val = Corpus("x", "abcdefghij" * 10).split(0.1)
    assert train + val == "abcdefghij" * 10
    assert len(val) == 10


def test_text_file_directory_and_glob(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("beta", encoding="utf-8")
    assert load_corpus(str(tmp_path / "a.txt")).text == "alpha\n"
    assert load_corpus(str(tmp_path)).text == "alpha\nbeta\n"
    assert load_corpus(str(tmp_path / "**" / "*.txt")).text == "alpha\nbeta\n"


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok line\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt: not valid UTF-8 \(byte 11, line 2\)"):
        load_corpus(str(bad))


def test_empty_and_unknown_corpora(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty.txt: corpus is empty"):
        load_corpus(str(empty))
    with pytest.raises(CorpusError, match="unknown corpus 'shakespeare'"):
        load_corpus("shakespeare")
    with pytest.raises(CorpusError, match="matches no files"):
        load_corpus(str(tmp_path / "*.md"))


def test_python_src_is_stdlib_code_without_tests():
    files = python_source_files()
    names = {f.name for f in files}
    assert {"os.py", "argparse.py", "textwrap.py"} <= names
    assert not any("test" in f.parts[-2:-1] for f in files)
    assert len(files) > 300
