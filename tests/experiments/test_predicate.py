"""The claim language: precedence, chains, logic, functions, undefined values, and one-line
errors that name the column."""
from __future__ import annotations

import pytest

from bench.experiments.predicate import PredicateError, Ref, parse

A = 'final.test_err["net_a"]'
B = 'final.test_err["net_b"]'
K3 = 'lesion.k_err["net_a"][3]'
VALUES = {Ref("final.test_err", "net_a"): 10.0, Ref("final.test_err", "net_b"): 4.0,
          Ref("lesion.k_err", "net_a", 3): 30.0}


def _evaluate(text: str, values: dict = VALUES):
    return parse(text).evaluate(values.get)


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3 == 7", True),             # * before +
    ("(1 + 2) * 3 == 9", True),
    ("10 - 4 - 3 == 3", True),            # left-associative
    ("8 / 4 / 2 == 1", True),
    ("-2 * -3 == 6", True),
    ("- -2 == 2", True),
    ("2 - -1 == 3", True),
    ("1 < 2 < 3", True),                  # chained
    ("1 < 3 < 2", False),
    ("3 > 2 >= 2 != 1", True),
    ("1 == 1.0 and 1 <= 1", True),
    ("1 > 2 or 2 > 1", True),
    ("not 1 > 2", True),
    ("not not 1 > 2", False),
    ("1 > 2 and 1 > 2 or 2 > 1", True),   # and binds tighter than or
    ("1 > 2 and (1 > 2 or 2 > 1)", False),
    ("not 1 < 2 or 2 < 3", True),         # not binds tighter than or
    ("abs(1 - 3) == 2", True),
    ("min(3, 1, 2) == 1 and max(3, 1, 2) == 3", True),
    ("max(1, min(5, 4)) == 4", True),
    ("1.5e1 == 15 and .5 == 0.5", True),
    (f"{A} - {B} >= 5", True),
    (f"{A} - {B} >= 7", False),
    (f"{K3} / {A} == 3", True),
    (f"{A} > {B} > 5", False),
])
def test_it_evaluates_like_arithmetic_and_logic(text, expected):
    assert _evaluate(text) is expected


@pytest.mark.parametrize("text", [
    f"{A} / ({B} - 4) > 1",       # division by zero: undefined, not a crash
    f"{A} / 0 > 1 or 1 < 2",
])
def test_division_by_zero_is_none(text):
    assert _evaluate(text) is None


def test_a_value_not_measured_makes_it_none():
    values = {**VALUES, Ref("final.test_err", "net_b"): None}
    assert _evaluate(f"{A} > 1 or {B} > 1", values) is None
    assert _evaluate(f"{A} > 1", values) is True  # B is not read


def test_references_in_order_once_and_each_looked_up_once():
    predicate = parse(f"{B} < {A} and abs({A} - {K3}) > 0 and {B} > 0")
    assert predicate.references() == [Ref("final.test_err", "net_b"),
                                      Ref("final.test_err", "net_a"),
                                      Ref("lesion.k_err", "net_a", 3)]
    looked_up = []
    assert predicate.evaluate(lambda ref: looked_up.append(ref) or VALUES[ref]) is True
    assert len(looked_up) == 3
    assert predicate.text.startswith("final.test_err")


def test_single_quoted_network_names_work_too():
    assert parse("final.test_err['net_a'] > 1").references() == [Ref("final.test_err",
                                                                     "net_a")]


@pytest.mark.parametrize("text, column, words", [
    ('final.test_er["a"] > 1', 1, ["unknown quantity 'final.test_er'", "did you mean",
                                   "final.test_err"]),
    ('1 < lesion.k_er["a"][2]', 5, ["unknown quantity", "lesion.k_err"]),
    ('lesion.k_err["a"] > 1', 19, ["needs an index"]),
    ('final.test_err["a"][1] > 1', 20, ["takes no [k] index"]),
    ('lesion.k_err["a"][x] > 1', 19, ["whole number k"]),
    ('lesion.k_err["a"][1.5] > 1', 19, ["whole number k"]),
    ('final.test_err[a] > 1', 16, ["quoted network name"]),
    ('final.test_err > 1', 16, ["expected", "[\"NETWORK\"]"]),
    ("1 < 2 3", 7, ["expected", "found '3'"]),
    ("1 < 2 junk", 7, ["found 'junk'"]),
    ("1 + 2", 1, ["a number, not a true/false statement"]),
    ("abs(-3)", 1, ["a number, not a true/false statement"]),
    ("(1 < 2", 7, ["expected ')'", "column 1"]),
    ("((1 < 2)", 9, ["expected ')'"]),
    ("1 < 2)", 6, ["')' without a matching '('"]),
    ("1 < ", 5, ["expected a number", "end of the predicate"]),
    ("", 1, ["expected a number"]),
    ("1 and 2 < 3", 1, ["'and' joins true/false statements"]),
    ("1 < 2 or 3", 10, ["'or' joins"]),
    ("not 3", 5, ["'not' takes a true/false statement"]),
    ("(1 < 2) + 1 > 0", 1, ["cannot be computed with"]),
    ("(1 < 2) < 3", 1, ["cannot be compared"]),
    ("-(1 < 2) < 0", 2, ["'-' takes a number"]),
    ("max(1 < 2, 3) > 0", 7, ["expected ',' or ')'"]),
    ("abs(1, 2) > 0", 1, ["abs takes one argument"]),
    ("mean(1, 2) > 0", 1, ["unknown function 'mean'", "abs, min, max"]),
    ("1 = 1", 3, ["write '=='"]),
    ("1 < 2 & 2 < 3", 7, ["unexpected character '&'"]),
    ('final.test_err["a > 1', 16, ["unterminated string"]),
])
def test_errors_are_one_line_with_the_column(text, column, words):
    with pytest.raises(PredicateError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.column == column and f"column {column}:" in message
    for word in words:
        assert word in message


def test_a_predicate_is_one_line():
    with pytest.raises(PredicateError, match="one line"):
        parse("1 < 2\nand 2 < 3")
