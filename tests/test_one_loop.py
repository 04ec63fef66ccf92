"""One loop for one GAN and for many: the single run's promises, held by every sweep member.

Each case runs against `jax_gan.train` and against `jax_gan.sweep` (two members), on a tiny
model and a 130-image dataset: the mechanisms do not depend on size.
"""

import json
import signal
from pathlib import Path

import pytest

from gan_core import driver, rundir
from jax_gan import sweep
from jax_gan import train as jax_train
from tests.helpers import fake_digits, write_idx_split

# Sharding, Orbax checkpoints and compiled numbers: each JAX generation again.
pytestmark = pytest.mark.jax_version

TINY = ["--hidden-dim", "16", "--latent-dim", "8", "--no-download", "--quiet", "--sample-every", "2",
        "--log-every", "1"]
PROGRAMS = {"train": (jax_train.main, []), "sweep": (sweep.main, ["--seeds", "0,1"])}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A 130-image MNIST in torchvision's layout: 3 steps an epoch at batch 64."""
    root = tmp_path_factory.mktemp("data")
    images, labels = fake_digits(130)
    write_idx_split(root / "MNIST" / "raw", images, labels)
    return root


def _main(program: str, out: Path, data: Path, *flags: str, first: bool = True) -> int:
    main, members = PROGRAMS[program]
    return main([*TINY, "--data-dir", str(data), "--out-dir", str(out), *(members if first else []), *flags])


def _runs(program: str, out: Path) -> list[Path]:
    """The run folders a program writes: the run itself, or each member's."""
    return [out] if program == "train" else [out / "seed0-lr0.0002", out / "seed1-lr0.0002"]


def _steps(run: Path) -> list[int]:
    return [r["step"] for r in rundir.read_metrics(run / "metrics.jsonl") if "loss_g" in r]


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_locked_run_folder_refuses_a_second_trainer_and_changes_nothing(program, tiny_data, tmp_path,
                                                                            capsys):
    out = tmp_path / "out"
    assert _main(program, out, tiny_data, "--max-steps", "3") == 0
    for run in _runs(program, out):
        held = rundir.RunLock(run).acquire()
        before = _files(out)
        try:
            assert _main(program, out, tiny_data, "--resume", "--max-steps", "6", first=False) == 2
            assert "is in use by process" in _error(capsys)
        finally:
            held.release()
        assert _files(out) == before  # Refused before it read or wrote anything.


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file but the lock files (which a refused start opens): size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")}


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_stop_before_the_run_starts_writes_nothing(program, tiny_data, tmp_path, monkeypatch, capsys):
    load = driver.load_dataset

    def load_then_sigterm(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # As if SIGTERM arrived while the data loads.
        return load(*args, **kwargs)

    monkeypatch.setattr(driver, "load_dataset", load_then_sigterm)
    assert _main(program, tmp_path / "out", tiny_data) == 128 + signal.SIGTERM
    assert "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("program", PROGRAMS)
def test_resume_on_different_data_is_refused(program, tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main(program, out, tiny_data, "--max-steps", "3") == 0
    # No MNIST in this folder and no download: `mnist` falls back to the 5,000-digit sample.
    assert _main(program, out, tmp_path / "empty", "--resume", "--max-steps", "6", first=False) == 2
    assert "cannot resume on different data" in _error(capsys)
    for run in _runs(program, out):
        assert _steps(run) == [0, 1, 2]


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_torn_metrics_line_is_dropped_on_resume(program, tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main(program, out, tiny_data, "--max-steps", "3") == 0
    for run in _runs(program, out):
        with (run / "metrics.jsonl").open("a") as f:
            f.write('{"step": 3, "epo')  # A crash in the middle of a write.
    assert _main(program, out, tiny_data, "--resume", "--max-steps", "5", first=False) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    for run in _runs(program, out):
        assert _steps(run) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_step_cap_is_checked_before_anything_is_written(program, tiny_data, tmp_path, capsys):
    assert _main(program, tmp_path / "out", tiny_data, "--dataset", "mnist-sample", "--batch-size", "1",
                 "--epochs", "1000000") == 2
    assert "a run counts at most 2,147,483,647" in _error(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_run_non_finite_exits_3_and_keeps_only_finite_checkpoints(program, tiny_data, tmp_path,
                                                                          capsys):
    out = tmp_path / "out"
    lr = ["--lr", "1e30"] if program == "train" else ["--lr", "1e30", "--seeds", "0"]
    main, _ = PROGRAMS[program]
    argv = [*TINY, "--data-dir", str(tiny_data), "--out-dir", str(out), *lr, "--max-steps", "6"]
    assert main(argv) == driver.EXIT_NONFINITE
    err = capsys.readouterr().err
    assert "non-finite" in err and "Traceback" not in err
    run = out if program == "train" else out / "seed0-lr1e+30"
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.isdigit()]
    assert _steps(run) == [0]


def test_a_sweep_resume_refuses_other_lists(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--max-steps", "3") == 0
    assert _main("sweep", out, tiny_data, "--resume", "--seeds", "0,2", first=False) == 2
    assert "cannot change --seeds when resuming a sweep" in _error(capsys)
    assert _main("sweep", out, tiny_data, "--resume", "--seeds", "0,1", "--max-steps", "4",
                 first=False) == 0


def test_a_sweep_list_of_one_value_is_applied(tiny_data, tmp_path):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--lr", "0.01", "--max-steps", "3") == 0
    single = tmp_path / "single"
    assert _main("train", single, tiny_data, "--lr", "0.01", "--seed", "1", "--max-steps", "3") == 0
    member = rundir.read_metrics(out / "seed1-lr0.01" / "metrics.jsonl")
    assert [r["loss_g"] for r in member] == pytest.approx([r["loss_g"] for r in
                                                           rundir.read_metrics(single / "metrics.jsonl")],
                                                          rel=1e-5)
    assert json.loads((out / "seed1-lr0.01" / "config.json").read_text())["lr"] == 0.01


# --- What only a sweep has: its own folder, its plan, its processes ------------------------------

def test_a_single_runs_command_never_resumes_or_replaces_a_sweep(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--max-steps", "3") == 0
    for flag in ("--resume", "--overwrite"):
        assert _main("train", out, tiny_data, flag, first=False) == 2
        assert "holds a sweep, not a run of python -m jax_gan.train" in _error(capsys)
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    # Nor one of its members: the sweep would resume it from its own checkpoint, mixing the two.
    for flag in ("--resume", "--overwrite"):
        assert _main("train", out / "seed1-lr0.0002", tiny_data, flag, first=False) == 2
        assert "is a member of the sweep in" in _error(capsys)


def test_a_sweep_overwrite_leaves_no_member_of_the_sweep_it_replaces(tiny_data, tmp_path):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--max-steps", "3") == 0
    (out / "seed1-lr0.0002" / "notes.txt").write_text("mine")
    assert _main("sweep", out, tiny_data, "--overwrite", "--seeds", "0,2", "--max-steps", "3",
                 first=False) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checkpoints", "seed0-lr0.0002",
                                                                   "seed1-lr0.0002", "seed2-lr0.0002"]
    assert [p.name for p in (out / "seed1-lr0.0002").iterdir()] == ["notes.txt"]  # The user's file.


def test_a_diverged_members_step_survives_a_resume(tiny_data, tmp_path):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--lr", "0.0002,1e30", "--max-steps", "3") == 0
    assert _main("sweep", out, tiny_data, "--resume", "--max-steps", "6", first=False) == 0
    members = {m["run_dir"]: m for m in json.loads((out / "summary.json").read_text())["members"]}
    assert members["seed0-lr1e+30"]["status"] == "diverged"
    assert members["seed0-lr1e+30"]["diverged_at_step"] == 1
    assert members["seed0-lr1e+30"]["last_checkpoint"] is None and members["seed0-lr1e+30"]["steps"] == 1
    assert members["seed0-lr1e+30"]["loss_g"] is not None  # Its step 0, read back after the resume.
    assert members["seed0-lr0.0002"]["steps"] == 6 and members["seed0-lr0.0002"]["status"] == "trained"
    assert _steps(out / "seed0-lr1e+30") == [0]


def test_a_sweep_overwrite_refused_by_a_member_in_use_removes_nothing(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main("sweep", out, tiny_data, "--max-steps", "3") == 0
    held = rundir.RunLock(out / "seed1-lr0.0002").acquire()  # As a live process would hold it.
    before = _files(out)
    try:
        assert _main("sweep", out, tiny_data, "--overwrite", "--seeds", "7", "--max-steps", "3",
                     first=False) == 2
        assert "is in use by process" in _error(capsys)
    finally:
        held.release()
    assert _files(out) == before
