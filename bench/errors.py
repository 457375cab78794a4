"""Errors meant for the user."""
from __future__ import annotations

import difflib
from typing import Iterable


class BenchError(Exception):
    """An error whose message is a complete one-line explanation for the user; the CLI prints
    it without a traceback and exits 2."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """A suffix for an error message naming up to ``n`` choices close to ``word``, e.g.
    ``" (did you mean: resnet50_v1d, resnet50_v1c?)"``, or ``""`` when none is close."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not close:  # "lr_rate" -> "lr": a prefix is close even when the ratio is low
        close = [c for c in choices if c and (word.startswith(c) or c.startswith(word))][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def check_choice(what: str, value: str, choices: Iterable[str]) -> None:
    """Raise ``unknown <what> 'value' (did you mean: ...?); choose from a, b, c`` unless
    ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise BenchError(f"unknown {what} {value!r}{did_you_mean(value, choices)}; choose from "
                         f"{', '.join(choices)}")


def summary(exc: BaseException) -> str:
    """One line saying why a library call failed. MXNet's messages start with a C++ stack
    (``Traceback (most recent call last):``, ``File "...", line N``) and give the reason
    after it (``MXNetError: Check failed: ...``); other messages are their first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("MXNetError:"):
            return line.removeprefix("MXNetError:").strip()
    for line in lines:
        if not line.startswith(("Traceback (most recent call last)", "File \"", "[bt]",
                                "Stack trace")):
            return line
    return type(exc).__name__
