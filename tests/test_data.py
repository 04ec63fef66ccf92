import gzip

import numpy as np
import pytest

from gan_core import data
from gan_core.errors import DataError, DownloadError
from tests.helpers import fake_digits, idx_bytes, write_idx_split


def test_read_idx_raw_and_gzip_agree(tmp_path):
    images, labels = fake_digits(7)
    raw = write_idx_split(tmp_path / "raw", images, labels, gz=False)
    gz = write_idx_split(tmp_path / "gz", images, labels, gz=True)
    for pair in (raw, gz):
        got_images, got_labels = data.read_idx_pair(*pair)
        assert got_images.dtype == np.uint8 and got_images.shape == (7, 28, 28)
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)


def test_truncated_file_names_file_and_counts(tmp_path):
    images, _ = fake_digits(10)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(images)[: 16 + 784 * 3 + 5]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: truncated: header says 10 images, "
                                        r"file holds 3"):
        data.read_idx(path)


def test_truncated_gzip_stream_is_an_error(tmp_path):
    images, _ = fake_digits(10)
    path = tmp_path / "x-images.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:200])
    with pytest.raises(DataError, match="x-images.gz: corrupt or truncated gzip"):
        data.read_idx(path)


def test_wrong_magic(tmp_path):
    images, _ = fake_digits(2)
    path = tmp_path / "bad-images"
    path.write_bytes(idx_bytes(images, magic=1234))
    with pytest.raises(DataError, match="bad-images: not an IDX file"):
        data.read_idx(path)
    labels_as_images = tmp_path / "labels"
    labels_as_images.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="wrong magic number 2049, expected 2051"):
        data.read_idx(labels_as_images, data.IMAGES_MAGIC)


def test_extra_bytes_and_bad_dimensions(tmp_path):
    images, _ = fake_digits(2)
    path = tmp_path / "imgs"
    path.write_bytes(idx_bytes(images) + b"\0\0")
    with pytest.raises(DataError, match="2 bytes after"):
        data.read_idx(path)
    path.write_bytes(idx_bytes(np.zeros((2, 28, 27), np.uint8)))
    with pytest.raises(DataError, match=r"expected images of shape \(N, 28, 28\)"):
        data.read_idx(path)


def test_count_mismatch_between_images_and_labels(tmp_path):
    images, labels = fake_digits(5)
    folder = tmp_path / "MNIST" / "raw"
    write_idx_split(folder, images, labels[:4])
    with pytest.raises(DataError, match="holds 5 images but .* holds 4 labels"):
        data.load_dataset("mnist", tmp_path, allow_download=False)


def test_mnist_in_torchvision_layout(tmp_path):
    images, labels = fake_digits(12)
    write_idx_split(tmp_path / "MNIST" / "raw", images, labels)
    ds = data.load_dataset("mnist", tmp_path, allow_download=False)
    assert ds.name == "mnist" and ds.images.shape == (12, 28, 28) and ds.images.dtype == np.float32
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    np.testing.assert_array_equal(ds.images, images.astype(np.float32) / 255 * 2 - 1)
    tutorial = data.load_dataset("mnist", tmp_path, allow_download=False, tutorial_normalization=True)
    assert tutorial.images.min() >= 0 and tutorial.images.max() <= 1
    np.testing.assert_allclose(tutorial.images, images / 255.0, rtol=0, atol=1e-7)


def test_mnist_sample_is_real_balanced_digits():
    ds = data.load_dataset("mnist-sample")
    assert ds.images.shape == (5000, 28, 28) and ds.labels.shape == (5000,)
    assert np.bincount(ds.labels, minlength=10).tolist() == [500] * 10
    assert ds.images.min() == -1.0 and ds.images.max() == 1.0
    # Real digits are mostly background with bright strokes, not noise.
    assert 0.7 < (ds.images == -1.0).mean() < 0.9


def test_fashion_mnist_in_data_dir(tmp_path):
    images, labels = fake_digits(6, seed=1)
    write_idx_split(tmp_path / "FashionMNIST" / "raw", images, labels)
    ds = data.load_dataset("fashion-mnist", tmp_path, allow_download=False)
    assert ds.name == "fashion-mnist" and ds.images.shape == (6, 28, 28)


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.exists(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    ds = data.load_dataset("fashion-mnist", tmp_path, allow_download=False)
    assert ds.images.shape == (60000, 28, 28) and ds.source == str(data.DEBIAN_FASHION_MNIST)
    assert ds.images.min() == -1.0 and ds.images.max() == 1.0
    assert np.bincount(ds.labels).tolist() == [6000] * 10


def _offline(url):
    raise OSError("network is unreachable")


def test_mnist_falls_back_to_sample_with_one_warning(tmp_path):
    warnings = []
    ds = data.load_dataset("mnist", tmp_path, opener=_offline, warn=warnings.append)
    assert ds.name == "mnist-sample" and len(ds) == 5000
    assert len(warnings) == 1 and "mnist-sample" in warnings[0] and "MNIST/raw" in warnings[0]


def test_fashion_mnist_does_not_fall_back(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DownloadError):
        data.load_dataset("fashion-mnist", tmp_path, opener=_offline)


def test_corrupt_file_on_disk_is_never_covered_by_fallback(tmp_path):
    images, labels = fake_digits(4)
    img_path, _ = write_idx_split(tmp_path / "MNIST" / "raw", images, labels)
    img_path.write_bytes(img_path.read_bytes()[:30])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        data.load_dataset("mnist", tmp_path, opener=_offline, warn=pytest.fail)
