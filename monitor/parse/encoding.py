"""Decide what encoding a feed body is really in, and hand feedparser UTF-8.

Servers and feeds lie about encodings (SPEC §5, issue 5): ISO-8859-1 bytes
without a declaration, cp1251 bytes declared UTF-8, UTF-8 served as
ISO-8859-1, UTF-8 with a few stray Latin-1 bytes. feedparser follows RFC 3023
and, when every declared encoding fails, falls back to windows-1252, which
turns Cyrillic into "Ïðèâåò". Here, before feedparser runs:

1. a body that is valid UTF-8 is UTF-8, whatever is declared (8-bit text
   in another encoding is practically never valid UTF-8); else a declared
   encoding (HTTP charset, then XML declaration) that decodes the body wins;
2. otherwise mostly-valid UTF-8 is UTF-8, stray bytes read as windows-1252;
3. otherwise windows-1252, unless that reading looks like a non-Latin script
   read through the wrong code page, in which case charset-normalizer guesses.

The body is then re-encoded as UTF-8 and its declaration rewritten, so every
later step agrees on one encoding. :func:`fix_charrefs` repairs the other
way feeds spell characters wrongly: emoji as UTF-16 surrogate references.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

UTF8 = "utf-8"
_FALLBACK_ERRORS = "monitor-cp1252"
# Bytes windows-1252 leaves undefined; read as Latin-1 control characters instead of failing.
_CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")
_XML_DECL = re.compile(
    rb"^((?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\bencoding\s*=\s*)([\"'])([A-Za-z0-9._:-]+)\2"
)
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]+)\"?", re.IGNORECASE)
_SINGLE_BYTE_LATIN = frozenset(
    {"ascii", "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "mac-roman", "mac-latin2"}
    | {f"iso8859-{n}" for n in (1, 2, 3, 4, 9, 10, 13, 14, 15, 16)}
)
# What a body that is not Latin script is likely in: Cyrillic, Greek, Hebrew, Arabic, Thai, CJK.
_NON_LATIN = [
    "cp1251", "koi8_r", "koi8_u", "iso8859_5", "cp866", "mac_cyrillic", "cp1253", "iso8859_7",
    "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "gb18030", "big5", "shift_jis",
    "euc_jp", "euc_kr",
]  # fmt: skip
_WIDE = frozenset({"utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-32-be", "utf-32-le"})
_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
# Cheap trigger: hex D800-DFFF or six digits, decimal 55000-57999 or seven digits.
_SUSPECT_REF = re.compile(
    rb"&#(?:[xX]0*(?:[dD][89a-fA-F][0-9a-fA-F]{2}|[0-9a-fA-F]{6,})|0*(?:5[5-7]\d{3}|\d{7,}));"
)
_LETTER_RUN = re.compile(r"[^\W\d_]{3,}")
_INVALID_RUN = re.compile("[\udc80-\udcff]+")
_NON_ASCII = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    text = "".join(chr(b) if b in _CP1252_HOLES else bytes([b]).decode("cp1252") for b in bad)
    return text, error.end


codecs.register_error(_FALLBACK_ERRORS, _cp1252_fallback)


def to_utf8(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, dict[str, str], str | None]:
    """The body as UTF-8, headers whose content type says so, and a warning if we overrode it."""
    body = _narrow(body)
    out = dict(headers)
    media, http_charset = _content_type(out.get("content-type", ""))
    decl = _XML_DECL.match(body[:512])
    codec, errors, warning = choose_encoding(
        body, _codec(http_charset), _codec(decl.group(3).decode("ascii")) if decl else None
    )
    if codec != UTF8 or errors != "strict":
        body = body.decode(codec, errors).encode(UTF8)
    if decl and decl.group(3).lower() not in (b"utf-8", b"utf8"):
        body = _XML_DECL.sub(rb"\1\2utf-8\2", body, count=1)
    # feedparser follows the charset of text/* and XML types (RFC 3023), defaults a missing
    # Content-Type to ISO-8859-1, and reads anything else by the (now UTF-8) declaration.
    if not media or media.startswith("text/") or "xml" in media:
        out["content-type"] = f"{media or 'application/xml'}; charset=utf-8"
    return body, out, warning


def fix_charrefs(body: bytes) -> bytes:
    """Numeric character references that name no character, rewritten so parsers accept them.

    Broken encoders write an emoji as two UTF-16 surrogates (``&#55357;&#56832;``);
    expat refuses those and feedparser's fallback parser crashes on them.
    A surrogate pair becomes the character it encodes, and a lone surrogate
    or a number beyond U+10FFFF becomes U+FFFD.
    """
    if not _SUSPECT_REF.search(body):
        return body
    parts: list[bytes] = []
    done = 0  # body[:done] is already in parts
    refs = list(_REF.finditer(body))
    i = 0
    while i < len(refs):
        ref = refs[i]
        value = _ref_value(ref)
        if 0xD800 <= value <= 0xDBFF and i + 1 < len(refs) and refs[i + 1].start() == ref.end():
            low = _ref_value(refs[i + 1])
            if 0xDC00 <= low <= 0xDFFF:
                parts += (
                    body[done : ref.start()],
                    b"&#%d;" % (0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)),
                )
                done = refs[i + 1].end()
                i += 2
                continue
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            parts += (body[done : ref.start()], b"&#xFFFD;")
            done = ref.end()
        i += 1
    parts.append(body[done:])
    return b"".join(parts)


def _ref_value(ref: re.Match[bytes]) -> int:
    hex_digits, decimal = ref.groups()
    return int(hex_digits, 16) if hex_digits is not None else int(decimal)


def choose_encoding(
    body: bytes, http_charset: str | None, xml_charset: str | None
) -> tuple[str, str, str | None]:
    """``(codec, errors, warning)`` to decode an ASCII-compatible body with; see the module doc."""
    if body.isascii():
        return UTF8, "strict", None
    declared = [c for c in (http_charset, xml_charset) if c and c not in _WIDE]
    if _decodes(body, UTF8):
        # Decisive: 8-bit text in any other encoding is practically never valid UTF-8.
        lied = declared and UTF8 not in declared
        return UTF8, "strict", f"declared {declared[0]} but the body is UTF-8" if lied else None
    for codec in declared:
        if codec != UTF8 and _decodes(body, codec):
            if codec in _SINGLE_BYTE_LATIN and (guess := _non_latin_guess(body, codec)):
                return guess, "strict", f"declared {codec} but the body looks like {guess}"
            return codec, "strict", None
    if declared:
        said = f"the body is not in its declared {declared[0]}"
    else:
        said = "the body is not UTF-8 and declares no encoding"
    text = body.decode(UTF8, "surrogateescape")
    invalid = len(_INVALID_RUN.findall(text))
    if len(_NON_ASCII.findall(text)) >= invalid:
        return (
            UTF8,
            _FALLBACK_ERRORS,
            f"{said}; decoded as UTF-8, {invalid} invalid byte runs as cp1252",
        )
    guess = _non_latin_guess(body, "cp1252") or "cp1252"
    errors = _FALLBACK_ERRORS if guess == "cp1252" else "replace"
    return guess, errors, f"{said}; decoded as {guess}"


def _non_latin_guess(body: bytes, latin: str) -> str | None:
    """A better encoding when reading ``body`` as ``latin`` gives words of accented letters only.

    Cyrillic in cp1251 read as cp1252 gives "Ïðèâåò": words with no ASCII
    letter at all. Real Latin-script text (Portuguese, German) puts its
    accented letters inside mostly ASCII words.
    """
    text = body.decode(latin, _FALLBACK_ERRORS)
    accented_only = mixed = 0
    for word in _LETTER_RUN.findall(text):
        if word.isascii():
            continue
        if any(c.isascii() for c in word):
            mixed += 1
        else:
            accented_only += 1
    if accented_only <= mixed:
        return None
    try:
        # Optional: installed with Apprise (through requests); without it we keep cp1252.
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    best = from_bytes(body, cp_isolation=_NON_LATIN).best()
    guess = _codec(best.encoding) if best else None
    if guess is None or guess in _SINGLE_BYTE_LATIN or guess in _WIDE:
        return None
    return guess if _decodes(body, guess) else None


def _narrow(body: bytes) -> bytes:
    """UTF-16/32 bodies (by BOM or by the bytes of ``<?``) re-encoded as UTF-8.

    Everything after this step can look for ASCII markup bytes such as
    ``<!ENTITY`` without knowing the encoding.
    """
    for marks, codec in (
        ((codecs.BOM_UTF32_BE, codecs.BOM_UTF32_LE, b"\0\0\0<", b"<\0\0\0"), "utf-32"),
        ((codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE), "utf-16"),
        ((b"\0<\0?",), "utf-16-be"),
        ((b"<\0?\0",), "utf-16-le"),
    ):
        if body.startswith(marks):
            if codec == "utf-32" and not body.startswith(marks[:2]):
                codec = "utf-32-be" if body.startswith(b"\0") else "utf-32-le"
            text = body.decode(codec, "replace")
            return _XML_DECL.sub(rb"\1\2utf-8\2", text.encode(UTF8), count=1)
    return body


def _content_type(value: str) -> tuple[str, str | None]:
    media = value.split(";", 1)[0].strip().lower()
    match = _CHARSET.search(value)
    return media, match.group(1) if match else None


def _codec(name: str | None) -> str | None:
    """Python's canonical codec name for a declared charset, or None if unknown."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # GB2312 declarations routinely cover GBK/GB18030 text; the superset decodes both.
    return "gb18030" if codec in ("gb2312", "gbk") else codec


def _decodes(body: bytes, codec: str) -> bool:
    try:
        body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True
