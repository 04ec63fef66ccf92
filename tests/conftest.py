import pytest

from jax_gan.quality import classifier


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A data folder holding one trained mnist-sample feature classifier, shared by every test
    that scores quality: about 10 s on 2 idle cores, so those tests are marked slow (the first
    one pays)."""
    folder = tmp_path_factory.mktemp("data")
    classifier.load_classifier("mnist-sample", folder)
    return folder
