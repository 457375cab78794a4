"""Tables for a terminal: GitHub-markdown tables that fit a given width by shortening the
free-text columns (sources, aliases) with an ellipsis. The full text stays available through
``--wide`` and the JSON/CSV formats, which never shorten anything."""
from __future__ import annotations

import csv
import io
import json
import textwrap
from typing import Any, Sequence

from tabulate import tabulate

FORMATS = ("table", "json", "csv")  # what the listing commands print
WIDTH = 100  # columns of the terminal the default tables are made for
ELLIPSIS = "..."  # ASCII: tabulate counts "…" as two columns when wcwidth is installed
MIN_TEXT = 8  # a shortened column keeps at least this many characters


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when anything was cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def render(rows: Sequence[dict[str, Any]], headers: dict[str, str], *,
           width: int | None = WIDTH, shrink: Sequence[str] = (), right: Sequence[str] = (),
           note: str = "") -> str:
    """A markdown table of ``rows`` (dicts; ``headers`` maps key -> title, in column order;
    ``right``: right-aligned keys).

    With ``width``, the ``shrink`` columns are cut, widest first, until every line fits; if the
    other columns alone are wider than ``width`` the table is as narrow as it can be made."""
    keys = list(headers)
    cells = [[("" if r.get(k) is None else r.get(k)) for k in keys] for r in rows]
    titles = [headers[k] for k in keys]

    align = ["right" if k in right else "left" for k in keys]

    def table(data) -> str:
        return tabulate(data, headers=titles, tablefmt="github", disable_numparse=True,
                        colalign=align)

    cells = [[str(c) for c in row] for row in cells]
    text = table(cells)
    columns = [keys.index(k) for k in shrink if k in keys] if width is not None else []
    # A column is as wide as its widest cell, so cutting that cell by n narrows the line by n.
    limits = {i: max(len(row[i]) for row in cells) if cells else 0 for i in columns}
    floors = {i: max(MIN_TEXT, len(titles[i])) for i in columns}
    excess = _widest(text) - (width or 0)
    while columns and excess > 0:
        room = {i: limits[i] - floors[i] for i in columns if limits[i] > floors[i]}
        if not room:
            break
        i = max(room, key=lambda c: limits[c])
        others = [limits[c] for c in room if c != i]
        # Cut the widest column down to the next widest first, so the cuts are shared.
        step = min(excess, room[i], max(1, limits[i] - max(others, default=0)))
        limits[i] -= step
        excess -= step
    if any(limits[i] < max(len(row[i]) for row in cells) for i in columns if cells):
        text = table([[shorten(c, limits[j]) if j in limits else c for j, c in enumerate(row)]
                      for row in cells])
    if note:
        text += "\n\n" + (textwrap.fill(note, width) if width else note)
    return text


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def render_data(rows: Sequence[dict[str, Any]], fmt: str, fields: Sequence[str]) -> str:
    """``rows`` as a JSON list of objects or as CSV with a header row of ``fields`` (the
    machine formats: nothing shortened, no trailing newline)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt != "csv":
        raise ValueError(f"render_data renders json and csv, not {fmt!r}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")
