"""The PyTorch reference trainer end to end, on the offline MNIST sample."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gan_core.tutorial_checkpoint import TUTORIAL_KEYS  # noqa: E402
from tests.helpers import fake_digits, write_idx_split  # noqa: E402
from torch_reference import sample as torch_sample  # noqa: E402
from torch_reference import train as torch_train  # noqa: E402


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run_30(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch") / "run"
    code = torch_train.main(["--dataset", "mnist-sample", "--epochs", "1", "--max-steps", "30",
                             "--out-dir", str(out), "--quiet"])
    assert code == 0
    return out


def test_smoke_run(run_30):
    records = _metrics(run_30)
    assert records and all(np.isfinite([r["loss_g"], r["loss_d"]]).all() for r in records)
    assert records[-1]["step"] == 29
    assert list((run_30 / "samples").glob("*.png"))
    payload = torch.load(run_30 / "checkpoint.pth", weights_only=True)
    assert set(TUTORIAL_KEYS) <= set(payload) and payload["step"] == 30
    for name in ("losses.png", "interpolation.png", "samples.png"):
        assert (run_30 / name).stat().st_size > 0


def test_resume_continues(run_30):
    code = torch_train.main(["--out-dir", str(run_30), "--resume", "--max-steps", "45", "--quiet"])
    assert code == 0
    assert torch.load(run_30 / "checkpoint.pth", weights_only=True)["step"] == 45
    assert _metrics(run_30)[-1]["step"] == 44


def test_sample_npy(run_30, tmp_path):
    out = tmp_path / "s.npy"
    assert torch_sample.main(["--checkpoint", str(run_30 / "checkpoint.pth"), "--num", "100",
                              "--out", str(out)]) == 0
    images = np.load(out)
    assert images.shape == (100, 28, 28) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1


def test_tutorial_loader_reads_the_same_files(tmp_path):
    images, labels = fake_digits(130)
    for split in ("train", "test"):  # torchvision wants all four files.
        write_idx_split(tmp_path / "data" / "MNIST" / "raw", images, labels, split, gz=False)
    out = tmp_path / "run"
    code = torch_train.main(["--loader", "tutorial", "--data-dir", str(tmp_path / "data"),
                             "--epochs", "2", "--out-dir", str(out), "--quiet", "--no-download"])
    assert code == 0
    assert [r["step"] for r in _metrics(out)][-1] == 5  # 3 steps per epoch: 64 + 64 + 2.


def test_library_entry_point(tmp_path):
    from gan_core.config import Config

    config = Config(dataset="mnist-sample", epochs=1, max_steps=12, image_scale=1)
    assert torch_train.train(config, tmp_path / "lib") == 0
    assert _metrics(tmp_path / "lib")[-1]["step"] == 11
    assert (tmp_path / "lib" / "progress.gif").stat().st_size > 0


def test_nonfinite_loss_exits_3_like_jax(tmp_path, capsys):
    out = tmp_path / "nan"
    code = torch_train.main(["--dataset", "mnist-sample", "--epochs", "1", "--lr", "1e30", "--log-every", "1",
                             "--out-dir", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3 and "non-finite loss at step 1" in err and "Traceback" not in err
    assert [r["step"] for r in _metrics(out)] == [0]
    assert not (out / "checkpoint.pth").exists()
