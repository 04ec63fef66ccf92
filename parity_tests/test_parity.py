"""JAX port vs PyTorch reference. Each test fails if the implementations diverge."""

import numpy as np
import pytest

from parity_tests import checks
from tests.helpers import fake_digits, write_idx_split


def _assert(check):
    assert check.passed, f"{check.name}: {check.measured:.3g} > {check.tolerance:.3g} {check.note}"


# Checks that measure one difference each, in the order of the README's table.
SINGLE_CHECKS = [
    checks.check_shapes,
    checks.check_init,
    checks.check_forward_generator,
    checks.check_forward_discriminator,
    checks.check_loss,
    checks.check_gradients,
    checks.check_one_adam_step,
    checks.check_dropout,
    checks.check_dropout_eval,
    checks.check_checkpoint_round_trip,
    checks.check_weights_round_trip,
]


@pytest.mark.parametrize("check", SINGLE_CHECKS, ids=lambda f: f.__name__.removeprefix("check_"))
def test_single_check(check):
    _assert(check())


def test_bce_loss_saturated_regime_differs_as_documented():
    torch_loss, jax_loss = checks.saturated_losses(200.0)
    assert torch_loss == pytest.approx(100.0)  # BCELoss clamps log(0) at -100.
    assert jax_loss == pytest.approx(200.0)  # The logit form is exact.


@pytest.mark.parametrize("steps, float64", [(100, True), (20, False), (100, False)])
def test_train_step_trajectory(steps, float64):
    losses, params = checks.check_trajectory(steps, float64)
    _assert(losses)
    _assert(params)


def test_data_identical_through_torchvision(tmp_path):
    images, labels = fake_digits(50)
    for split in ("train", "test"):
        write_idx_split(tmp_path / "MNIST" / "raw", images, labels, split, gz=False)
    _assert(checks.check_data(tmp_path))


@pytest.mark.slow
@pytest.mark.statistical
def test_behaviour_in_distribution():
    for check in checks.check_behaviour():
        _assert(check)


def test_convert_cli_round_trips_a_reference_checkpoint(tmp_path):
    import torch

    from jax_gan import convert
    from torch_reference import train as torch_train

    run = tmp_path / "torch"
    assert torch_train.main(["--dataset", "mnist-sample", "--max-steps", "5", "--out-dir", str(run),
                             "--quiet"]) == 0
    assert convert.main([str(run / "checkpoint.pth"), str(tmp_path / "jax")]) == 0
    assert convert.main([str(tmp_path / "jax"), str(tmp_path / "back.pth")]) == 0
    a = torch.load(run / "checkpoint.pth", weights_only=True)
    b = torch.load(tmp_path / "back.pth", weights_only=True)
    for key in ("model_G_state_dict", "model_D_state_dict"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), name
    for key in ("optimizer_G_state_dict", "optimizer_D_state_dict"):
        for i, s in a[key]["state"].items():
            for field in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(s[field], b[key]["state"][i][field])
            assert float(s["step"]) == float(b[key]["state"][i]["step"])
    assert b["epoch"] == a["epoch"] and b["step"] == a["step"]
    # The notebook's way of loading it.
    from torch_reference.models import Discriminator, Generator

    Generator().load_state_dict(b["model_G_state_dict"])
    Discriminator().load_state_dict(b["model_D_state_dict"])
    np.testing.assert_equal(b["config"]["dataset"], "mnist-sample")
