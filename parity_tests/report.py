"""Print every parity check as one table: `python -m parity_tests.report [--fast] [--out FILE]`.

The checks are `parity_tests.registry`'s, which the tests assert. `--fast`
skips the statistical ones (behaviour and sample quality: a few minutes on
two cores); `--out` also writes the table to a file (the README points at
`parity_tests/results.md`). The last line is the mutation score that
`python -m parity_tests.mutants` recorded in `parity_tests/mutants.md` (read,
not rerun: it takes many minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from parity_tests import mutants, registry
from parity_tests.checks import Check


def all_checks(fast: bool = False) -> list[Check]:
    entries = [e for e in registry.CHECKS if not (fast and "statistical" in e.marks)]
    with tempfile.TemporaryDirectory() as mnist_dir, tempfile.TemporaryDirectory() as data_dir:
        # data_dir: the quality scorer trains its classifier there.
        folders = {"mnist_dir": registry.fake_mnist(Path(mnist_dir)), "data_dir": data_dir}
        return [check for entry in entries for check in entry.checks(**folders)]


def table(results: list[Check]) -> str:
    lines = ["| check | measured | tolerance | result |", "| --- | --- | --- | --- |"]
    for c in results:
        result = "pass" if c.passed else "FAIL"
        lines.append(f"| {c.name} | {c.measured:.3g} | {c.tolerance:.3g} | {result} |")
    notes = [f"- {c.name}: {c.note}" for c in results if c.note]
    return "\n".join(lines + ([""] + notes if notes else []) + ["", mutants.score_line()])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parity_tests.report", description=__doc__)
    p.add_argument("--fast", action="store_true", help="skip the behaviour and quality checks")
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    results = all_checks(args.fast)
    print(table(results))
    if args.out:
        args.out.write_text(f"Written by `python -m parity_tests.report --out {args.out}`.\n\n"
                            + table(results) + "\n")
    return 0 if all(c.passed for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
