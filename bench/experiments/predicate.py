"""The claim language: a small boolean expression over measured quantities, parsed here (never
``eval``'d) so that a typo is a one-line error with its column before anything is trained.

Grammar (lowest precedence first)::

    predicate  := or                                 -- must be boolean
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*    -- a < b < c chains
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | "+" unary | atom
    atom       := NUMBER | FUNC "(" sum ("," sum)* ")" | REF | "(" or ")"
    FUNC       := "abs" | "min" | "max"
    REF        := QUANTITY "[" STRING "]" ["[" INT "]"]   -- final.test_err["cifar_resnet20_v1_a"]

Numbers and booleans do not mix: ``1 + (a < b)`` and ``not 3`` are errors, as is a predicate
that is a number (``1 + 2``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from bench.errors import BenchError, did_you_mean
from bench.experiments.quantities import QUANTITIES

FUNCTIONS = ("abs", "min", "max")
KEYWORDS = ("and", "or", "not")
COMPARISONS = ("<=", ">=", "==", "!=", "<", ">")


class PredicateError(BenchError):
    """A predicate that cannot be parsed; the message names the column (1-based)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"predicate column {column}: {message}")
        self.column = column


@dataclass(frozen=True)
class Ref:
    """One quantity of one network, e.g. ``lesion.k_err["cifar_resnet56_v1_a"][3]``."""

    quantity: str
    network: str
    index: int | None = None

    def __str__(self) -> str:
        index = "" if self.index is None else f"[{self.index}]"
        return f'{self.quantity}["{self.network}"]{index}'


class _Undefined(Exception):
    """A value that does not exist (a division by zero): the predicate evaluates to None."""


# --- tokens -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "string", "op", "end"
    text: str
    column: int  # 1-based


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<op><=|>=|==|!=|[<>+\-*/(),\[\]])
""", re.VERBOSE)


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            if char in "\"'":
                raise PredicateError(f"unterminated string starting {text[pos:pos + 12]!r}; "
                                     "a network name is quoted on one line", pos + 1)
            if char == "=":
                raise PredicateError("'=' alone is not a comparison; write '=='", pos + 1)
            raise PredicateError(f"unexpected character {char!r}", pos + 1)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), pos + 1))  # type: ignore
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _shown(token: _Token) -> str:
    return "the end of the predicate" if token.kind == "end" else repr(token.text)


# --- syntax tree --------------------------------------------------------------------------
# Each node has ``evaluate(values)`` and ``boolean`` (true/false statement vs number), so that
# numbers and statements are told apart when parsed, not when a claim is judged.

@dataclass(frozen=True)
class _Number:
    value: float
    boolean = False

    def evaluate(self, values: dict[Ref, float]) -> float:
        return self.value


@dataclass(frozen=True)
class _Quantity:
    ref: Ref
    boolean = False

    def evaluate(self, values: dict[Ref, float]) -> float:
        return values[self.ref]


@dataclass(frozen=True)
class _Unary:
    op: str  # "-", "not"
    operand: object

    @property
    def boolean(self) -> bool:
        return self.op == "not"

    def evaluate(self, values: dict[Ref, float]) -> float | bool:
        value = self.operand.evaluate(values)  # type: ignore[attr-defined]
        return (not value) if self.op == "not" else -value


@dataclass(frozen=True)
class _Arithmetic:
    op: str
    left: object
    right: object
    boolean = False

    def evaluate(self, values: dict[Ref, float]) -> float:
        a = self.left.evaluate(values)  # type: ignore[attr-defined]
        b = self.right.evaluate(values)  # type: ignore[attr-defined]
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "*":
            return a * b
        if b == 0:
            raise _Undefined
        return a / b


@dataclass(frozen=True)
class _Call:
    function: str
    args: tuple[object, ...]
    boolean = False

    def evaluate(self, values: dict[Ref, float]) -> float:
        args = [a.evaluate(values) for a in self.args]  # type: ignore[attr-defined]
        return abs(args[0]) if self.function == "abs" else {"min": min, "max": max}[
            self.function](args)


@dataclass(frozen=True)
class _Comparison:
    """``a < b <= c``: every adjacent pair holds (each operand evaluated once)."""

    operands: tuple[object, ...]
    ops: tuple[str, ...]
    boolean = True

    def evaluate(self, values: dict[Ref, float]) -> bool:
        results = [o.evaluate(values) for o in self.operands]  # type: ignore[attr-defined]
        return all(_compare(op, a, b) for op, a, b in zip(self.ops, results, results[1:]))


@dataclass(frozen=True)
class _Logic:
    op: str  # "and", "or"
    operands: tuple[object, ...]
    boolean = True

    def evaluate(self, values: dict[Ref, float]) -> bool:
        results = (o.evaluate(values) for o in self.operands)  # type: ignore[attr-defined]
        return all(results) if self.op == "and" else any(results)


def _is_boolean(node: object) -> bool:
    return bool(node.boolean)  # type: ignore[attr-defined]


def _need(node: object, boolean: bool, start: _Token, message: str) -> None:
    if _is_boolean(node) != boolean:
        raise PredicateError(message, start.column)


def _compare(op: str, a: float, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
            "!=": a != b}[op]


# --- parser -------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.refs: list[Ref] = []

    @property
    def token(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, *texts: str) -> bool:
        return self.token.kind in ("op", "name") and self.token.text in texts

    def expect(self, text: str, what: str) -> _Token:
        if not (self.token.kind == "op" and self.token.text == text):
            raise PredicateError(f"expected {what}, found {_shown(self.token)}",
                                 self.token.column)
        return self.take()

    def predicate(self) -> object:
        start = self.token
        node = self.logic_or()
        if self.at(")"):
            raise PredicateError("')' without a matching '('", self.token.column)
        if self.token.kind != "end":
            raise PredicateError(f"expected 'and', 'or', a comparison or the end, found "
                                 f"{_shown(self.token)}", self.token.column)
        if not _is_boolean(node):
            raise PredicateError("the predicate is a number, not a true/false statement; "
                                 "compare it, e.g. '... >= 5'", start.column)
        return node

    def logic_or(self) -> object:
        return self._logic("or", self.logic_and)

    def logic_and(self) -> object:
        return self._logic("and", self.logic_not)

    def _logic(self, op: str, operand: Callable[[], object]) -> object:
        parts = [(self.token, operand())]
        while self.token.kind == "name" and self.token.text == op:
            self.take()
            parts.append((self.token, operand()))
        if len(parts) == 1:
            return parts[0][1]
        for start, node in parts:
            _need(node, True, start, f"'{op}' joins true/false statements, but this is a "
                  "number; compare it first")
        return _Logic(op, tuple(node for _, node in parts))

    def logic_not(self) -> object:
        if self.token.kind == "name" and self.token.text == "not":
            self.take()
            start = self.token
            node = self.logic_not()
            _need(node, True, start, "'not' takes a true/false statement, but this is a number")
            return _Unary("not", node)
        return self.comparison()

    def comparison(self) -> object:
        parts, ops = [(self.token, self.sum())], []
        while self.token.kind == "op" and self.token.text in COMPARISONS:
            ops.append(self.take().text)
            parts.append((self.token, self.sum()))
        if not ops:
            return parts[0][1]
        for start, node in parts:
            _need(node, False, start, "a true/false statement cannot be compared; join "
                  "statements with 'and' / 'or'")
        return _Comparison(tuple(node for _, node in parts), tuple(ops))

    def sum(self) -> object:
        return self._arithmetic(("+", "-"), self.product)

    def product(self) -> object:
        return self._arithmetic(("*", "/"), self.unary)

    def _arithmetic(self, ops: tuple[str, ...], operand: Callable[[], object]) -> object:
        start = self.token
        node = operand()
        while self.token.kind == "op" and self.token.text in ops:
            _need(node, False, start, "a true/false statement cannot be computed with")
            op = self.take().text
            start = self.token
            right = operand()
            _need(right, False, start, "a true/false statement cannot be computed with")
            node = _Arithmetic(op, node, right)
        return node

    def unary(self) -> object:
        if self.token.kind == "op" and self.token.text in ("-", "+"):
            op = self.take().text
            start = self.token
            node = self.unary()
            _need(node, False, start, f"'{op}' takes a number, but this is a true/false "
                  "statement")
            return _Unary("-", node) if op == "-" else node
        return self.atom()

    def atom(self) -> object:
        token = self.token
        if token.kind == "number":
            self.take()
            return _Number(float(token.text))
        if token.kind == "op" and token.text == "(":
            self.take()
            node = self.logic_or()
            self.expect(")", f"')' to close the '(' at column {token.column}")
            return node
        if token.kind == "name" and token.text in FUNCTIONS:
            return self.call()
        if token.kind == "name" and token.text not in KEYWORDS:
            return self.reference()
        raise PredicateError(f"expected a number, a quantity such as "
                             f"final.test_err[\"NETWORK\"], abs/min/max or '(', found "
                             f"{_shown(token)}", token.column)

    def call(self) -> object:
        name = self.take()
        self.expect("(", f"'(' after {name.text}")
        args = []
        while True:
            start = self.token
            arg = self.sum()
            _need(arg, False, start, f"{name.text}() takes numbers, but this is a true/false "
                  "statement")
            args.append(arg)
            if not self.at(","):
                break
            self.take()
        self.expect(")", f"',' or ')' to close {name.text}(")
        if name.text == "abs" and len(args) != 1:
            raise PredicateError(f"abs takes one argument, got {len(args)}", name.column)
        return _Call(name.text, tuple(args))

    def reference(self) -> object:
        name = self.take()
        quantity = QUANTITIES.get(name.text)
        if quantity is None:
            if self.at("("):
                raise PredicateError(f"unknown function {name.text!r}"
                                     f"{did_you_mean(name.text, FUNCTIONS)}; the functions are "
                                     f"{', '.join(FUNCTIONS)}", name.column)
            raise PredicateError(f"unknown quantity {name.text!r}"
                                 f"{did_you_mean(name.text, QUANTITIES)}; experiments/README.md "
                                 "lists the quantities", name.column)
        self.expect("[", f"'[\"NETWORK\"]' after {name.text}")
        network = self.token
        if network.kind != "string" or len(network.text) < 3:
            raise PredicateError(f"expected a quoted network name after {name.text}[, found "
                                 f"{_shown(network)}", network.column)
        self.take()
        self.expect("]", f"']' after the network name")
        index = None
        if self.at("["):
            bracket = self.take()
            if not quantity.indexed:
                raise PredicateError(f"{name.text} takes no [k] index", bracket.column)
            k = self.token
            if k.kind != "number" or not k.text.isdigit():
                raise PredicateError(f"expected a whole number k in {name.text}[...][k], found "
                                     f"{_shown(k)}", k.column)
            self.take()
            self.expect("]", "']' after k")
            index = int(k.text)
        elif quantity.indexed:
            raise PredicateError(f"{name.text} needs an index: {name.text}[\"NETWORK\"][k] "
                                 "(k = number of deleted units)", self.token.column)
        ref = Ref(name.text, network.text[1:-1], index)
        if ref not in self.refs:
            self.refs.append(ref)
        return _Quantity(ref)


@dataclass(frozen=True)
class Predicate:
    """A parsed claim predicate. ``evaluate`` looks each referenced value up once and gives
    None when any is not measured or the arithmetic is undefined (a division by zero)."""

    text: str
    _root: object
    _refs: tuple[Ref, ...]

    def references(self) -> list[Ref]:
        """The quantities it reads, in order of first appearance, each once."""
        return list(self._refs)

    def evaluate(self, lookup: Callable[[Ref], float | None]) -> bool | None:
        values = {}
        for ref in self._refs:
            value = lookup(ref)
            if value is None:
                return None
            values[ref] = float(value)
        try:
            return bool(self._root.evaluate(values))  # type: ignore[attr-defined]
        except (_Undefined, OverflowError):
            return None

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Predicate:
    """Parse a predicate or raise a one-line :class:`PredicateError` naming the column."""
    if not isinstance(text, str):
        raise PredicateError(f"a predicate is a string, got {type(text).__name__}", 1)
    if "\n" in text or "\r" in text:
        raise PredicateError("a predicate is one line", text.replace("\r", "\n").index("\n") + 1)
    parser = _Parser(text)
    root = parser.predicate()
    return Predicate(text, root, tuple(parser.refs))
