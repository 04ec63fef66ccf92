"""JAX port vs PyTorch reference: each test fails if the implementations diverge.

`test_check` asserts every check of `parity_tests.registry`, the list the
report prints; a check's markers come from its entry there.
"""

import numpy as np
import pytest

from parity_tests import checks, registry


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    return registry.fake_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")  # The quality scorer trains its classifier here once.


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id, marks=[getattr(pytest.mark, m) for m in e.marks])
                                   for e in registry.CHECKS])
def test_check(entry, request):
    results = entry.checks(**{name: request.getfixturevalue(name) for name in entry.needs})
    failed = [f"{c.name}: {c.measured:.3g} > {c.tolerance:.3g} {c.note}" for c in results if not c.passed]
    assert results and not failed, "\n".join(failed)


def test_bce_loss_saturated_regime_differs_as_documented():
    torch_loss, jax_loss = checks.saturated_losses(200.0)
    assert torch_loss == pytest.approx(100.0)  # BCELoss clamps log(0) at -100.
    assert jax_loss == pytest.approx(200.0)  # The logit form is exact.


@pytest.mark.jax_version
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
