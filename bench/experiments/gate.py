"""The claims side of ``bench check``: a recorded experiment's *contradicted* claim fails the
gate like a result outside its tolerance; *not shown* warns; *unresolved* is listed with its
written reason. A pattern that names no recorded experiment is left to the results gate."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from bench.experiments.verdicts import CONTRADICTED, NOT_SHOWN, SHOWN, UNRESOLVED, ClaimResult


@dataclass(frozen=True)
class ClaimCheck:
    experiment: str
    result: ClaimResult

    @property
    def name(self) -> str:
        return f"{self.experiment} / {self.result.claim.id}"

    @property
    def failed(self) -> bool:
        return self.result.failed

    def line(self) -> str:
        r = self.result
        mark = {SHOWN: "ok", CONTRADICTED: "FAILED", NOT_SHOWN: "warning",
                UNRESOLVED: "unresolved"}[r.verdict]
        why = f" - {r.claim.unresolved}" if r.verdict == UNRESOLVED else ""
        return f"{mark} {self.name}: {r.verdict} ({r.tally()}; {r.claim.source}): {r.ours()}{why}"

    def as_dict(self) -> dict:
        r = self.result
        return {"kind": "claim", "name": self.name, "status": r.verdict, "failed": self.failed,
                "holds": list(r.holds), "seeds": list(r.seeds), "ours": r.ours(),
                "source": r.claim.source, "unresolved": r.claim.unresolved}


def split_targets(targets: tuple[str, ...] | list[str], results: Path
                  ) -> tuple[list[ClaimCheck], list[str], bool]:
    """The claim checks the targets ask for, the targets left for the results gate, and
    whether those should run at all (no target: every row and every claim)."""
    from bench.experiments.recorded import judged
    every = judged(results)
    if not targets:
        return [ClaimCheck(n, r) for n, r in every], [], True
    names = sorted({n for n, _ in every})
    claims, rest = [], []
    for target in targets:
        hit = [n for n in names if fnmatch.fnmatchcase(n, target)]
        if hit and not Path(target).is_dir():
            claims += [ClaimCheck(n, r) for n, r in every if n in hit]
        else:
            rest.append(target)
    return claims, rest, bool(rest)


def summary(checks: list[ClaimCheck]) -> str:
    count = {v: sum(c.result.verdict == v for c in checks)
             for v in (SHOWN, NOT_SHOWN, CONTRADICTED, UNRESOLVED)}
    return (f"{len(checks)} claims: {count[SHOWN]} shown, {count[CONTRADICTED]} contradicted, "
            f"{count[NOT_SHOWN]} not shown, {count[UNRESOLVED]} unresolved")
