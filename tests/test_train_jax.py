"""The JAX trainer end to end, on the offline MNIST sample.

Tests marked jax_version read or write Orbax checkpoints, or compare JAX's numbers (bit-identical
resumes, the same seed, dropout masks): CI runs them under each JAX it installs.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jax_gan import checkpoint, interpolate, sample
from jax_gan import train as jax_train


def _run(tmp_path, name, *flags):
    out = tmp_path / name
    code = jax_train.main(["--dataset", "mnist-sample", "--out-dir", str(out), "--quiet", *flags])
    return code, out


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def run_100(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jax")
    code, out = _run(tmp, "full", "--epochs", "2", "--max-steps", "100", "--sample-every", "40")
    assert code == 0
    return out


@pytest.mark.jax_version
def test_smoke_run_writes_every_output(run_100):
    records = _metrics(run_100)
    assert records[0]["step"] == 0 and records[-1]["step"] == 99
    assert {"step", "epoch", "loss_g", "loss_d"} <= set(records[0])
    assert all(np.isfinite([r["loss_g"], r["loss_d"]]).all() for r in records)
    assert records[-1]["epoch"] == 1  # 79 steps per epoch of 5,000 images at batch 64.
    grids = sorted(p.name for p in (run_100 / "samples").iterdir())
    assert grids == ["step_0000000.png", "step_0000040.png", "step_0000080.png"]
    for name in ("losses.png", "interpolation.png", "samples.png", "config.json"):
        assert (run_100 / name).stat().st_size > 0
    state, config, meta = checkpoint.load(run_100)
    assert int(state.step) == 100 and config.dataset == "mnist-sample" and meta["epoch"] == 1


@pytest.mark.jax_version
def test_resume_is_bit_identical(run_100, tmp_path):
    code, out = _run(tmp_path, "split", "--epochs", "2", "--max-steps", "50", "--sample-every", "40")
    assert code == 0
    code = jax_train.main(["--out-dir", str(out), "--resume", "--max-steps", "100", "--quiet"])
    assert code == 0
    full, _, _ = checkpoint.load(run_100)
    resumed, _, _ = checkpoint.load(out)
    assert _leaves_equal(full, resumed)
    # The interrupted run also logged its last step (49); every other line is identical.
    assert [r for r in _metrics(out) if r["step"] != 49] == _metrics(run_100)


@pytest.mark.jax_version
def test_sample_and_interpolate(run_100, tmp_path):
    npy = tmp_path / "s.npy"
    assert sample.main(["--checkpoint", str(run_100), "--num", "100", "--out", str(npy)]) == 0
    images = np.load(npy)
    assert images.shape == (100, 28, 28) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    png = tmp_path / "i.png"
    assert interpolate.main(["--checkpoint", str(run_100), "--steps", "10", "--out", str(png)]) == 0
    assert png.stat().st_size > 0
    raw = tmp_path / "i.npy"
    assert interpolate.main(["--checkpoint", str(run_100), "--slerp", "--out", str(raw)]) == 0
    assert np.load(raw).shape == (10, 28, 28)


@pytest.mark.jax_version
def test_resume_refuses_structural_changes(run_100, capsys):
    code = jax_train.main(["--out-dir", str(run_100), "--resume", "--batch-size", "32"])
    assert code == 2 and "cannot change --batch-size" in capsys.readouterr().err
    code = jax_train.main(["--out-dir", str(run_100), "--resume", "--dropout-masks", "threefry"])
    assert code == 2 and "cannot change --dropout-masks" in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_threefry(tmp_path_factory):
    code, out = _run(tmp_path_factory.mktemp("threefry"), "whole", "--epochs", "1", "--max-steps", "20",
                     "--dropout-masks", "threefry")
    assert code == 0
    return out


@pytest.mark.jax_version
def test_threefry_dropout_masks_train_a_different_but_finite_run(run_100, run_threefry):
    out = run_threefry
    _, config, _ = checkpoint.load(out)
    assert config.dropout_masks == "threefry"
    losses = [(r["loss_g"], r["loss_d"]) for r in _metrics(out)]
    assert np.isfinite(losses).all()
    hashed = [(r["loss_g"], r["loss_d"]) for r in _metrics(run_100)][:len(losses)]
    assert losses != hashed  # Same weights and data; only the masks differ.


@pytest.mark.jax_version
def test_nonfinite_loss_stops_logs_the_good_steps_and_saves_nothing(tmp_path, capsys):
    code, out = _run(tmp_path, "nan", "--epochs", "1", "--lr", "1e30", "--log-every", "1")
    assert code == 3
    err = capsys.readouterr().err
    assert "non-finite loss at step" in err
    assert not list((out / "checkpoints").iterdir())  # Nothing bad was saved.
    assert [r["step"] for r in _metrics(out)] == [0]


@pytest.mark.jax_version
@pytest.mark.slow
def test_sigterm_saves_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "jax_gan.train", "--dataset", "mnist-sample",
                             "--epochs", "500", "--out-dir", str(out), "--quiet"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "--resume" in err
    state, _, _ = checkpoint.load(out)
    assert int(state.step) % 79 == 0 and int(state.step) > 0
    code = jax_train.main(["--out-dir", str(out), "--resume", "--max-steps",
                           str(int(state.step) + 10), "--quiet"])
    assert code == 0
    assert int(checkpoint.load(out)[0].step) == int(state.step) + 10


@pytest.mark.slow
def test_default_command_falls_back_offline_with_one_warning(tmp_path):
    # Point urllib at a closed local port so no download can succeed, whatever the network.
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "jax_gan.train", "--max-steps", "3", "--quiet",
                             "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "run")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "mnist-sample" in warnings[0]


@pytest.mark.jax_version
def test_runs_saved_before_dropout_masks_existed_resume_with_threefry(run_threefry, tmp_path):
    code, old = _run(tmp_path, "old", "--epochs", "1", "--max-steps", "10", "--dropout-masks", "threefry")
    assert code == 0
    # What an earlier version saved: the same checkpoint without the field
    # (a resume reads the config from the checkpoint, not from config.json).
    meta = old / "checkpoints" / "10" / "meta" / "metadata"
    saved = json.loads(meta.read_text())
    del saved["config"]["dropout_masks"]
    meta.write_text(json.dumps(saved))
    (old / "checkpoints" / "10" / checkpoint.FILE_SUMS).unlink()  # Earlier versions wrote none.
    assert checkpoint.load(old)[1].dropout_masks == "threefry"
    code = jax_train.main(["--out-dir", str(old), "--resume", "--max-steps", "20", "--quiet"])
    assert code == 0
    assert _leaves_equal(checkpoint.load(old)[0], checkpoint.load(run_threefry)[0])


@pytest.mark.jax_version
def test_library_entry_point_trains_like_the_command_with_the_same_seed(run_100, tmp_path):
    # A second run of the same seed: the same losses, step for step (training is deterministic).
    from gan_core.config import Config
    from jax_gan.train import train

    config = Config(dataset="mnist-sample", epochs=2, max_steps=100, sample_every=40)
    assert train(config, tmp_path / "lib") == 0
    assert _metrics(tmp_path / "lib") == _metrics(run_100)
    assert _leaves_equal(checkpoint.load(tmp_path / "lib")[0], checkpoint.load(run_100)[0])


def test_pictures_are_upscaled_and_progress_is_animated(run_100):
    from PIL import Image

    grid = 5 * (28 + 2) + 2  # torchvision's make_grid layout: 2-pixel gaps.
    for path in [run_100 / "samples.png", *(run_100 / "samples").iterdir()]:
        assert Image.open(path).size == (4 * grid, 4 * grid), path
    assert Image.open(run_100 / "interpolation.png").size == (4 * (10 * 30 + 2), 4 * 32)
    gif = Image.open(run_100 / "progress.gif")
    assert gif.n_frames == 3 and gif.size == (2 * grid, 2 * grid)

