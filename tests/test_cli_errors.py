"""Bad input: one clear line on stderr, exit status 2, no traceback, nothing lost."""

import os
import subprocess
import sys

import pytest

from jax_gan import sample as jax_sample
from jax_gan import train as jax_train
from tests.helpers import fake_digits, write_idx_split

torch_train = pytest.importorskip("torch_reference.train")
torch_sample = pytest.importorskip("torch_reference.sample")

TRAINERS = [jax_train.main, torch_train.main]


def _error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("main", TRAINERS)
@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--epochs", "0"], "--epochs must be positive"),
    (["--max-steps", "-5"], "--max-steps must be positive"),
    (["--batch-size", "6000"], "larger than mnist-sample"),
    (["--batch-size", "1", "--epochs", "1000000"], "a run counts at most 2,147,483,647"),
])
def test_bad_values(main, flags, message, tmp_path, capsys):
    code = main(["--dataset", "mnist-sample", "--out-dir", str(tmp_path / "run"), *flags])
    assert code == 2 and message in _error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("main", TRAINERS)
def test_unknown_dataset(main, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "cifar", "--out-dir", str(tmp_path)])
    assert info.value.code == 2 and "invalid choice: 'cifar'" in _error(capsys)


@pytest.mark.parametrize("main", TRAINERS)
def test_truncated_idx_names_the_file(main, tmp_path, capsys):
    images, labels = fake_digits(100)
    img, _ = write_idx_split(tmp_path / "data" / "MNIST" / "raw", images, labels, gz=False)
    img.write_bytes(img.read_bytes()[:5000])
    code = main(["--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "run")])
    err = _error(capsys)
    assert code == 2 and "train-images-idx3-ubyte: truncated: header says 100 images" in err


@pytest.mark.parametrize("main", TRAINERS)
def test_unwritable_out_dir(main, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["--dataset", "mnist-sample", "--out-dir", str(blocker / "run")])
    assert code == 2 and "cannot write to --out-dir" in _error(capsys)


@pytest.mark.parametrize("main", TRAINERS)
def test_existing_run_is_not_overwritten(main, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0}\n')
    code = main(["--dataset", "mnist-sample", "--out-dir", str(run)])
    err = _error(capsys)
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (run / "metrics.jsonl").read_text() == '{"step": 0}\n'


@pytest.mark.parametrize("main", TRAINERS)
def test_resume_without_a_run(main, tmp_path, capsys):
    code = main(["--out-dir", str(tmp_path / "nothing"), "--resume"])
    assert code == 2 and "no previous run" in _error(capsys)


@pytest.mark.parametrize("main", [pytest.param(jax_sample.main, id="jax", marks=pytest.mark.jax_version),
                                  pytest.param(torch_sample.main, id="torch")])
def test_sample_missing_or_corrupt_checkpoint(main, tmp_path, capsys):  # Orbax's errors, in JAX.
    code = main(["--checkpoint", str(tmp_path / "absent"), "--out", str(tmp_path / "s.npy")])
    assert code == 2 and "does not exist" in _error(capsys)
    corrupt = tmp_path / "corrupt"
    (corrupt / "checkpoints" / "10").mkdir(parents=True)
    (corrupt / "checkpoints" / "10" / "garbage").write_text("x")
    (corrupt / "checkpoint.pth").write_bytes(b"\x00not a checkpoint")
    code = main(["--checkpoint", str(corrupt), "--out", str(tmp_path / "s.npy")])
    err = _error(capsys)
    assert code == 2 and ("corrupt" in err or "not a readable" in err or "no checkpoint" in err)
    assert not (tmp_path / "s.npy").exists()


def test_python_m_exits_2_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run([sys.executable, "-m", "jax_gan.train", "--batch-size", "-3",
                             "--out-dir", str(tmp_path)], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --batch-size must be positive, got -3"
