"""`--eval-every`: quality scored while training, in both trainers, and the best-FID checkpoint."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core import driver, quality
from gan_core.config import Config
from gan_core.errors import UserError
from jax_gan import evaluate
from jax_gan import train as jax_train
from jax_gan.quality.calibration import calibration_sets
from jax_gan.quality.scores import evaluate_images

TRAINERS = ["jax_gan.train", "torch_reference.train"]


def _main(program: str):
    if program == "jax_gan.train":
        return jax_train.main
    return pytest.importorskip("torch_reference.train").main


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _train(program: str, out: Path, data_dir: Path, *flags: str) -> int:
    return _main(program)(["--dataset", "mnist-sample", "--data-dir", str(data_dir), "--out-dir", str(out),
                           "--quiet", "--eval-every", "1", "--eval-num", "600", "--sample-every", "1000",
                           *flags])


@pytest.mark.slow
@pytest.mark.parametrize("program", TRAINERS)
def test_eval_every_scores_each_epoch_and_keeps_the_best(program, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(program, out, data_dir, "--epochs", "3") == 0
    records = _records(out)
    scores = [r for r in records if "fid" in r]
    assert [(r["step"], r["epoch"]) for r in scores] == [(78, 0), (157, 1), (236, 2)]  # 79 steps/epoch.
    for r in scores:
        assert set(quality.KEYS) <= set(r) and r["eval_seconds"] > 0 and r["num_samples"] == 600
        assert 0 < r["fid"] < 1000 and 0 <= r["coverage"] <= 1 and 1 <= r["classes_covered"] <= 10
    assert len([r for r in records if "loss_g" in r]) > len(scores)
    best = min(scores, key=lambda r: r["fid"])
    assert f"best {best['fid']:.1f} after step {best['step']}" in capsys.readouterr().out
    # The second panel: a taller figure than losses alone.
    assert Image.open(out / "losses.png").size[1] > 600

    # The best checkpoint is the state that scored best: evaluate redraws the same z.
    checkpoint = out / ("best" if program == "jax_gan.train" else "best.pth")
    seed = Config().seed + driver.EVAL_SEED_OFFSET
    assert evaluate.main([str(checkpoint), "--num", "600", "--seed", str(seed), "--no-parzen",
                          "--data-dir", str(data_dir), "--json", str(tmp_path / "best.json")]) == 0
    assert json.loads((tmp_path / "best.json").read_text())["fid"] == pytest.approx(best["fid"], rel=1e-3)
    printed = capsys.readouterr().out
    assert f"step {best['step'] + 1:,}" in printed

    # sample accepts it too.
    sample = pytest.importorskip(program.replace(".train", ".sample"))
    assert sample.main(["--checkpoint", str(checkpoint), "--num", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 28, 28)


@pytest.mark.slow
def test_a_resumed_run_keeps_its_best_and_scores_from_where_it_stopped(data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train("jax_gan.train", out, data_dir, "--epochs", "2", "--checkpoint-every", "1") == 0
    first = [r for r in _records(out) if "fid" in r]
    assert jax_train.main(["--out-dir", str(out), "--resume", "--epochs", "3", "--quiet"]) == 0
    scores = [r for r in _records(out) if "fid" in r]
    assert scores[:2] == first and scores[2]["step"] == 236
    best = jax_train.JaxTrainer().best_meta(out)
    assert best["quality"]["fid"] == min(r["fid"] for r in scores)


@pytest.mark.slow
def test_overwrite_removes_the_best_checkpoint(data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train("jax_gan.train", out, data_dir, "--epochs", "1") == 0
    assert (out / "best").is_dir()
    assert jax_train.main(["--dataset", "mnist-sample", "--out-dir", str(out), "--overwrite", "--quiet",
                           "--epochs", "1", "--max-steps", "5"]) == 0
    assert not (out / "best").exists()


def test_eval_is_due_after_every_kth_epoch_and_at_the_end():
    config = Config(eval_every=2)
    due = [s for s in range(1, 351) if driver.epoch_due(s, 79, 350, config.eval_every)]
    assert due == [158, 316, 350]


def test_a_scorer_that_cannot_start_is_one_error(tmp_path):
    with pytest.raises(UserError, match="quality scorer .* exited with status 1"):
        quality.QualityWorker("mnist-sample", tmp_path, python="false")
    with pytest.raises(UserError, match="quality scorer .* sent '-m jax_gan.quality.serve .*not a JSON"):
        quality.QualityWorker("mnist-sample", tmp_path, python="echo")
    with pytest.raises(UserError, match="cannot start the quality scorer"):
        quality.QualityWorker("mnist-sample", tmp_path, python=str(tmp_path / "no-such-python"))


@pytest.mark.slow
def test_the_worker_scores_as_evaluate_does_and_reports_bad_input(data_dir):
    images = calibration_sets("mnist-sample", data_dir)["real"][:500]
    with quality.QualityWorker("mnist-sample", data_dir, python=sys.executable) as worker:
        assert worker.info["classifier_accuracy"] > 0.9
        scores = worker.score(images, seed=3)
        with pytest.raises(UserError, match=r"quality scorer: .*values must lie in \[-1, 1\]"):
            worker.score(images * 3)
        again = worker.score(images, seed=3)  # Still serving after a bad request.
        worker.process.stdin.close()  # As when the trainer is killed: the worker cleans up itself.
        assert worker.process.wait(timeout=30) == 0 and not worker.folder.exists()
    expected = evaluate_images(images, "mnist-sample", data_dir, seed=3, parzen=False)
    for key in quality.KEYS:
        assert scores[key] == pytest.approx(expected[key], rel=1e-6), key
        assert again[key] == scores[key]
    assert worker.process.returncode == 0 and not worker.folder.exists()


def test_eval_flags_are_checked(tmp_path, capsys):
    for flags, message in ((["--eval-every", "-1"], "--eval-every must be in [0,"),
                           (["--eval-num", "128"], "--eval-num must be in [129,")):
        assert jax_train.main(["--out-dir", str(tmp_path / "x"), *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


class _Best:
    """A trainer whose best checkpoint's metadata is given."""

    def __init__(self, meta):
        self.meta = meta

    def best_meta(self, out_dir):
        if isinstance(self.meta, Exception):
            raise self.meta
        return self.meta


def test_a_resume_beats_only_a_best_from_its_past_scored_on_as_many_samples(tmp_path, capsys):
    config = Config(eval_every=1, eval_num=600)
    best = {"step": 158, "config": config.to_dict(), "quality": {"fid": 42.0}}
    assert driver.best_so_far(_Best(best), tmp_path, 158, config) == 42.0
    assert driver.best_so_far(_Best(best), tmp_path, 79, config) == float("inf")  # From a lost future.
    assert driver.best_so_far(_Best(best), tmp_path, 158, Config(eval_num=700)) == float("inf")
    assert driver.best_so_far(_Best(None), tmp_path, 158, config) == float("inf")
    damaged = _Best(UserError("checkpoint best/158 is damaged"))
    assert driver.best_so_far(damaged, tmp_path, 158, config) == float("inf")
    assert "damaged; the next quality score replaces it" in capsys.readouterr().err


class _FailingScorer:
    def score(self, images, seed=0):
        raise UserError("the quality scorer (python -m jax_gan.quality.serve) exited with status -9")


def test_a_scorer_that_fails_mid_run_costs_no_checkpoint_and_training_goes_on(tmp_path, capsys):
    from tests.helpers import FakeTrainer

    config = Config(dataset="mnist-sample", epochs=3, eval_every=1, checkpoint_every=1, sample_every=10**6)
    trainer = FakeTrainer()
    for folder in ("checkpoints", "samples"):
        (tmp_path / folder).mkdir()
    state = trainer.start([driver.Run(config, tmp_path)], None, resume=False)
    runs = [driver.RunProgress(0, config, tmp_path)]
    with driver.GracefulStop() as stop:
        code = driver.train_loop(trainer, state, runs, tmp_path, 5000, {}, stop, True, _FailingScorer())
    assert code == 0
    assert "exited with status -9; training goes on without quality scores" in capsys.readouterr().err
    assert trainer.saved_meta(tmp_path)["step"] == 237  # Every checkpoint, the last included.
    assert not [r for r in _records(tmp_path) if "fid" in r]


def test_a_jax_without_a_backend_is_one_line_and_writes_nothing(tmp_path):
    import os
    import subprocess

    env = {**os.environ, "JAX_PLATFORMS": "no-such-platform"}
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "jax_gan.train", "--dataset", "mnist-sample", "--out-dir",
                           str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[-1]]
    assert "JAX cannot start its backend (JAX_PLATFORMS=no-such-platform)" in proc.stderr
    assert not out.exists()


def test_a_bare_assertion_from_jax_is_one_error_too(monkeypatch):
    import jax

    from jax_gan import backend

    def broken():
        raise AssertionError  # What jax.devices() raises for JAX_PLATFORMS=cuda without a GPU (jax 0.10).

    monkeypatch.setattr(jax, "devices", broken)
    with pytest.raises(UserError, match="JAX cannot start its backend.*AssertionError"):
        backend.platform()


def test_ctrl_c_that_reaches_a_command_is_one_line_and_exit_130(capsys):
    from gan_core.cli import main_guard

    def interrupted(argv):
        raise KeyboardInterrupt

    assert main_guard(interrupted)([]) == 130
    assert capsys.readouterr().err.strip() == "interrupted: stopped at once, nothing more was saved"
