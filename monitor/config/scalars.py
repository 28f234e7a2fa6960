"""Where a character of a YAML string scalar stands in the file.

A query's syntax error comes with a column into the query text; the user wants
the column in the file. For the scalar styles a query or template is written
in — plain, 'single', "double" on one line, or a ``|`` literal block — the
source is read back from the scalar's start and decoded alongside, so each
character of the value gets its own line and column. Anything else (folded
blocks, plain scalars spread over lines) gives None and callers fall back to
the scalar's start.
"""

from __future__ import annotations

# YAML 1.2 §5.7: escapes that stand for one character, after the backslash.
_SIMPLE_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def offset_position(
    lines: list[str], line: int, column: int, style: str, value: str, offset: int
) -> tuple[int, int] | None:
    """The 0-based (line, column) of ``value[offset]`` for a scalar starting at (line, column).

    ``value`` is the scalar's text as YAML decoded it; ``offset`` may equal
    ``len(value)`` (an error "at the end"). None when the source cannot be
    matched to the value.
    """
    if not 0 <= offset <= len(value) or not 0 <= line < len(lines):
        return None
    if style == "plain":
        columns = _plain(lines[line], column, value)
    elif style == "'":
        columns = _single_quoted(lines[line], column, value)
    elif style == '"':
        columns = _double_quoted(lines[line], column, value)
    elif style == "|":
        return _literal(lines, line, value, offset)
    else:
        return None
    return None if columns is None else (line, columns[offset])


def _plain(source: str, column: int, value: str) -> list[int] | None:
    if source[column : column + len(value)] != value:
        return None  # a plain scalar continued on the next lines
    return list(range(column, column + len(value) + 1))


def _single_quoted(source: str, column: int, value: str) -> list[int] | None:
    if source[column : column + 1] != "'":
        return None
    columns, decoded, index = [], [], column + 1
    while index < len(source):
        if source[index] == "'":
            if source[index + 1 : index + 2] != "'":
                break  # the closing quote
            index += 1  # '' stands for one '
        columns.append(index)
        decoded.append(source[index])
        index += 1
    else:
        return None  # the scalar goes on to the next line
    columns.append(index)
    return columns if "".join(decoded) == value else None


def _double_quoted(source: str, column: int, value: str) -> list[int] | None:
    if source[column : column + 1] != '"':
        return None
    columns, decoded, index = [], [], column + 1
    while index < len(source) and source[index] != '"':
        columns.append(index)
        if source[index] != "\\":
            decoded.append(source[index])
            index += 1
            continue
        escape = source[index + 1 : index + 2]
        if escape in _SIMPLE_ESCAPES:
            decoded.append(_SIMPLE_ESCAPES[escape])
            index += 2
        elif escape in _HEX_ESCAPES:
            digits = source[index + 2 : index + 2 + _HEX_ESCAPES[escape]]
            try:
                decoded.append(chr(int(digits, 16)))
            except ValueError:
                return None
            index += 2 + len(digits)
        else:
            return None  # a line continuation, or an escape YAML rejects
    if index >= len(source):
        return None
    columns.append(index)
    return columns if "".join(decoded) == value else None


def _literal(lines: list[str], line: int, value: str, offset: int) -> tuple[int, int] | None:
    # The content starts on the line after the "|" indicator, indented by the
    # indentation of its first non-empty line.
    body = value.split("\n")
    first = next((text for text in lines[line + 1 :] if text.strip()), None)
    if first is None:
        return None
    indent = len(first) - len(first.lstrip(" "))
    for number, text in enumerate(body):
        source_line = line + 1 + number
        if text and (source_line >= len(lines) or lines[source_line][indent:] != text):
            return None
    if offset == len(value) and value.endswith("\n"):
        offset -= 1  # "at the end": after the last character, not on the line below
    row = value.count("\n", 0, offset)
    column = offset - (value.rfind("\n", 0, offset) + 1)
    return line + 1 + row, indent + column
