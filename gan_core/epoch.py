"""What a framework's compiled (or eager) epoch hands back to the driver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class EpochResult(NamedTuple):
    """One call of a framework's `train_epoch`.

    A trainer hands the driver the same fields with a leading member axis
    (one row per run it trains; a single run has one).
    """

    state: Any  # The state after the steps.
    metrics: Mapping[str, Any]  # name -> one value per step.
    samples: Any  # G(fixed_z) at each step due a grid, before its update: (slots, 25, ...).
    num_samples: Any  # How many of the sample slots are filled.
    params_finite: Any  # Whether every weight of G and D is still finite after the last step.
