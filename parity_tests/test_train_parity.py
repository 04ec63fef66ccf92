"""What a training step does, JAX port vs PyTorch reference: dropout on, its own z, the data order."""

import pytest

from parity_tests import train_checks


def _assert(check):
    assert check.passed, f"{check.name}: {check.measured:.3g} > {check.tolerance:.3g} {check.note}"

SINGLE_CHECKS = {
    "masked_dropout_is_torch_dropout": train_checks.check_masked_dropout_is_torch_dropout,
    "forward_train_generator": lambda: train_checks.check_forward_train("generator"),
    "forward_train_discriminator": lambda: train_checks.check_forward_train("discriminator"),
    "gradients_train": train_checks.check_gradients_train,
    "mask_injection_is_production": train_checks.check_mask_injection_is_production,
    "production_masks": train_checks.check_production_masks,
    "data_order_jax": lambda: train_checks.check_data_order("jax"),
    "data_order_torch": lambda: train_checks.check_data_order("torch"),
    "epoch_samples": train_checks.check_epoch_samples,
    "module_defaults": train_checks.check_module_defaults,
}


@pytest.mark.parametrize("name", SINGLE_CHECKS)
def test_train_check(name):
    _assert(SINGLE_CHECKS[name]())


def test_step_draws_standard_normal_z_like_torch_randn():
    for check in train_checks.check_latents():
        _assert(check)


@pytest.mark.parametrize("steps, float64", [(100, True), (20, False), (100, False)])
def test_trajectory_with_dropout_on_and_the_same_masks(steps, float64):
    losses, params = train_checks.check_trajectory_dropout(steps, float64)
    _assert(losses)
    _assert(params)
