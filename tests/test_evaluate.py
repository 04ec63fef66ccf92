"""Sample-quality metrics: hand-computable cases, the classifier cache, and `python -m jax_gan.evaluate`."""

import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from gan_core import metrics
from gan_core.config import Config
from gan_core.errors import CheckpointError
from gan_core.quality import as_eval_range
from jax_gan import evaluate
from jax_gan.generator_checkpoint import load_generator, run_framework
from jax_gan.quality import classifier
from jax_gan.quality.calibration import calibration_sets
from jax_gan.quality.inputs import run_samples
from jax_gan.quality.scores import KEYS, METRIC_KEYS, evaluate_images

ROOT = Path(__file__).resolve().parent.parent


# --- metrics, by hand ---------------------------------------------------------------------------

def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def test_frechet_distance_of_diagonal_gaussians():
    # |(3, 4)|^2 + (1 - 2)^2 + (2 - 1)^2: the square roots of the variances subtract.
    assert metrics.frechet_distance([0, 0], np.diag([1.0, 4.0]), [3, 4], np.diag([4.0, 1.0])) == \
        pytest.approx(27.0, abs=1e-12)


def test_frechet_distance_of_rotated_commuting_covariances():
    r = _rotation(0.7)
    c1, c2 = r @ np.diag([1.0, 4.0]) @ r.T, r @ np.diag([9.0, 16.0]) @ r.T
    assert metrics.frechet_distance(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(8.0, abs=1e-12)


def test_frechet_distance_matches_scipy_on_non_commuting_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = a @ a.T, b @ b.T
    expected = np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert metrics.frechet_distance(np.zeros(6), c1, np.zeros(6), c2) == pytest.approx(expected, rel=1e-9)


def test_sqrtm_psd_of_a_singular_matrix():
    m = np.array([[1.0, 1.0], [1.0, 1.0]])  # Rank 1: eigenvalues 2 and 0.
    s = metrics.sqrtm_psd(m)
    np.testing.assert_allclose(s, m / math.sqrt(2), atol=1e-12)
    np.testing.assert_allclose(s @ s, m, atol=1e-12)


def test_fid_is_zero_for_a_set_against_itself_and_the_squared_shift_for_a_translate():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert metrics.fid(x, x) == pytest.approx(0.0, abs=1e-9)
    assert metrics.fid(x, x + [3.0, 4.0, 0, 0, 0, 0, 0, 0]) == pytest.approx(25.0, abs=1e-9)


def test_prdc_one_dimensional_hand_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1: every real ball has radius 1.
    fake = np.array([[0.5], [10.0]])  # Fake balls: radius 9.5 each.
    # 0.5 is inside the balls of 0 and 1; 10 inside none. Reals 0 and 1 have 0.5 nearby.
    assert metrics.prdc(real, fake, k=1) == {"precision": 0.5, "recall": 1.0, "density": 1.0,
                                             "coverage": 0.5}


def test_prdc_of_identical_sets_is_perfect_and_of_copies_recalls_nothing():
    x = np.random.default_rng(0).normal(size=(200, 4))
    same = metrics.prdc(x, x.copy())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    copies = metrics.prdc(x, np.repeat(x[:2], 100, axis=0))  # Balls of radius 0: strict "<".
    assert copies["recall"] == 0.0 and copies["precision"] == 1.0
    assert 2 / 200 <= copies["coverage"] < 0.1  # The two copied points, and a few neighbours' balls.


def test_prdc_matched_uses_equal_sized_sets():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 3)), rng.normal(size=(170, 3))
    chunks = metrics.prdc_matched(real, fake, seed=1)  # 3 chunks of 50; 20 left out.
    order = np.random.default_rng(1).permutation(170)
    expected = [metrics.prdc(real, fake[order[i:i + 50]]) for i in (0, 50, 100)]
    for name in chunks:
        assert chunks[name] == pytest.approx(np.mean([e[name] for e in expected]))
    fewer = metrics.prdc_matched(real, fake[:20], seed=1)
    subset = np.sort(np.random.default_rng(1).permutation(50)[:20])
    assert fewer == metrics.prdc(real[subset], fake[:20])


def test_class_stats():
    uniform = np.eye(10)[np.arange(1000) % 10]
    assert metrics.class_stats(uniform) == {"class_entropy": pytest.approx(math.log(10)),
                                            "classes_covered": 10, "confidence": 1.0}
    ones = np.full((100, 10), 0.05)
    ones[:, 1] = 0.55
    assert metrics.class_stats(ones) == {"class_entropy": 0.0, "classes_covered": 1,
                                         "confidence": pytest.approx(0.55)}
    rare = np.eye(10)[[0] * 99 + [1]]  # Class 1 holds exactly 1%: covered.
    assert metrics.class_stats(rare)["classes_covered"] == 2
    assert metrics.class_stats(np.eye(10)[[0] * 199 + [1]])["classes_covered"] == 1


def test_parzen_log_likelihood_of_one_center():
    center, point, sigma = np.zeros((1, 4)), np.array([[1.0, 1.0, 0.0, 0.0]]), 0.5
    expected = -2.0 / (2 * sigma**2) - 4 / 2 * math.log(2 * math.pi * sigma**2)
    assert metrics.parzen_log_likelihoods(center, point, sigma)[0] == pytest.approx(expected, abs=1e-12)
    two = metrics.parzen_log_likelihoods(np.zeros((2, 4)), point, (sigma, 1.0))
    assert two[0, 0] == pytest.approx(expected)  # Two equal centers: the same mixture.


def test_parzen_chooses_the_width_on_validation_and_scores_test():
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, size=(400, 5))
    val, test = rng.normal(0, 0.3, size=(100, 5)), rng.normal(0, 0.3, size=(80, 5))
    sigmas = (0.05, 0.2, 0.8)
    result = metrics.parzen(samples, val, test, sigmas)
    val_means = metrics.parzen_log_likelihoods(samples, val, sigmas).mean(1)
    assert result["parzen_sigma"] == sigmas[int(np.argmax(val_means))]
    ll = metrics.parzen_log_likelihoods(samples, test, result["parzen_sigma"])
    assert result["parzen_ll"] == pytest.approx(ll.mean())
    assert result["parzen_se"] == pytest.approx(ll.std(ddof=1) / math.sqrt(80))


# --- the classifier and its cache ---------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained():
    """A classifier with its initial weights: enough to test the cache, without training."""
    rng = np.random.default_rng(0)
    sizes = [784, 256, classifier.FEATURES, classifier.NUM_CLASSES]
    params = {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(np.float32),
                             "bias": np.zeros(b, np.float32)}
              for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))}
    return classifier.Classifier(params, {"accuracy": 0.1})


def _messages():
    seen = []
    return seen, seen.append


@pytest.mark.slow
def test_classifier_is_cached_on_disk_with_its_accuracy(data_dir):
    [folder] = (data_dir / "classifiers").iterdir()
    assert folder.name.startswith("mnist-sample-")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["accuracy"] > 0.95 and meta["num_test"] == 1000 and meta["train_seconds"] > 0
    seen, log = _messages()
    clf = classifier.cached_or_trained(classifier.load_splits("mnist-sample"), data_dir, log=log)
    assert seen == [] and clf.accuracy == meta["accuracy"]  # Read, not trained again.
    assert not [p for p in (data_dir / "classifiers").iterdir() if p.name.startswith(".")]


def test_a_damaged_cache_is_detected(untrained, tmp_path):
    folder = tmp_path / "cache"
    classifier.write_cache(folder, untrained)
    assert classifier.read_cache(folder).accuracy == 0.1
    meta = json.loads((folder / "meta.json").read_text())
    name = next(iter(meta["checksums"]))
    meta["checksums"][name] = "0" * 64  # As if the weights' bytes had changed.
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(classifier.CacheError, match="SHA-256"):
        classifier.read_cache(folder)
    (folder / "meta.json").write_text("{")  # Torn.
    with pytest.raises(classifier.CacheError):
        classifier.read_cache(folder)


def test_damaged_weight_files_are_detected(untrained, tmp_path):
    folder = tmp_path / "cache"
    classifier.write_cache(folder, untrained)
    for path in (folder / "params").rglob("*"):
        if path.is_file() and path.stat().st_size > 1000:
            data = bytearray(path.read_bytes())
            data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
            path.write_bytes(bytes(data))
    with pytest.raises(classifier.CacheError):
        classifier.read_cache(folder)


def test_a_damaged_cache_is_retrained_not_trusted(untrained, tmp_path, monkeypatch):
    splits = classifier.load_splits("mnist-sample")
    folder = classifier.cache_dir(splits, tmp_path)
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text("garbage")
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: untrained)
    seen, log = _messages()
    assert classifier.cached_or_trained(splits, tmp_path, log=log) is untrained
    assert "damaged" in seen[0] and classifier.read_cache(folder).accuracy == 0.1


def test_a_failed_cache_write_leaves_nothing_behind(untrained, tmp_path, monkeypatch):
    folder = tmp_path / "classifiers" / "mnist-sample-0"

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(classifier.os, "rename", fail)
    with pytest.raises(OSError):
        classifier.write_cache(folder, untrained)
    assert list(folder.parent.iterdir()) == []


def test_cache_key_follows_the_recipe_and_the_files(tmp_path):
    splits = classifier.load_splits("mnist-sample")
    base = classifier.cache_key(splits)
    assert classifier.cache_key(splits, classifier.Recipe(max_epochs=3)) != base
    copy = tmp_path / "mnist_5k.csv.gz"
    copy.write_bytes(splits.files[0].read_bytes() + b"\0")
    other = classifier.Splits(splits.dataset, splits.train, splits.val, splits.test, splits.reference,
                              (copy,))
    assert classifier.cache_key(other) != base


def test_mnist_sample_holds_out_a_fifth_by_class():
    splits = classifier.load_splits("mnist-sample")
    assert [len(s[0]) for s in (splits.train, splits.val, splits.test)] == [3500, 500, 1000]
    assert np.bincount(splits.test[1]).tolist() == [100] * 10
    assert "held-out" in splits.reference


# --- what the scores say ------------------------------------------------------------------------

@pytest.mark.slow
def test_scores_rank_real_over_degraded_over_collapsed_over_noise(data_dir):
    sets = calibration_sets("mnist-sample", data_dir)
    rng = np.random.default_rng(0)
    real = sets["real"][:2000]  # In random order: all ten classes.
    degraded = np.clip(real + rng.normal(0, 0.5, real.shape), -1, 1).astype(np.float32)
    scores = {name: evaluate_images(images, "mnist-sample", data_dir, parzen=False)
              for name, images in [("real", real), ("degraded", degraded),
                                   ("collapsed", sets["collapsed"]), ("noise", sets["noise"])]}
    fids = [scores[n]["fid"] for n in ("real", "degraded", "collapsed", "noise")]
    assert fids == sorted(fids) and fids[0] < 5
    assert scores["real"]["recall"] > 0.8 and scores["real"]["classes_covered"] == 10
    assert scores["collapsed"]["recall"] == 0 and scores["collapsed"]["classes_covered"] == 1
    assert scores["collapsed"]["precision"] > 0.9  # Real ones, only too few of them.
    assert scores["noise"]["precision"] == 0 and scores["noise"]["confidence"] < 0.5
    assert scores["real"]["class_entropy"] > 2.25 and scores["collapsed"]["class_entropy"] == 0


@pytest.mark.slow
def test_evaluate_images_keys_and_types(data_dir):
    images = calibration_sets("mnist-sample", data_dir)["real"][:300]
    scores = evaluate_images(images[..., None], "mnist-sample", data_dir, num=200)  # NHWC too.
    assert tuple(scores) == KEYS
    assert scores["num_samples"] == 200 and isinstance(scores["classes_covered"], int)
    assert all(isinstance(scores[k], float) for k in METRIC_KEYS if k != "classes_covered")
    assert scores["parzen_ll"] > 0 and scores["classifier_accuracy"] > 0.95


# --- the command --------------------------------------------------------------------------------

def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.slow
def test_command_writes_exactly_the_json_keys(data_dir, tmp_path, capsys):
    path = tmp_path / "real.npy"
    np.save(path, calibration_sets("mnist-sample", data_dir)["real"][:400])
    out = tmp_path / "scores.json"
    assert evaluate.main([str(path), "--dataset", "mnist-sample", "--data-dir", str(data_dir),
                          "--num", "300", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "300 samples" in printed and "fid" in printed and "class shares" in printed
    scores = json.loads(out.read_text())
    assert list(scores) == list(KEYS) and scores["num_samples"] == 300
    assert scores["reference_split"].startswith("mnist-sample held-out 20%")


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    """The same (untrained) weights as a jax_gan run and as a torch_reference checkpoint."""
    torch = pytest.importorskip("torch")
    from jax_gan import convert
    from jax_gan.checkpoint import Checkpointer
    from jax_gan.train_step import create_train_state

    config = Config(dataset="mnist-sample", hidden_dim=32)
    state = create_train_state(config)
    jax_run, torch_run = tmp_path / "jax_run", tmp_path / "torch_run"
    (jax_run / "checkpoints").mkdir(parents=True)
    checkpointer = Checkpointer(jax_run / "checkpoints")
    checkpointer.save(state, {"config": config.to_dict(), "epoch": 0, "dataset_used": "mnist-sample"})
    checkpointer.close()
    (torch_run / "checkpoints").mkdir(parents=True)  # Both trainers create it; only JAX fills it.
    payload = convert.state_to_checkpoint(state, config, epoch=0)
    torch.save({**payload, "dataset_used": "mnist-sample"}, torch_run / "checkpoint.pth")
    return jax_run, torch_run


@pytest.mark.slow
def test_runs_of_both_frameworks_give_the_same_scores(data_dir, tmp_path, capsys):
    jax_run, torch_run = _runs(tmp_path)
    results = []
    for run in (jax_run, torch_run):
        out = tmp_path / f"{run.name}.json"
        assert evaluate.main([str(run), "--data-dir", str(data_dir), "--num", "500", "--json",
                              str(out), "--no-parzen"]) == 0
        results.append(json.loads(out.read_text()))
    printed = capsys.readouterr().out
    assert "jax_gan run, step 0" in printed and "torch_reference run, step 0" in printed
    assert results[0]["reference_split"].startswith("mnist-sample")  # The run's dataset.
    for key in KEYS:
        if isinstance(results[0][key], float):
            assert results[1][key] == pytest.approx(results[0][key], rel=1e-4, abs=1e-6), key
        else:
            assert results[1][key] == results[0][key], key


def test_load_generator_reads_every_kind_of_checkpoint_alike(tmp_path):
    from jax_gan import sample

    jax_run, torch_run = _runs(tmp_path)
    loaded = [load_generator(p) for p in (jax_run, jax_run / "checkpoints", torch_run,
                                          torch_run / "checkpoint.pth")]
    assert [g.framework for g in loaded] == ["jax_gan"] * 2 + ["torch_reference"] * 2
    for g in loaded:
        assert g.step == 0 and g.config.hidden_dim == 32 and g.meta["dataset_used"] == "mnist-sample"
        for a, b in zip(jax.tree.leaves(loaded[0].params), jax.tree.leaves(g.params), strict=True):
            np.testing.assert_array_equal(a, b)
    assert sample.main(["--checkpoint", str(torch_run / "checkpoint.pth"), "--num", "3",
                        "--out", str(tmp_path / "s.npy")]) == 0  # A .pth, as evaluate reads it.
    assert np.load(tmp_path / "s.npy").shape == (3, 28, 28)
    with pytest.raises(CheckpointError, match="holds no checkpoint: expected a run directory"):
        load_generator(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nowhere")


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    def npy(name: str, array) -> str:
        np.save(tmp_path / name, array)
        return str(tmp_path / name)

    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "not_a_run").mkdir()
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    (tmp_path / "notes.txt").write_text("hello")
    ok = npy("ok.npy", np.zeros((10, 28, 28), np.float32))
    return {
        "flat": ([npy("flat.npy", np.zeros((10, 784), np.float32))], "expected images of shape (N, 28, 28)"),
        "size": ([npy("big.npy", np.zeros((10, 32, 32), np.float32))], "got (10, 32, 32)"),
        "uint8": ([npy("u8.npy", np.full((10, 28, 28), 255, np.uint8))], "values must lie in [-1, 1]"),
        "nan": ([npy("nan.npy", np.full((10, 28, 28), np.nan, np.float32))], "NaN or infinite"),
        "few": ([npy("few.npy", np.zeros((3, 28, 28), np.float32))], "too few"),
        "num": ([ok, "--num", "2"], "--num must be at least 129"),
        "missing": ([str(tmp_path / "nowhere")], "does not exist"),
        "no checkpoints": ([str(tmp_path / "empty_run")], "no checkpoint"),
        "not a run": ([str(tmp_path / "not_a_run")], "holds no checkpoint"),
        "junk npy": ([str(tmp_path / "junk.npy")], "not a readable .npy"),
        "junk pth": ([str(tmp_path / "junk.pth")], "not a readable PyTorch checkpoint"),
        "text": ([str(tmp_path / "notes.txt")], "expected a .npy"),
        "json dir": ([ok, "--json", str(tmp_path / "no" / "out.json")], "does not exist"),
    }


@pytest.mark.parametrize("case", ["flat", "size", "uint8", "nan", "few", "num", "missing", "no checkpoints",
                                  "not a run", "junk npy", "junk pth", "text", "json dir"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    if case == "junk pth":
        pytest.importorskip("torch")
    argv, message = _bad_inputs(tmp_path)[case]
    assert evaluate.main([*argv, "--dataset", "mnist-sample", "--data-dir", str(tmp_path)]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "classifiers").exists()  # Refused before any classifier work.


def test_bad_input_from_the_shell(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((5, 28), np.float32))
    proc = subprocess.run([sys.executable, "-m", "jax_gan.evaluate", str(tmp_path / "bad.npy")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'bad.npy'}: expected images of "
                                                "shape (N, 28, 28), got (5, 28)"]


# --- a real GAN -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_trained_gan_ranks_between_real_digits_and_collapse(data_dir, tmp_path):
    from jax_gan.train import train

    assert train(Config(dataset="mnist-sample", epochs=GAN_EPOCHS), tmp_path / "gan") == 0
    gan = run_samples(tmp_path / "gan", 5000, 0).images
    sets = calibration_sets("mnist-sample", data_dir)
    scores = {name: evaluate_images(images, "mnist-sample", data_dir, parzen=False)
              for name, images in [("real", sets["real"]), ("gan", gan), ("collapsed", sets["collapsed"]),
                                   ("noise", sets["noise"])]}
    assert scores["real"]["fid"] < scores["gan"]["fid"] < scores["collapsed"]["fid"] < scores["noise"]["fid"]
    for key in ("coverage", "class_entropy"):
        assert scores["real"][key] > scores["gan"][key] > scores["collapsed"][key], key
    assert scores["real"]["classes_covered"] >= scores["gan"]["classes_covered"] > 1
    assert scores["real"]["recall"] > scores["gan"]["recall"]  # 60 epochs recall little: 0 on seed 0.


GAN_EPOCHS = 60


def test_tutorial_normalization_samples_are_mapped_onto_the_real_scale():
    images = np.array([-1.0, -0.2, 0.0, 0.5, 1.0], np.float32).reshape(1, 5)
    np.testing.assert_array_equal(as_eval_range(images, False), images)
    np.testing.assert_allclose(as_eval_range(images, True), [[-1, -1, -1, 0, 1]])


def test_run_framework_tells_the_trainers_apart(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)  # Both trainers create it.
    assert run_framework(run) == "jax"  # Empty: load() then says "no checkpoint".
    (run / "checkpoint.pth").write_bytes(b"")
    assert run_framework(run) == "torch"
    (run / "checkpoints" / "158").mkdir()
    assert run_framework(run) == "jax"  # Both: a converted run; config.json decides.
    (run / "config.json").write_text(json.dumps({"framework": "torch"}))
    assert run_framework(run) == "torch"
    assert run_framework(tmp_path) is None
