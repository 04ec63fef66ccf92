"""Print every parity check as one table: `python -m parity_tests.report [--fast] [--out FILE]`.

`--fast` skips the behaviour and sample-quality checks (a few minutes on two
cores); `--out`
also writes the table to a file (the README points at `parity_tests/results.md`).
The last line is the mutation score that `python -m parity_tests.mutants`
recorded in `parity_tests/mutants.md` (read, not rerun: it takes many minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from parity_tests import checks, mutants, quality_checks, train_checks


def all_checks(fast: bool = False) -> list[checks.Check]:
    from tests.helpers import fake_digits, write_idx_split

    results = [
        checks.check_shapes(),
        checks.check_init(),
        checks.check_forward_generator(),
        checks.check_forward_discriminator(),
        checks.check_loss(),
        checks.check_gradients(),
        checks.check_one_adam_step(),
        *checks.check_trajectory(100, float64=True),
        *checks.check_trajectory(20, float64=False),
        *checks.check_trajectory(100, float64=False),
        checks.check_dropout(),
        checks.check_dropout_eval(),
        train_checks.check_masked_dropout_is_torch_dropout(),
        train_checks.check_forward_train("generator"),
        train_checks.check_forward_train("discriminator"),
        train_checks.check_gradients_train(),
        train_checks.check_mask_injection_is_production(),
        train_checks.check_production_masks(),
        *train_checks.check_trajectory_dropout(100, float64=True),
        *train_checks.check_trajectory_dropout(20, float64=False),
        *train_checks.check_trajectory_dropout(100, float64=False),
        *train_checks.check_latents(),
        train_checks.check_data_order("jax"),
        train_checks.check_data_order("torch"),
        train_checks.check_epoch_samples(),
        train_checks.check_module_defaults(),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = fake_digits(50)
        for split in ("train", "test"):
            write_idx_split(Path(tmp) / "MNIST" / "raw", images, labels, split, gz=False)
        results.append(checks.check_data(tmp))
    if not fast:
        results.extend(checks.check_behaviour())
        with tempfile.TemporaryDirectory() as data_dir:  # The scorer trains its classifier here.
            results.extend(quality_checks.check_quality(data_dir))
    results += [checks.check_checkpoint_round_trip(), checks.check_weights_round_trip()]
    torch_loss, jax_loss = checks.saturated_losses()
    results.append(checks.Check("saturated BCE (logit 200, label 0): |torch - 100|", abs(torch_loss - 100),
                                1e-6, f"torch clamps at {torch_loss:g}; the logit form gives {jax_loss:g}"))
    return results


def table(results: list[checks.Check]) -> str:
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
