import gzip

import numpy as np
import pytest

from gan_core import data, download
from gan_core.errors import DownloadError
from tests.helpers import FileServer, fake_digits, idx_bytes, md5


def _split_files(n=9):
    images, labels = fake_digits(n)
    return images, labels, {
        f"{split}-{kind}": gzip.compress(idx_bytes(array))
        for split in ("train", "t10k")
        for kind, array in (("images-idx3-ubyte.gz", images), ("labels-idx1-ubyte.gz", labels))
    }


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")] if folder.exists() else []


def test_download_good_files_then_load(tmp_path):
    images, labels, files = _split_files()
    folder = data.raw_folder("mnist", tmp_path)
    with FileServer(files) as server:
        download.download_dataset("mnist", folder, mirrors=[server.url],
                                  md5s={k: md5(v) for k, v in files.items()})
    # The .gz and the uncompressed copy torchvision looks for.
    assert (folder / "train-images-idx3-ubyte.gz").exists()
    assert (folder / "train-images-idx3-ubyte").exists()
    ds = data.load_dataset("mnist", tmp_path, allow_download=False)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.images.shape == images.shape and not _leftovers(folder)


def test_bad_checksum_leaves_nothing_in_place(tmp_path):
    _, _, files = _split_files()
    dest = tmp_path / "train-images-idx3-ubyte.gz"
    with FileServer(files) as server:
        with pytest.raises(DownloadError, match="MD5 mismatch"):
            download.download_file([server.url + dest.name], dest, "0" * 32, progress=False)
    assert not dest.exists() and not _leftovers(tmp_path)


def test_dropped_connection_leaves_nothing_in_place(tmp_path):
    _, _, files = _split_files()
    name = "train-images-idx3-ubyte.gz"
    dest = tmp_path / name
    with FileServer(files, drop=frozenset({name})) as server:
        with pytest.raises(DownloadError, match=name):
            download.download_file([server.url + name], dest, md5(files[name]), progress=False)
    assert not dest.exists() and not _leftovers(tmp_path)


def test_second_mirror_used_when_first_fails(tmp_path):
    _, _, files = _split_files()
    name = "train-labels-idx1-ubyte.gz"
    with FileServer({}) as empty, FileServer(files) as good:
        download.download_file([empty.url + name, good.url + name], tmp_path / name,
                               md5(files[name]), progress=False)
    assert (tmp_path / name).read_bytes() == files[name]


def test_all_mirrors_failing_names_each(tmp_path):
    def refuse(url):
        raise OSError(f"refused {url}")

    with pytest.raises(DownloadError) as info:
        download.download_file(["http://a/x.gz", "http://b/x.gz"], tmp_path / "x.gz", "0" * 32,
                               opener=refuse, progress=False)
    assert "http://a/x.gz" in str(info.value) and "http://b/x.gz" in str(info.value)


def test_mirrors_and_checksums_match_torchvision():
    tv = pytest.importorskip("torchvision.datasets.mnist")
    assert tuple(tv.MNIST.mirrors) == download.MIRRORS["mnist"]
    assert dict(tv.MNIST.resources) == download.MD5["mnist"]
    assert dict(tv.FashionMNIST.resources) == download.MD5["fashion-mnist"]


@pytest.mark.parametrize("blocker", ["file", "dangling link"])
def test_data_dir_that_is_not_a_folder_is_one_clear_error(tmp_path, blocker):
    data_dir = tmp_path / "data"
    if blocker == "file":
        data_dir.write_text("not a folder")
    else:
        data_dir.symlink_to(tmp_path / "missing")
    with pytest.raises(DownloadError, match="cannot create"):
        download.download_dataset("mnist", data.raw_folder("mnist", data_dir), mirrors=["http://a/"])
    warnings = []
    ds = data.load_dataset("mnist", data_dir, opener=_refuse, warn=warnings.append)
    assert ds.name == "mnist-sample" and len(warnings) == 1 and "cannot create" in warnings[0]


def _refuse(url):
    raise OSError("network is unreachable")
