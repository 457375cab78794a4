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
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
