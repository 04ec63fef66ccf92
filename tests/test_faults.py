"""Fault injection: whatever goes wrong, one line, the documented exit code, nothing lost.

Each test injects one class of fault (bad input, a second process, kill -9,
damaged checkpoints, torn logs, a full disk, bad .pth files) and checks what
survives. The slow ones start real trainers in subprocesses.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gan_core import driver, rundir
from gan_core.cli import main_guard
from gan_core.errors import UserError
from jax_gan import checkpoint, convert
from jax_gan import sample as jax_sample
from jax_gan import train as jax_train
from tests.helpers import FakeTrainer, fake_digits, write_idx_split

ROOT = Path(__file__).resolve().parent.parent
fake_main = main_guard(lambda argv: driver.main(FakeTrainer(), argv))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


# A tiny model: locks, signals, kill -9, checksums and full disks do not depend on its size.
TINY = ["--hidden-dim", "16", "--latent-dim", "8", "--no-download"]


def _spawn(out: Path, data: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jax_gan.train", *TINY, "--data-dir", str(data),
                             "--out-dir", str(out), "--quiet", *flags],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 180, every: float = 0.05) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(every)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A 130-image MNIST in torchvision's layout: runs start in milliseconds."""
    root = tmp_path_factory.mktemp("data")
    images, labels = fake_digits(130)
    for split in ("train", "test"):
        write_idx_split(root / "MNIST" / "raw", images, labels, split)
    return root


# --- 1. Bad input: validated before anything is created --------------------------------------

FLAG_VALUES = {
    "--seed": st.integers(-2**40, 2**40),
    "--lr": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["x", "1e-3"])),
    "--b1": st.floats(-2, 2),
    "--eps": st.floats(-1, 2),
    "--batch-size": st.one_of(st.integers(-5, 300), st.just("2.5")),
    "--dropout-rate": st.floats(-1, 2),
    "--latent-dim": st.integers(-3, 10_000),
    "--sample-every": st.integers(-3, 10),
    "--checkpoint-every": st.integers(-3, 3),
    "--image-scale": st.integers(-1, 20),
    "--dataset": st.sampled_from(["mnist", "cifar", ""]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({}, optional=FLAG_VALUES),
       name=st.text(string.ascii_letters + "-_. ", min_size=1, max_size=300))
def test_any_flags_start_a_run_or_exit_2_creating_nothing(values, name, tiny_data, tmp_path, capsys):
    out = tmp_path / "runs" / name.strip().replace(".", "_") / "run"
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
    argv = ["--data-dir", str(tiny_data), "--no-download", "--max-steps", "2", "--out-dir", str(out),
            "--quiet"]
    for flag, value in values.items():
        argv += [flag, str(value)]
    try:
        code = fake_main(argv)
    except SystemExit as e:  # argparse: a usage line and one error line.
        code = e.code
        assert "Traceback" not in capsys.readouterr().err
    if code == 0:
        assert (out / rundir.MARKER).exists() and (out / "metrics.jsonl").exists()
    else:
        assert code == 2
        assert not (tmp_path / "runs").exists(), "a refused run created its folder"


@pytest.mark.parametrize("flags, message", [
    (["--seed", "-1"], "--seed must be in [0, 4_294_967_295], got -1"),
    (["--seed", str(2**32)], "--seed must be in [0, 4_294_967_295]"),
    (["--lr", "inf"], "--lr must be finite"),
    (["--lr", "nan"], "--lr must be finite"),
    (["--out-dir", "/tmp/" + "x" * 300 + "/run"], "File name too long"),
])
def test_bad_values_exit_2_before_creating_the_run(flags, message, tmp_path, capsys):
    argv = ["--dataset", "mnist-sample", "--out-dir", str(tmp_path / "run"), *flags]
    assert jax_train.main(argv) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--num", "-3"], "--num must be positive"),
    (["--seed", "-1"], "--seed must be in [0, 4294967295]"),
    (["--num", str(10**12)], "GiB"),
    (["--out", "/tmp/" + "y" * 300 + "/s.png"], "File name too long"),
])
def test_sample_checks_its_options_first(argv, message, tmp_path, capsys):
    full = ["--checkpoint", str(tmp_path), "--out", str(tmp_path / "s.png"), *argv]
    assert jax_sample.main(full) == 2
    assert message in _one_line_error(capsys)


def test_tutorial_loader_on_unreadable_data_creates_nothing(tmp_path, capsys):
    torch_train = pytest.importorskip("torch_reference.train")
    code = torch_train.main(["--loader", "tutorial", "--dataset", "mnist-sample", "--out-dir",
                             str(tmp_path / "run")])
    assert code == 2 and "--loader tutorial reads MNIST" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


# --- 2. One process per run directory; --overwrite deletes only what a run wrote -------------

def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    held = rundir.RunLock(tmp_path).acquire()
    with pytest.raises(UserError, match=f"in use by process {os.getpid()}"):
        rundir.RunLock(tmp_path).acquire()
    held.release()
    rundir.RunLock(tmp_path).acquire().release()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tiny_data, tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "samples").mkdir(parents=True)
    (folder / "config.json").write_text("my own config")
    (folder / "samples" / "holiday.png").write_bytes(b"png")
    argv = ["--data-dir", str(tiny_data), "--no-download", "--out-dir", str(folder), "--overwrite"]
    assert fake_main(argv) == 2
    assert "not a jax-gan run" in capsys.readouterr().err
    assert (folder / "config.json").read_text() == "my own config"
    assert (folder / "samples" / "holiday.png").exists()


def test_overwrite_removes_run_files_and_keeps_user_files(tiny_data, tmp_path):
    out = tmp_path / "run"
    argv = ["--data-dir", str(tiny_data), "--no-download", "--max-steps", "3", "--sample-every", "1",
            "--out-dir", str(out), "--quiet"]
    assert fake_main(argv) == 0
    (out / "notes.txt").write_text("keep me")
    (out / "samples" / "favourite.png").write_bytes(b"keep me too")
    before = sorted(p.name for p in (out / "samples").glob("step_*"))
    assert before == ["step_0000000.png", "step_0000001.png", "step_0000002.png"]
    assert fake_main([*argv[:-3], "--sample-every", "2", "--out-dir", str(out),
                                       "--quiet", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "samples" / "favourite.png").exists()
    assert sorted(p.name for p in (out / "samples").glob("step_*")) == ["step_0000000.png",
                                                                       "step_0000002.png"]


@pytest.mark.jax_version
@pytest.mark.slow
def test_a_live_run_refuses_a_second_trainer_and_kill_9_leaves_no_stale_lock(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _spawn(out, tiny_data, "--epochs", "100000")
    try:
        _wait_for(lambda: (out / "metrics.jsonl").exists())
        for extra in (["--resume"], ["--overwrite", *TINY, "--data-dir", str(tiny_data)]):
            assert jax_train.main(["--out-dir", str(out), "--quiet", *extra]) == 2
            assert f"in use by process {proc.pid}" in _one_line_error(capsys)
        assert (out / "metrics.jsonl").exists() and (out / "config.json").exists()
        _wait_for(lambda: checkpoint.Checkpointer(out / "checkpoints", create=False).latest_step())
    finally:
        proc.kill()
        proc.wait()
    step = checkpoint.load(out)[0].step
    assert jax_train.main(["--out-dir", str(out), "--resume", "--max-steps", str(int(step) + 3),
                           "--quiet"]) == 0


# --- 3. kill -9 at random moments, mid-save included: resume is bit-identical ----------------

KILLED_RUN = ["--epochs", "60", "--checkpoint-every", "1", "--keep-checkpoints", "2", "--sample-every",
              "100"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    assert jax_train.main([*TINY, "--data-dir", str(tiny_data), *KILLED_RUN, "--quiet",
                           "--out-dir", str(out)]) == 0
    return out


@pytest.mark.jax_version
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["random", "during-save"])
def test_kill_9_then_resume_is_bit_identical(moment, uninterrupted, tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = _spawn(out, tiny_data, *KILLED_RUN)
    if moment == "random":  # Some time after the first checkpoint, while it trains.
        _wait_for(lambda: (out / "checkpoints").is_dir() and any(
            p.name.isdigit() for p in (out / "checkpoints").iterdir()), timeout=240, every=0.01)
        time.sleep(random.Random(11).uniform(0.0, 1.0))
    else:  # Orbax writes each checkpoint to a temporary folder, then renames it.
        def saving() -> bool:
            with os.scandir(out / "checkpoints") as entries:
                return any("tmp" in entry.name for entry in entries)

        _wait_for(lambda: (out / "checkpoints").is_dir(), timeout=240)
        _wait_for(saving, timeout=240, every=0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Killed before its first checkpoint, a run starts again from step 0: still bit-identical.
    assert jax_train.main(["--out-dir", str(out), "--resume", "--quiet"]) == 0
    assert _leaves_equal(checkpoint.load(out)[0], checkpoint.load(uninterrupted)[0])
    assert not list((out / "checkpoints").glob("*tmp*"))


# --- 4. Damaged checkpoints are reported, and --resume falls back to one that verifies -------

def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(rundir.LOCK))
    return dst


def _flip_bytes(path: Path, count: int, seed: int) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.jax_version
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flipped_bytes_are_reported_and_resume_falls_back(seed, uninterrupted, tmp_path, capsys):
    run = _copy_run(uninterrupted, tmp_path / "run")
    newest = max(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    files = sorted(p for p in (run / "checkpoints" / str(newest) / "state").rglob("*") if p.is_file()
                   and p.stat().st_size > 10_000)
    _flip_bytes(files[seed % len(files)], 400, seed)
    assert jax_sample.main(["--checkpoint", str(run), "--out", str(tmp_path / "s.npy")]) == 2
    assert f"checkpoints/{newest}" in _one_line_error(capsys)
    assert not (tmp_path / "s.npy").exists()
    assert jax_train.main(["--out-dir", str(run), "--resume", "--quiet"]) == 0
    assert "the newest that verifies" in capsys.readouterr().err
    assert _leaves_equal(checkpoint.load(run)[0], checkpoint.load(uninterrupted)[0])


@pytest.mark.jax_version
def test_arrays_that_do_not_match_their_checksums_are_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert jax_train.main([*TINY, "--dataset", "mnist-sample", "--max-steps", "3", "--out-dir", str(out),
                           "--quiet"]) == 0
    state, _, meta = checkpoint.load(out)
    tampered = state.replace(params_d=jax.tree.map(lambda x: x.at[(0,) * x.ndim].add(1.0), state.params_d))
    manager = checkpoint.Checkpointer(out / "checkpoints")
    manager.save(tampered, {k: v for k, v in meta.items() if k != "checksums"})
    manager.close()
    tree_meta = out / "checkpoints" / "3" / "meta" / "metadata"
    saved = json.loads(tree_meta.read_text())
    saved["checksums"] = meta["checksums"]  # The sums of the real arrays, not the tampered ones.
    tree_meta.write_text(json.dumps(saved))
    checkpoint.write_file_sums(out / "checkpoints" / "3")  # Files consistent; arrays are not.
    assert jax_sample.main(["--checkpoint", str(out), "--out", str(tmp_path / "s.npy")]) == 2
    assert "array(s) fail their SHA-256 check" in _one_line_error(capsys)


@pytest.mark.jax_version
def test_a_config_that_disagrees_with_its_arrays_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert jax_train.main([*TINY, "--dataset", "mnist-sample", "--max-steps", "3", "--out-dir", str(out),
                           "--quiet"]) == 0
    meta_file = out / "checkpoints" / "3" / "meta" / "metadata"
    saved = json.loads(meta_file.read_text())
    saved["config"]["hidden_dim"] = 32
    meta_file.write_text(json.dumps(saved))
    checkpoint.write_file_sums(out / "checkpoints" / "3")  # As a buggy writer would leave it.
    assert jax_sample.main(["--checkpoint", str(out), "--out", str(tmp_path / "s.npy")]) == 2
    assert "does not match its own config" in _one_line_error(capsys)


# --- 5. Torn logs, full disks, unwritable folders ----------------------------------------------

def test_a_torn_metrics_line_is_dropped_on_resume(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--data-dir", str(tiny_data), "--no-download", "--out-dir", str(out), "--quiet",
            "--log-every", "1"]
    assert fake_main([*argv, "--max-steps", "3"]) == 0
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "epo')  # A crash in the middle of a write.
    assert fake_main([*argv, "--resume", "--max-steps", "5"]) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]


def test_an_unusable_checkpoints_folder_is_refused_at_start(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("a file where a folder should be")
    (out / rundir.MARKER).write_text("{}")
    argv = ["--data-dir", str(tiny_data), "--no-download", "--out-dir", str(out), "--overwrite"]
    assert fake_main(argv) == 2
    assert "cannot write to --out-dir" in _one_line_error(capsys)


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` at `path` (needs root), or skip."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                            str(path)], capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.jax_version
@pytest.mark.slow
@pytest.mark.parametrize("program", ["jax_gan.train", "torch_reference.train", "jax_gan.sweep"])
def test_a_full_disk_is_one_line_and_keeps_earlier_checkpoints(program, tiny_data, tmp_path):
    if program.startswith("torch"):
        pytest.importorskip("torch")
    with small_disk(tmp_path / "disk", "2m") as disk:
        out = disk / "run"
        result = subprocess.run([sys.executable, "-m", program, *TINY, "--data-dir", str(tiny_data),
                                 "--epochs", "100000", "--checkpoint-every", "1", "--sample-every", "1",
                                 "--out-dir", str(out), "--quiet"],
                                env=ENV, capture_output=True, text=True, timeout=600)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "No space left on device" in errors[0], result.stderr
        assert not list(out.rglob("*tmp*")) and not list(out.rglob("*.part"))
        if program != "torch_reference.train":
            state, _, _ = checkpoint.load(out if program == "jax_gan.train" else out / "seed0-lr0.0002")
            assert int(state.step) > 0 and int(state.step) % 3 == 0  # 3 steps an epoch.
        else:
            import torch

            assert torch.load(out / "checkpoint.pth", weights_only=True)["step"] % 3 == 0


# --- 6. .pth files: checked against their config, never imported wrong ------------------------

@pytest.fixture(scope="module")
def torch_run(tmp_path_factory) -> Path:
    torch_train = pytest.importorskip("torch_reference.train")
    out = tmp_path_factory.mktemp("torch") / "run"
    assert torch_train.main(["--dataset", "mnist-sample", "--max-steps", "5", "--out-dir", str(out),
                             "--quiet"]) == 0
    return out


def test_a_pth_of_another_architecture_is_refused(torch_run, tmp_path, capsys):
    import torch

    payload = torch.load(torch_run / "checkpoint.pth", weights_only=True)
    payload["model_G_state_dict"]["model.3.weight"] = torch.zeros(128, 256)
    torch.save(payload, tmp_path / "other.pth")
    torch_sample = pytest.importorskip("torch_reference.sample")
    for main, argv in ((convert.main, [str(tmp_path / "other.pth"), str(tmp_path / "jax")]),
                       (torch_sample.main, ["--checkpoint", str(tmp_path / "other.pth"), "--out",
                                            str(tmp_path / "s.npy")])):
        assert main(argv) == 2
        assert "has shape (128, 256)" in _one_line_error(capsys)
    assert not (tmp_path / "jax").exists() and not (tmp_path / "s.npy").exists()


def test_a_damaged_pth_is_refused(torch_run, tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    shutil.copy(torch_run / "checkpoint.pth", bad)
    _flip_bytes(bad, 400, 3)
    assert convert.main([str(bad), str(tmp_path / "jax")]) == 2
    assert "bad.pth" in _one_line_error(capsys)


def test_convert_never_replaces_a_pth_silently(torch_run, tmp_path, capsys):
    assert convert.main([str(torch_run / "checkpoint.pth"), str(tmp_path / "jax")]) == 0
    dest = tmp_path / "exported.pth"
    dest.write_bytes(b"precious")
    assert convert.main([str(tmp_path / "jax"), str(dest)]) == 2
    assert "--overwrite" in _one_line_error(capsys) and dest.read_bytes() == b"precious"
    assert convert.main([str(tmp_path / "jax"), str(tmp_path / "missing" / "x.pth")]) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert convert.main([str(tmp_path / "jax"), str(dest), "--overwrite"]) == 0
    assert dest.read_bytes() != b"precious" and not list(tmp_path.glob(".*.part"))


# --- 7. Signals at start-up --------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_during_start_up_leaves_nothing_that_blocks_a_retry(tiny_data, tmp_path):
    out = tmp_path / "run"
    proc = _spawn(out, tiny_data, "--epochs", "1")
    time.sleep(1.5)  # Importing JAX, loading data: before the first epoch.
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)
    retry = ["--out-dir", str(out), "--quiet", "--max-steps", "3"]
    if out.exists() and rundir.holds_previous_run(out):
        retry.append("--resume")
    else:
        retry += [*TINY, "--data-dir", str(tiny_data)]
    assert jax_train.main(retry) == 0


@pytest.mark.parametrize("program", ["fake", "jax_gan.sweep"])
def test_a_full_disk_at_start_is_one_line_and_leaves_no_lock_file(program, tiny_data, tmp_path, capsys):
    from jax_gan import sweep

    with small_disk(tmp_path / "disk", "1m") as disk:
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        out = disk / "run"
        main = fake_main if program == "fake" else sweep.main
        argv = [*TINY, "--data-dir", str(tiny_data), "--max-steps", "3", "--out-dir", str(out), "--quiet"]
        assert main(argv) == 2
        assert "No space left on device" in _one_line_error(capsys)
        assert not out.exists()


@pytest.mark.jax_version
def test_a_checkpoint_rotated_away_while_read_is_read_again_not_called_corrupt(tiny_data, tmp_path,
                                                                                monkeypatch):
    out = tmp_path / "run"
    assert jax_train.main([*TINY, "--data-dir", str(tiny_data), "--max-steps", "6", "--checkpoint-every",
                           "1", "--out-dir", str(out), "--quiet"]) == 0
    check = checkpoint.check_file_sums
    rotated = []

    def rotate_while_reading(folder):
        if not rotated:  # The trainer saves a newer checkpoint and removes this one meanwhile.
            rotated.append(folder)
            shutil.copytree(folder, folder.parent / "9")
            shutil.rmtree(folder)
        check(folder)

    monkeypatch.setattr(checkpoint, "check_file_sums", rotate_while_reading)
    state, _, _ = checkpoint.load(out)
    assert rotated == [out.absolute() / "checkpoints" / "6"] and int(state.step) == 6  # Read from "9".


def _comma_list(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(values, min_size=0, max_size=4).map(lambda xs: ",".join(str(x) for x in xs))


SWEEP_LISTS = {
    "--seeds": _comma_list(st.one_of(st.integers(-3, 2**33), st.just("x"))),
    "--lr": _comma_list(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(2e-4))),
    "--b1": _comma_list(st.floats(-1, 2)),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lists=st.fixed_dictionaries({}, optional=SWEEP_LISTS),
       values=st.fixed_dictionaries({}, optional={k: FLAG_VALUES[k] for k in ("--batch-size", "--eps",
                                                                            "--sample-every")}))
def test_any_sweep_lists_start_a_sweep_or_exit_2_creating_nothing(lists, values, tiny_data, tmp_path,
                                                                   monkeypatch, capsys):
    from jax_gan import sweep

    monkeypatch.setattr(sweep.PopulationTrainer, "start", lambda self, runs, dataset, resume: None)
    monkeypatch.setattr(driver, "train_loop", lambda *args, **kwargs: 0)  # Validation is the subject.
    out = tmp_path / "runs" / "sweep"
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
    argv = [*TINY, "--data-dir", str(tiny_data), "--max-steps", "2", "--out-dir", str(out), "--quiet"]
    for flag, value in {**lists, **values}.items():
        argv += [f"{flag}={value}"]
    try:
        code = sweep.main(argv)
    except SystemExit as e:  # argparse: a usage line and one error line.
        code = e.code
    assert "Traceback" not in capsys.readouterr().err
    event(f"exit {code}")
    if code == 0:
        assert (out / rundir.MARKER).exists() and (out / rundir.SWEEP_PLAN).exists()
    else:
        assert code == 2
        assert not (tmp_path / "runs").exists(), "a refused sweep created its folder"


@pytest.mark.jax_version
def test_a_checkpoint_with_non_finite_weights_is_refused_even_with_consistent_sums(tmp_path, capsys):
    out = tmp_path / "run"
    assert jax_train.main([*TINY, "--dataset", "mnist-sample", "--max-steps", "3", "--out-dir", str(out),
                           "--quiet"]) == 0
    state, _, meta = checkpoint.load(out)
    broken = state.replace(step=state.step + 1,
                           params_g=jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(np.nan), state.params_g))
    manager = checkpoint.Checkpointer(out / "checkpoints")
    manager.save(broken, {k: v for k, v in meta.items() if k != "checksums"})  # Sums of the NaNs.
    manager.close()
    assert jax_sample.main(["--checkpoint", str(out), "--out", str(tmp_path / "s.npy")]) == 2
    assert "holds values that are not finite" in _one_line_error(capsys)
    assert not (tmp_path / "s.npy").exists()
