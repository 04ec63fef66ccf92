"""Every parity check, once: `python -m parity_tests.report` prints them and `test_parity.py` asserts them.

An entry names a check (its test id), how to run it, the pytest markers its
test carries and the folders it needs. Its checks come back as a list: a
trajectory entry reads one run of both trainers, computed once a process
(`checks.trajectory`), at its own step count.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from pathlib import Path

from parity_tests import checks, quality_checks, train_checks
from parity_tests.checks import Check

# What the result depends on the installed JAX, Flax, Optax or Orbax for: CI runs these
# again under the newest Python's JAX (pyproject.toml registers the marker).
JAX = "jax_version"
# Several seeds a framework, compared in distribution (minutes): once per CI run, on one JAX.
STATISTICAL = ("slow", "statistical")


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    run: Callable[..., Check | Iterable[Check]]
    marks: tuple[str, ...] = (JAX,)
    # The folders `run` takes, in order: "mnist_dir", a torchvision MNIST folder
    # (`fake_mnist`); "data_dir", one the quality scorer trains its classifier in.
    needs: tuple[str, ...] = ()

    def checks(self, **folders) -> list[Check]:
        out = self.run(*(folders[name] for name in self.needs))
        return [out] if isinstance(out, Check) else list(out)


def _trajectory(steps: int, float64: bool, dropout: bool = False) -> Entry:
    precision = "float64" if float64 else "float32"
    name = f"trajectory_{'dropout_' if dropout else ''}{precision}_{steps}"
    return Entry(name, functools.partial(checks.check_trajectory, steps, float64, dropout))


def fake_mnist(folder: Path) -> Path:
    """A torchvision MNIST folder of 50 random digits (train and test), for `check_data`."""
    from tests.helpers import fake_digits, write_idx_split

    images, labels = fake_digits(50)
    for split in ("train", "test"):
        write_idx_split(Path(folder) / "MNIST" / "raw", images, labels, split, gz=False)
    return Path(folder)


# In the order of the report's table.
CHECKS: tuple[Entry, ...] = (
    Entry("shapes", checks.check_shapes),
    Entry("init", checks.check_init),
    Entry("forward_generator", checks.check_forward_generator),
    Entry("forward_discriminator", checks.check_forward_discriminator),
    Entry("loss", checks.check_loss),
    Entry("gradients", checks.check_gradients),
    Entry("one_adam_step", checks.check_one_adam_step),
    _trajectory(100, float64=True),
    _trajectory(20, float64=False),
    _trajectory(100, float64=False),
    Entry("dropout", checks.check_dropout),
    Entry("dropout_eval", checks.check_dropout_eval),
    Entry("masked_dropout_is_torch_dropout", train_checks.check_masked_dropout_is_torch_dropout, marks=()),
    *(Entry(f"forward_train_{network}", functools.partial(train_checks.check_forward_train, network))
      for network in ("generator", "discriminator")),
    Entry("gradients_train", train_checks.check_gradients_train),
    Entry("mask_injection_is_production", train_checks.check_mask_injection_is_production),
    Entry("production_masks", train_checks.check_production_masks),
    _trajectory(100, float64=True, dropout=True),
    _trajectory(20, float64=False, dropout=True),
    _trajectory(100, float64=False, dropout=True),
    Entry("latents", train_checks.check_latents),
    Entry("data_order_jax", functools.partial(train_checks.check_data_order, "jax")),
    Entry("data_order_torch", functools.partial(train_checks.check_data_order, "torch"), marks=()),
    Entry("epoch_samples", train_checks.check_epoch_samples),
    Entry("module_defaults", train_checks.check_module_defaults),
    Entry("data", checks.check_data, marks=(), needs=("mnist_dir",)),
    Entry("behaviour", checks.check_behaviour, marks=STATISTICAL),
    Entry("quality", quality_checks.check_quality, marks=STATISTICAL, needs=("data_dir",)),
    Entry("checkpoint_round_trip", checks.check_checkpoint_round_trip),
    Entry("weights_round_trip", checks.check_weights_round_trip),
    Entry("saturated_bce", checks.check_saturated_bce),
)
BY_ID = {entry.id: entry for entry in CHECKS}
assert len(BY_ID) == len(CHECKS), "two checks share an id"
