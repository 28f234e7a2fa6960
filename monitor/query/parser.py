"""Query text to a tree of :mod:`monitor.query.nodes` (SPEC §4).

Grammar, loosest binding first::

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*          juxtaposition is AND
    near    := unary ("NEAR/n" unary)*       left to right
    unary   := ("NOT" | "-") unary | ("title:" | "summary:") unary | primary
    primary := word | word* | "phrase" | >=N | >N | <=N | <N | @topic | "(" or ")"

Operators are upper-case only, as in web search engines; ``and``, ``or`` and
``not`` written in lower case are refused with a hint rather than searched
for as words (a rule "drones or missiles" would otherwise demand the word
"or" and quietly miss almost everything). Curly quotes and typographic
dashes, which editors and chat tools substitute, work like their ASCII forms.
Every error is a :class:`~monitor.errors.QuerySyntaxError` with the 1-based
column and what was expected there.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from monitor.errors import QuerySyntaxError
from monitor.query.nodes import (
    FIELDS,
    And,
    Compare,
    FieldName,
    Near,
    Node,
    Not,
    Op,
    Or,
    Phrase,
    Prefix,
    Query,
    Scope,
    TopicRef,
    Word,
)
from monitor.query.normalize import TOKEN_RE, fold, key, number_value

MAX_NEAR = 1000
# Same length in and out, so columns found in the cleaned text are the user's.
_TYPOGRAPHY = str.maketrans(
    {
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "«": '"',
        "»": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
_SPACE = re.compile(r"\s+")
_CHUNK = re.compile(r'[^\s()"]+')
_FIELD = re.compile(r"([A-Za-z]+):")
_TOPIC = re.compile(r"@([\w.\-]+)")
_COMPARE = re.compile(r"(>=|<=|>|<)\s*([^\s()\"]*)")
_NEAR = re.compile(r"NEAR(?:/(\d*))?", re.IGNORECASE)
_CONFUSED = {"&&": "AND", "&": "AND", "||": "OR", "|": "OR", "!": "NOT"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # ( ) WORD PHRASE CMP TOPIC FIELD AND OR NOT - NEAR END
    text: str
    column: int
    node: Node | None = None
    number: int = 0


class _Lexer:
    def __init__(self, query: str) -> None:
        self.query = query
        self.text = query.translate(_TYPOGRAPHY)
        self.topics: list[str] = []

    def error(self, message: str, column: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, column)

    def tokens(self) -> list[_Tok]:
        text, pos, out = self.text, 0, []
        while True:
            space = _SPACE.match(text, pos)
            if space:
                pos = space.end()
            if pos >= len(text):
                out.append(_Tok("END", "end of query", len(text) + 1))
                return out
            tok, pos = self._one(text, pos)
            out.append(tok)

    def _one(self, text: str, pos: int) -> tuple[_Tok, int]:
        char, col = text[pos], pos + 1
        if char in "()":
            return _Tok(char, f"'{char}'", col), pos + 1
        if char == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                raise self.error(
                    f"expected '\"' to close the phrase opened at column {col}", len(text) + 1
                )
            return self._phrase(pos, close), close + 1
        if char == "-":
            if pos + 1 >= len(text) or text[pos + 1].isspace() or text[pos + 1] == ")":
                raise self.error("expected a term right after '-', e.g. -sport", col)
            return _Tok("NOT", "'-'", col), pos + 1
        if char == "@":
            topic = _TOPIC.match(text, pos)
            if not topic:
                raise self.error("expected a topic name after '@', e.g. @ukraine-war", col)
            name = topic.group(1)
            self.topics.append(name)
            return _Tok("TOPIC", topic.group(), col, TopicRef(name, col)), topic.end()
        if char in "<>":
            return self._compare(text, pos)
        field = _FIELD.match(text, pos)
        if field:
            name = field.group(1).lower()
            if name in FIELDS:
                return _Tok("FIELD", field.group(), col), field.end()
            after = field.end()
            if after < len(text) and not text[after].isspace():
                hint = difflib.get_close_matches(name, list(FIELDS), n=1)
                suggestion = f"; did you mean {hint[0]}:" if hint else ""
                raise self.error(
                    f"unknown field {field.group(1)!r} (fields are title: and summary:)"
                    + suggestion,
                    col,
                )
        chunk = _CHUNK.match(text, pos)
        assert chunk is not None  # not a space, quote or parenthesis, so one char at least
        return self._word(chunk.group(), col), chunk.end()

    def _word(self, raw: str, col: int) -> _Tok:
        if raw in ("AND", "OR", "NOT"):
            return _Tok(raw, raw, col)
        if raw.lower() in ("and", "or", "not"):
            raise self.error(
                f"{raw!r} is not an operator: write {raw.upper()} in capitals, "
                f'or quote a phrase that holds it, e.g. "war {raw} peace"',
                col,
            )
        near = _NEAR.fullmatch(raw)
        # A lone lower-case "near" is a word ("strikes near Kyiv"); with a slash it is a typo.
        if near and (raw.startswith("NEAR") or "/" in raw):
            if not raw.startswith("NEAR"):
                raise self.error(f"write NEAR in capitals: NEAR/{near.group(1) or 5}", col)
            if not near.group(1):
                raise self.error("NEAR needs a distance, e.g. NEAR/5", col)
            distance = int(near.group(1))
            if not 1 <= distance <= MAX_NEAR:
                raise self.error(f"NEAR distance must be between 1 and {MAX_NEAR}", col)
            return _Tok("NEAR", raw, col, number=distance)
        if raw in _CONFUSED:
            raise self.error(f"{raw!r} is not an operator here: write {_CONFUSED[raw]}", col)
        return _Tok("WORD", raw, col, self._leaf(raw, col))

    def _leaf(self, raw: str, col: int) -> Node:
        """A bare word: a Word, a Prefix, or a Phrase of its tokens (north-korean)."""
        star = raw.find("*")
        body = raw
        if star >= 0:
            if star != len(raw) - 1:
                raise self.error(
                    "'*' may only end a word, to find words starting with it, e.g. drone*",
                    col + star,
                )
            body = raw[:-1]
        if TOKEN_RE.fullmatch(body):
            # The common case, one plain word: no need to cut it up.
            return Prefix(raw, fold(body), col) if star >= 0 else Word(raw, key(body), col)
        tokens = list(TOKEN_RE.finditer(body))
        if not tokens:
            if star >= 0:
                raise self.error("'*' needs letters before it, e.g. drone*", col + star)
            raise self.error(f"{raw!r} has no letters or digits to search for", col)
        first, last = tokens[0], tokens[-1]
        if star >= 0 and last.end() != len(body):
            raise self.error("'*' must directly follow the letters it extends", col + star)
        text = raw[first.start() :] if star >= 0 else raw[first.start() : last.end()]
        parts: list[Word | Prefix] = [Word(t[0], key(t[0]), col + t.start()) for t in tokens]
        if star >= 0:
            parts[-1] = Prefix(last[0] + "*", fold(last[0]), col + last.start())
        if len(parts) == 1:
            part = parts[0]
            if isinstance(part, Prefix):
                return Prefix(text, part.prefix, col + first.start())
            return Word(text, part.key, col + first.start())
        return Phrase(text, tuple(parts), col + first.start())

    def _phrase(self, open_at: int, close_at: int) -> _Tok:
        col = open_at + 1
        inner = self.text[open_at + 1 : close_at]
        text = self.query[open_at : close_at + 1]
        tokens = list(TOKEN_RE.finditer(inner))
        if not tokens:
            raise self.error("empty phrase: put words between the quotes", col)
        parts: list[Word | Prefix] = []
        ends = {t.end() for t in tokens}
        for i, char in enumerate(inner):
            if char == "*" and i not in ends:
                raise self.error("'*' must directly follow the letters it extends", col + 1 + i)
        for t in tokens:
            raw, at = t[0], col + 1 + t.start()
            if inner[t.end() : t.end() + 1] == "*":
                parts.append(Prefix(raw + "*", fold(raw), at))
            else:
                parts.append(Word(raw, key(raw), at))
        node: Node
        if len(parts) == 1:
            only = parts[0]
            node = (
                Prefix(text, only.prefix, col)
                if isinstance(only, Prefix)
                else Word(text, only.key, col)
            )
        else:
            node = Phrase(text, tuple(parts), col)
        return _Tok("PHRASE", text, col, node)

    def _compare(self, text: str, pos: int) -> tuple[_Tok, int]:
        found = _COMPARE.match(text, pos)
        assert found is not None  # text[pos] is '<' or '>'
        op, number = found.group(1), found.group(2)
        value = number_value(number) if number and number[0].isdigit() else None
        if value is None:
            raise self.error(
                f"expected a number after '{op}', e.g. {op}100, {op}1,000 or {op}2.5m",
                found.start(2) + 1,
            )
        written = self.query[pos : found.end()]
        node = Compare(written, _op(op), value, pos + 1)
        if op == "<" and value <= 0:
            raise self.error("no number in a text is below 0, so '<0' never matches", pos + 1)
        return _Tok("CMP", written, pos + 1, node), found.end()


def _op(text: str) -> Op:
    if text == ">=":
        return ">="
    if text == "<=":
        return "<="
    return ">" if text == ">" else "<"


_STARTS = frozenset({"(", "WORD", "PHRASE", "CMP", "TOPIC", "FIELD", "NOT"})


class _Parser:
    def __init__(self, query: str) -> None:
        self.lexer = _Lexer(query)
        self.toks = self.lexer.tokens()
        self.at = 0

    def peek(self) -> _Tok:
        return self.toks[self.at]

    def take(self) -> _Tok:
        tok = self.toks[self.at]
        self.at += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "END":
            raise self.lexer.error("empty query: write the words to look for", 1)
        node = self.or_()
        tok = self.peek()
        if tok.kind == ")":
            raise self.lexer.error("unexpected ')': no '(' is open", tok.column)
        assert tok.kind == "END", tok  # every other token starts or continues a term
        return node

    def or_(self) -> Node:
        first = self.and_(None)
        items = [first]
        while self.peek().kind == "OR":
            self.take()
            items.append(self.and_("OR"))
        return items[0] if len(items) == 1 else Or(tuple(items), _col(first))

    def and_(self, after: str | None) -> Node:
        first = self.near(after)
        items = [first]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.take()
                items.append(self.near("AND"))
            elif kind in _STARTS:
                items.append(self.near(None))
            else:
                break
        return items[0] if len(items) == 1 else And(tuple(items), _col(first))

    def near(self, after: str | None) -> Node:
        node = self.unary(after)
        while self.peek().kind == "NEAR":
            op = self.take()
            right = self.unary(op.text)
            node = Near(node, right, op.number, op.column)
        return node

    def unary(self, after: str | None) -> Node:
        tok = self.peek()
        if tok.kind == "NOT":
            self.take()
            return Not(self.unary(tok.text), tok.column)
        if tok.kind == "FIELD":
            self.take()
            field: FieldName = "title" if tok.text.lower() == "title:" else "summary"
            return Scope(field, self.unary(tok.text), tok.column)
        return self.primary(after)

    def primary(self, after: str | None) -> Node:
        tok = self.take()
        if tok.node is not None:
            return tok.node
        if tok.kind == "(":
            if self.peek().kind == ")":
                raise self.lexer.error("empty parentheses: put a term inside", tok.column)
            if self.peek().kind == "END":
                raise self.lexer.error(
                    "expected a word, phrase or '(' after '(', found the end of the query",
                    self.peek().column,
                )
            node = self.or_()
            close = self.peek()
            if close.kind != ")":
                raise self.lexer.error(
                    f"expected ')' to close '(' at column {tok.column}", close.column
                )
            self.take()
            return node
        if after is None and tok.kind in ("AND", "OR", "NEAR"):
            raise self.lexer.error(f"{tok.text} needs a term on its left", tok.column)
        if after is None and tok.kind == ")":
            raise self.lexer.error("unexpected ')': no '(' is open", tok.column)
        found = "the end of the query" if tok.kind == "END" else tok.text
        # ``after`` is None at the start of a group: "(" (or the query) is what came before.
        where = f"after {after}" if after is not None else "here"
        raise self.lexer.error(f"expected a word, phrase or '(' {where}, found {found}", tok.column)


def _col(node: Node) -> int:
    return node.column


def parse(text: str) -> Query:
    """Parse query text without the checks that need its topics resolved."""
    parser = _Parser(text)
    root = parser.parse()
    return Query(text, root, tuple(dict.fromkeys(parser.lexer.topics)))
