"""Text normalisation shared by queries and entries: tokens, folding, stems and numbers."""

from __future__ import annotations

import pytest

from monitor.query.normalize import fold, key, number_value, scale_word, tokenize


def test_tokens_keep_numbers_whole_and_split_on_punctuation() -> None:
    """Digit groups and decimals stay one token; hyphens, dashes and commas between words split."""
    text = "11,000 North-Korean troops—2.5 million, 1,200 or 3,4; drone's F-16 10km $5bn"
    assert [t.raw for t in tokenize(text)] == [
        "11,000",
        "North",
        "Korean",
        "troops",
        "2.5",
        "million",
        "1,200",
        "or",
        "3",
        "4",
        "drone's",
        "F",
        "16",
        "10km",
        "5bn",
    ]


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("KYIV", "kyiv"),
        ("Zélensky", "zelensky"),
        ("Ze\u0301lensky", "zelensky"),
        ("ＫＹＩＶ", "kyiv"),
        ("ﬁnal", "final"),
        ("Straße", "strasse"),
        ("Łódź", "lodz"),
        ("drone’s", "drone's"),
        ("dro\u00adnes", "drones"),
        ("1,200", "1200"),
        ("2.5M", "2.5m"),
        ("Київ", "киів"),
        ("हिंदी", "हिंदी"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    """Folding applies NFKC, case folding and accent removal, and joins digit groups."""
    assert fold(raw) == folded


@pytest.mark.parametrize(
    ("raw", "stem"),
    [
        ("drones", "drone"),
        ("drone's", "drone"),
        ("Drone’s", "drone"),
        ("training", "train"),
        ("1,200", "1200"),
    ],
)
def test_keys_are_english_stems(raw: str, stem: str) -> None:
    """A token's key is the Snowball English stem of its folded form (numbers are not stemmed)."""
    assert key(raw) == stem


def test_offsets_point_into_the_original_text_when_folding_changes_length() -> None:
    """Token offsets point into the text as given, even where NFKC or folding change lengths."""
    text = "ﬁnal İstanbul Straße Ze\u0301lensky ＫＹＩＶ"
    tokens = tokenize(text)
    assert [text[t.start : t.end] for t in tokens] == [t.raw for t in tokens]
    assert [t.folded for t in tokens] == ["final", "istanbul", "strasse", "zelensky", "kyiv"]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("135", 135.0),
        ("1,200", 1200.0),
        ("11,000", 11000.0),
        ("2.5", 2.5),
        ("2.5m", 2.5e6),
        ("5bn", 5e9),
        ("10k", 1e4),
        ("10km", None),
        ("drone", None),
        ("١٢", 12.0),
    ],
)
def test_number_values(raw: str, value: float | None) -> None:
    """Number tokens have a value, scale suffixes included; words have none."""
    assert number_value(raw) == value


def test_scale_words() -> None:
    """Only true scale words multiply the number before them."""
    assert scale_word("Million") == 1e6
    assert scale_word("thousand") == 1e3
    assert scale_word("bn") == 1e9
    assert scale_word("millions") is None
    assert scale_word("m") is None
