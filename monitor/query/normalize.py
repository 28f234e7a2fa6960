"""Words and numbers, as queries and entries both see them (SPEC §4).

One tokeniser serves both sides so that a query term and a word of an entry
are compared the same way:

- A *token* is a run of letters, digits and combining marks, with inner
  apostrophes kept ("drone's", "don't"). Everything else separates tokens, so a
  term never matches inside another word, and "North-Korean" is two tokens.
- A *number* token keeps its digit groups and decimals intact ("1,200",
  "11,000", "2.5") and may carry a scale suffix ("2.5m", "$5bn", "10k").
- Tokens are found in the *original* text, so their character offsets point
  into the field as given, whatever NFKC or case folding later does to their
  length. Only then is each token *folded*: NFKC, case folded, accents and
  other diacritics removed, curly apostrophes made straight.
- The *key* of a token is the English Snowball stem of its folded form; equal
  keys are what makes "drone" find "drones" and "drone's".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer


def _mark_ranges() -> str:
    """Regex ranges of every combining mark in the Basic Multilingual Plane.

    Python's ``\\w`` leaves combining marks out, so a decomposed "é" or a
    Devanagari vowel sign would cut a word in two without them.
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x300, 0x10000):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)


# Soft hyphen and zero-width joiners glue a word together rather than split it;
# html_to_text removes them, but match_fields may be given raw text.
_JOINERS = "\u00ad\u200c\u200d\u2060"
_MARKS = _mark_ranges()
_W = f"[\\w{_MARKS}]"
_WJ = f"[\\w{_MARKS}{_JOINERS}]"
SCALE_SUFFIXES = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "million": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "trillion": 1e12,
}
# Words that scale the number just before them: "2.5 million", "11 thousand".
SCALE_WORDS = {
    "thousand": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "trillion": 1e12,
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SUFFIX = "|".join(sorted(SCALE_SUFFIXES, key=len, reverse=True))
# A number must not run on into letters ("10km" is one word, "F16" too), but
# may end in a scale suffix ("2.5m", "5bn").
TOKEN_RE = re.compile(
    rf"(?:{_NUMBER})(?:{_SUFFIX})?(?!{_W})|{_W}{_WJ}*(?:['’]{_W}{_WJ}*)*",
)
NUMBER_RE = re.compile(rf"((?:{_NUMBER}))({_SUFFIX})?")

# Letters NFKD does not decompose but readers treat as accented Latin.
_LETTERS = str.maketrans(
    {
        "’": "'",
        "ʼ": "'",
        "‘": "'",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
        "ı": "i",
        "\u00ad": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
    }
)
# Diacritics that fold away: the combining-diacritic blocks (Latin, Greek,
# Cyrillic accents), Hebrew points and Arabic harakat. Marks that are letters of
# their script (Devanagari vowel signs, Thai vowels) are kept.
_DIACRITIC = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05c7\u064b-\u065f\u0670]"
)

_STEMMER = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def fold(raw: str) -> str:
    """Fold one token for comparison: NFKC, case fold, accents off, digit groups joined.

    >>> fold("Zélensky"), fold("KYIV"), fold("1,200"), fold("drone’s")
    ('zelensky', 'kyiv', '1200', "drone's")
    """
    if raw.isascii():
        text = raw.lower()
    else:
        text = unicodedata.normalize("NFKC", raw).casefold().translate(_LETTERS)
        text = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize("NFC", _DIACRITIC.sub("", text))
    if "," in text and text[:1].isdigit():
        # "1,200" and "1200" are the same number; only digit groups hold commas.
        text = text.replace(",", "")
    return text


@lru_cache(maxsize=65536)
def key(raw: str) -> str:
    """The comparison key of a token: the English stem of its folded form.

    >>> key("Drones"), key("drone's"), key("Ukrainian")
    ('drone', 'drone', 'ukrainian')
    """
    folded = fold(raw)
    if folded[:1].isdigit():
        return folded
    return str(_STEMMER.stemWord(folded))


def number_value(raw: str) -> float | None:
    """The value of a number token ("11,000", "2.5m"), or None when it is a word."""
    found = NUMBER_RE.fullmatch(fold(raw))
    if found is None:
        return None
    try:
        value = float(found.group(1))
    except ValueError:
        return None
    scale = found.group(2)
    return value * SCALE_SUFFIXES[scale] if scale else value


def has_scale(raw: str) -> bool:
    """Whether a number token already carries its scale ("2.5m"), so no scale word follows."""
    found = NUMBER_RE.fullmatch(fold(raw))
    return found is not None and found.group(2) is not None


def scale_word(raw: str) -> float | None:
    """The multiplier a word applies to the number before it ("million"), if any."""
    return SCALE_WORDS.get(fold(raw))


@dataclass(frozen=True, slots=True)
class Token:
    """One word or number of a text, with where it sits in the original string."""

    raw: str  # as written
    start: int  # character offsets into the original text
    end: int
    folded: str
    key: str


def tokenize(text: str) -> list[Token]:
    """Every token of a plain-text string, in order, with offsets into ``text``.

    Markup is not removed here: callers with HTML pass it through
    :func:`monitor.text.html_to_text` first, so offsets refer to that text.
    """
    return [
        Token(m.group(), m.start(), m.end(), fold(m.group()), key(m.group()))
        for m in TOKEN_RE.finditer(text)
    ]
