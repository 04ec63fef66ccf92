import subprocess
import sys

import pytest


def test_public_api():
    import jax_gan

    for name in ("Config", "load_dataset", "Generator", "Discriminator", "create_train_state",
                 "train_step", "train_epoch", "generate"):
        assert getattr(jax_gan, name) is not None
    with pytest.raises(AttributeError):
        jax_gan.no_such_thing  # noqa: B018


def test_reference_does_not_import_jax():
    pytest.importorskip("torch")
    code = ("import sys, torch_reference.train, torch_reference.sample; "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
