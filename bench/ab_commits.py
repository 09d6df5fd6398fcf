"""A/B of a tracked cell between two versions of dotnb: ``%%track\nx = 1``, the same
with new code in every cell, and ``x = 1`` under ``%dotnb track all``, in a kernel
running dotnb at ``--base`` (a git revision, checked out into a scratch worktree)
against a kernel running this working tree, interleaved pair by pair (the order
inside each pair alternates), so drift in the machine hits both alike.

Each kernel has its own project and store.  What differs between the two is
only the code on ``PYTHONPATH``; both use this virtualenv's interpreter and
libraries.  Two kernels differ by a few tenths of a millisecond whatever they
run, so the comparison is made in ``--rounds`` fresh pairs of kernels (started in
alternating order) and the samples are pooled.  Prints both versions' medians,
the difference and ratio of medians, and the median of paired differences with
its 90% bootstrap interval; a change of the hot path shows as a difference whose
interval lies on one side of zero.

Usage: ``.venv/bin/python bench/ab_commits.py --base 197bde5 [--pairs 200] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from harness import (
    REPO,
    BenchKernel,
    make_notebook,
    median,
    ms,
    paired_interval,
    print_header,
    print_table,
    ratio,
    run_cmd,
    scratch,
    start_tracking_kernel,
)


def start(project: Path, code_root: Path) -> BenchKernel:
    return start_tracking_kernel(project, make_notebook(project / "nb.ipynb"), code_root)


def interleave(base: BenchKernel, head: BenchKernel, codes: list[str]) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    for i, code in enumerate(codes):
        pair = [(base, a), (head, b)]
        if i % 2:
            pair.reverse()
        for kernel, sink in pair:
            res = kernel.ok(code)
            if res.run is None:
                raise RuntimeError(f"no run recorded for {code!r}: {res.stderr}")
            sink.append(res.seconds)
    return a, b


def one_round(tmp: Path, tree: Path, pairs: int, swap: bool) -> dict[str, tuple[list[float], list[float]]]:
    """Fresh kernels for the base tree and this one (started in the order ``swap`` says)
    and every section's interleaved timings, as (base, head) lists."""
    kernels: dict[str, BenchKernel] = {}
    try:
        for side in ("head", "base") if swap else ("base", "head"):
            kernels[side] = start(tmp / side, tree if side == "base" else REPO)
        base, head = kernels["base"], kernels["head"]
        found = {"%%track x = 1": interleave(base, head, ["%%track\nx = 1"] * pairs)}
        new_code = [f"%%track\nx = {1000 + i}" for i in range(pairs)]
        found["%%track x = <new>"] = interleave(base, head, new_code)
        for kernel in (base, head):
            kernel.ok("%dotnb track all")
        found["track all: x = 1"] = interleave(base, head, ["x = 1"] * pairs)
        return found
    finally:
        for kernel in kernels.values():
            kernel.shutdown()


def rows(label: str, base: list[float], head: list[float]) -> list[list[str]]:
    low, high = paired_interval(head, base)
    paired = median([h - b for h, b in zip(head, base, strict=True)])
    return [
        [
            label,
            str(len(base)),
            ms(median(base)),
            ms(median(head)),
            ms(median(head) - median(base)),
            ratio(median(head), median(base)),
            f"{ms(paired)} [{ms(low)}, {ms(high)}]",
        ]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against (e.g. a commit)")
    parser.add_argument("--pairs", type=int, default=200, help="pairs per section and round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh pairs of kernels (default 3)")
    parser.add_argument("--quick", action="store_true", help="20 pairs, one round (smoke test)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    pairs, rounds = (20, 1) if args.quick else (args.pairs, args.rounds)
    print_header(f"A/B of a tracked cell: {args.base} (A) against this tree (B)", args.quick)
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    with scratch("ab") as tmp:
        tree = tmp / "base"
        run_cmd(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), args.base])
        try:
            for n in range(rounds):
                for label, (a, b) in one_round(tmp / f"round{n}", tree, pairs, swap=n % 2 == 1).items():
                    pooled.setdefault(label, ([], []))
                    pooled[label][0].extend(a)
                    pooled[label][1].extend(b)
        finally:
            run_cmd(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
    table = [row for label, (a, b) in pooled.items() for row in rows(label, a, b)]
    print_table(
        "round trip, execute → idle (ms)",
        ["cell", "pairs (all rounds)", "A median", "B median", "B − A", "B / A", "paired B − A [90%]"],
        table,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
