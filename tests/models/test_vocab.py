from models.vocab import UNKNOWN, Vocab


def test_vocab_is_sorted_zero_based_with_unknown_first():
    vocab = Vocab.from_text("banana\n")
    assert vocab.chars == (UNKNOWN, "\n", "a", "b", "n")
    assert vocab.encode("nab") == [4, 2, 3]


def test_round_trip_and_unknowns():
    text = "In the beginning God created the heaven and the earth.\n"
    vocab = Vocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.encode("Zé") == [0, 0]
    assert vocab.unknown_chars("Zébra Zé") == ["Z", "é"]


def test_list_round_trip():
    vocab = Vocab.from_text("xyz 😀")
    assert Vocab.from_list(vocab.to_list()) == vocab
    assert "😀" in vocab
