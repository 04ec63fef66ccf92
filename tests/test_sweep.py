"""`python -m jax_gan.sweep`: a population trained as one program is the same runs as one at a time."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from gan_core import driver
from jax_gan import checkpoint, evaluate, sweep
from jax_gan import sample as jax_sample
from jax_gan import train as jax_train

# Sharding, Orbax checkpoints and compiled numbers: each JAX generation again.
pytestmark = pytest.mark.jax_version

ROOT = Path(__file__).resolve().parent.parent
# A small model: whether members equal single runs does not depend on its size.
COMMON = ["--dataset", "mnist-sample", "--epochs", "1", "--max-steps", "40", "--sample-every", "20",
          "--hidden-dim", "32", "--latent-dim", "16", "--quiet"]


def _max_diff(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    assert sweep.main([*COMMON, "--seeds", "0,1", "--lr", "0.0002,1e30", "--out-dir", str(out)]) == 0
    return out


def test_each_member_is_an_ordinary_run(population):
    summary = json.loads((population / "summary.json").read_text())
    names = [m["run_dir"] for m in summary["members"]]
    assert names == ["seed0-lr0.0002", "seed0-lr1e+30", "seed1-lr0.0002", "seed1-lr1e+30"]
    for name in ("seed0-lr0.0002", "seed1-lr0.0002"):
        run = population / name
        config = json.loads((run / "config.json").read_text())
        assert config["seed"] == int(name[4]) and config["lr"] == 0.0002
        assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000000.png", "step_0000020.png"]
        assert (run / "progress.gif").exists() and (run / "samples.png").exists()
    assert jax_sample.main(["--checkpoint", str(population / "seed1-lr0.0002"), "--out",
                            str(population / "s.npy")]) == 0
    assert (population / "contact_sheet.png").exists()
    assert not (population / "samples").exists()  # Grids live in the members' folders.
    assert "| 1 | 0.0002 |" in (population / "summary.md").read_text()


def test_a_diverged_member_stops_like_a_single_run_and_the_others_go_on(population):
    members = {m["run_dir"]: m for m in json.loads((population / "summary.json").read_text())["members"]}
    for seed in (0, 1):
        diverged = population / f"seed{seed}-lr1e+30"
        assert members[diverged.name]["status"] == "diverged"
        assert members[diverged.name]["diverged_at_step"] == 1  # As the single run reports.
        assert members[diverged.name]["last_checkpoint"] is None  # It diverged before its first one.
        assert not [p for p in (diverged / "checkpoints").iterdir() if p.name.isdigit()]
        assert not (diverged / "samples.png").exists()  # No pictures of non-finite weights.
        assert [r["step"] for r in _metrics(diverged)] == [0]  # Its good steps are logged.
        assert members[f"seed{seed}-lr0.0002"]["status"] == "trained"
        assert members[f"seed{seed}-lr0.0002"]["last_checkpoint"] == 40


def test_a_member_is_the_single_run_with_its_seed_and_lr(population, tmp_path):
    single = tmp_path / "single"
    assert jax_train.main([*COMMON, "--seed", "1", "--out-dir", str(single)]) == 0
    member = population / "seed1-lr0.0002"
    # XLA batches the members' matmuls, so sums may round differently: within float32 noise.
    assert _max_diff(checkpoint.load(member)[0], checkpoint.load(single)[0]) < 1e-6
    for a, b in zip(_metrics(member), _metrics(single), strict=True):
        assert a["step"] == b["step"] and a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-5)


def test_resume_continues_the_population(population, tmp_path):
    out = tmp_path / "sweep"
    flags = [f for f in COMMON if f not in ("--max-steps", "40")]
    assert sweep.main([*flags, "--max-steps", "20", "--seeds", "0,1", "--lr", "0.0002,1e30",
                       "--out-dir", str(out)]) == 0
    assert sweep.main(["--resume", "--max-steps", "40", "--quiet", "--out-dir", str(out)]) == 0
    for name in ("seed0-lr0.0002", "seed1-lr0.0002"):
        assert _max_diff(checkpoint.load(out / name)[0], checkpoint.load(population / name)[0]) == 0
        assert _metrics(out / name)[-1] == _metrics(population / name)[-1]


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,x"], "expected a comma list of ints"),
    (["--lr", "0.1,-1"], "--lr must be positive"),
    (["--seeds", "0,0"], "the same member twice"),
    (["--process-id", "1"], "go together"),
])
def test_bad_sweep_flags_are_one_line(argv, message, tmp_path, capsys):
    try:
        code = sweep.main([*argv, "--dataset", "mnist-sample", "--out-dir", str(tmp_path / "s")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_sweep(out: Path, devices: int, processes: int = 1) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    argv = [sys.executable, "-m", "jax_gan.sweep", *COMMON, "--seeds", "0,1,2", "--lr", "0.0002,0.0004",
            "--out-dir", str(out)]
    if processes == 1:
        procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)]
    else:
        address = f"127.0.0.1:{_free_port()}"
        procs = [subprocess.Popen([*argv, "--coordinator-address", address, "--num-processes", str(processes),
                                   "--process-id", str(i)], env=env, stderr=subprocess.PIPE, text=True)
                 for i in range(processes)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_one_device_four_devices_and_two_processes_train_the_same_members(tmp_path):
    runs = {"1 device": (1, 1), "4 devices": (4, 1), "2 processes x 2 devices": (2, 2)}
    for name, (devices, processes) in runs.items():
        _run_sweep(tmp_path / name, devices, processes)
    members = json.loads((tmp_path / "1 device" / "summary.json").read_text())["members"]
    assert len(members) == 6  # 6 members on 4 devices: padded to 8 slots.
    for name in runs:
        summary = json.loads((tmp_path / name / "summary.json").read_text())["members"]
        assert [m["run_dir"] for m in summary] == [m["run_dir"] for m in members]
        for m in members:
            a = checkpoint.load(tmp_path / "1 device" / m["run_dir"])[0]
            b = checkpoint.load(tmp_path / name / m["run_dir"])[0]
            # Devices batch different numbers of members per matmul, so sums round differently
            # and Adam amplifies it: measured <1e-6 with jax 0.10, 8.6e-4 with jax 0.12 after 40
            # steps. Bounded as the parity suite bounds float32 drift over 100 steps.
            assert _max_diff(a, b) < 1e-2, (name, m["run_dir"])


@pytest.mark.slow
def test_eval_every_scores_each_member_as_a_single_run_does(data_dir, tmp_path):
    out = tmp_path / "sweep"
    flags = ["--eval-every", "1", "--eval-num", "300", "--data-dir", str(data_dir)]
    assert sweep.main([*COMMON, *flags, "--seeds", "0,1", "--lr", "0.0002,1e30", "--out-dir", str(out)]) == 0
    members = {m["run_dir"]: m for m in json.loads((out / "summary.json").read_text())["members"]}
    assert members["seed0-lr1e+30"]["fid"] is None  # Diverged: nothing to score.
    assert "| FID | coverage | classes |" in (out / "summary.md").read_text()
    single = tmp_path / "single"
    assert jax_train.main([*COMMON, *flags, "--seed", "1", "--out-dir", str(single)]) == 0
    [member_score] = [r for r in _metrics(out / "seed1-lr0.0002") if "fid" in r]
    [single_score] = [r for r in _metrics(single) if "fid" in r]
    assert member_score["step"] == single_score["step"] == 39
    assert members["seed1-lr0.0002"]["fid"] == member_score["fid"]
    assert member_score["fid"] == pytest.approx(single_score["fid"], rel=1e-4)
    assert member_score["coverage"] == pytest.approx(single_score["coverage"], abs=0.01)
    # Each member keeps its best checkpoint as a single run does: evaluate redraws the same z.
    assert not (out / "seed0-lr1e+30" / "best").exists()
    seed = 1 + driver.EVAL_SEED_OFFSET
    scored = tmp_path / "best.json"
    assert evaluate.main([str(out / "seed1-lr0.0002" / "best"), "--num", "300", "--seed", str(seed),
                          "--no-parzen", "--data-dir", str(data_dir), "--json", str(scored)]) == 0
    assert json.loads(scored.read_text())["fid"] == pytest.approx(member_score["fid"], rel=1e-3)


def _spawn_processes(out: Path, extra: list[list[str]], flags: list[str]) -> list[subprocess.Popen]:
    """One sweep process per entry of `extra` (its own flags), on one CPU device each."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    address = f"127.0.0.1:{_free_port()}"
    return [subprocess.Popen([sys.executable, "-m", "jax_gan.sweep", *flags, "--out-dir", str(out),
                              "--coordinator-address", address, "--num-processes", str(len(extra)),
                              "--process-id", str(i), *own], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for i, own in enumerate(extra)]


TINY = ["--dataset", "mnist-sample", "--hidden-dim", "16", "--latent-dim", "8", "--quiet"]


@pytest.mark.slow
def test_processes_with_different_plans_stop_together_writing_nothing(tmp_path):
    out = tmp_path / "sweep"
    procs = _spawn_processes(out, [["--seeds", "0,1"], ["--seeds", "0,2"]], [*TINY, "--max-steps", "3"])
    for proc in procs:
        stdout, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-3000:]
        assert "run another plan or other flags than process 0" in err and "Traceback" not in err
        assert "done" not in stdout
    assert not out.exists()


@pytest.mark.slow
def test_a_stop_on_one_process_stops_both_at_the_same_step_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    flags = [*TINY, "--seeds", "0,1", "--epochs", "100000", "--checkpoint-every", "1000"]
    procs = _spawn_processes(out, [[], []], flags)
    try:
        deadline = time.time() + 300
        while not all((out / m / "metrics.jsonl").exists() for m in ("seed0-lr0.0002", "seed1-lr0.0002")):
            assert time.time() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.1)
        procs[1].send_signal(signal.SIGINT)  # Ctrl-C reaches one process only.
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    steps = set()
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
        assert "Traceback" not in err
        steps.add(int(err.split("stopped at step ")[1].split(";")[0]))
    [step] = steps  # Both stopped, and saved, at the same epoch boundary.
    assert step > 0 and step % 79 == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == step
    resume = _spawn_processes(out, [["--resume"], ["--resume"]], ["--quiet", "--max-steps", str(step + 79)])
    for proc in resume:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == step + 79


@pytest.mark.slow
def test_a_dead_process_is_one_line_and_a_bounded_exit_on_the_others(tmp_path):
    out = tmp_path / "sweep"
    flags = [*TINY, "--seeds", "0,1", "--epochs", "100000"]
    procs = _spawn_processes(out, [[], []], flags)
    try:
        deadline = time.time() + 300
        while not (out / "seed1-lr0.0002" / "metrics.jsonl").exists():
            assert time.time() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.1)
        procs[1].kill()
        killed = time.time()
        _, err = procs[0].communicate(timeout=120)
    finally:
        for p in procs:
            p.kill()
    assert procs[0].returncode == sweep.EXIT_PEER, err[-3000:]
    assert time.time() - killed < 60  # XLA's own coordination service aborts after minutes.
    assert "Traceback" not in err and "Check failure" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "another process of this sweep stopped" in line
