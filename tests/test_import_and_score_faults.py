"""A hostile pass over imports and scores: a `.pth` is validated like a checkpoint, a score is
meaningful or refused, and a stuck scorer never holds a run.

A. `python -m jax_gan.convert` (and every command reading a `.pth` through
   `load_generator`) refuses, in one line and creating nothing, weights or Adam
   moments that are not finite, a bad `step` or `epoch`, and a malformed
   optimizer dict; the tutorial's own five-key file still imports.
B. `python -m jax_gan.evaluate` refuses sample sets too small for its scores,
   a `.npz` behind a `.npy` name, an absurd `--num` and an unwritable `--json`
   before any work, and leaves no empty data folder behind; `QualityWorker`
   times out a stuck scorer, and a Ctrl-C is never held up by one.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gan_core import quality
from gan_core.config import Config
from gan_core.errors import CheckpointError, UserError
from gan_core.tutorial_checkpoint import TUTORIAL_KEYS, tensor_checksums
from jax_gan import evaluate
from jax_gan import interpolate as jax_interpolate
from jax_gan import sample as jax_sample
from jax_gan.generator_checkpoint import load_generator
from jax_gan.quality.calibration import calibration_sets
from jax_gan.quality.scores import evaluate_images

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = ["--hidden-dim", "16", "--latent-dim", "8"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- A. imports are validated like checkpoints --------------------------------------------------

@pytest.fixture(scope="module")
def pth(tmp_path_factory) -> Path:
    """A tiny torch_reference checkpoint after 3 steps: weights, Adam moments, step, epoch, checksums."""
    torch_train = pytest.importorskip("torch_reference.train")
    out = tmp_path_factory.mktemp("torch") / "run"
    assert torch_train.main(["--dataset", "mnist-sample", "--max-steps", "3", *TINY, "--out-dir", str(out),
                             "--quiet"]) == 0
    return out / "checkpoint.pth"


def _tampered(pth: Path, folder: Path, change, name: str = "bad.pth") -> Path:
    """A copy of `pth` with `change` applied, its checksums recomputed: a consistent file whose
    content alone is wrong (a damaged file is refused by its checksums already)."""
    import torch

    payload = torch.load(pth, weights_only=True)
    change(payload)
    try:
        payload["checksums"] = tensor_checksums(payload)
    except Exception:  # noqa: BLE001 - a malformed optimizer dict: a file without sums, as the tutorial's.
        payload.pop("checksums", None)
    path = folder / name
    torch.save(payload, path)
    return path


def _set(network: str, key: str, value):
    def change(payload):
        payload[f"model_{network}_state_dict"][key] = value
    return change


def _poke(network: str, key: str, value: float, index=0):
    def change(payload):
        payload[f"model_{network}_state_dict"][key].view(-1)[index] = value
    return change


def _moment(network: str, index: int, name: str, value):
    def change(payload):
        moments = payload[f"optimizer_{network}_state_dict"]["state"][index]
        if callable(value):
            moments[name] = value(moments[name])
        else:
            moments[name].view(-1)[0] = value
    return change


def _top(key: str, value=None, delete: bool = False):
    def change(payload):
        if delete:
            del payload[key]
        else:
            payload[key] = value
    return change


def _optimizer(network: str, edit):
    def change(payload):
        edit(payload[f"optimizer_{network}_state_dict"])
    return change


def _tensor(*shape, value: float = 0.0):
    import torch
    return torch.full(shape, value)


BAD_IMPORTS = {
    # Weights that are not finite: G's would draw NaN images, D's would train to NaN.
    "G weight NaN": (_poke("G", "model.0.weight", math.nan), "model_G_state_dict"),
    "G bias inf": (_poke("G", "model.6.bias", math.inf), "model_G_state_dict"),
    "D weight -inf": (_poke("D", "model.3.weight", -math.inf, 5), "model_D_state_dict"),
    # Adam's moments: a NaN or a negative second moment makes every later update NaN.
    "exp_avg NaN": (_moment("G", 0, "exp_avg", math.nan), "exp_avg"),
    "exp_avg_sq inf": (_moment("D", 5, "exp_avg_sq", math.inf), "exp_avg_sq"),
    "exp_avg_sq negative": (_moment("G", 2, "exp_avg_sq", -1.0), "exp_avg_sq"),
    "Adam step negative": (_moment("G", 0, "step", lambda s: s * 0 - 1), "step"),
    "Adam step fraction": (_moment("D", 1, "step", lambda s: s * 0 + 1.5), "step"),
    "Adam step NaN": (_moment("D", 1, "step", lambda s: s * math.nan), "step"),
    "Adam steps differ": (_moment("G", 3, "step", lambda s: s + 1), "step"),
    # The step a resume continues from.
    "step negative": (_top("step", -5), "step"),
    "step fraction": (_top("step", 2.5), "step"),
    "step text": (_top("step", "3"), "step"),
    "step bool": (_top("step", True), "step"),
    "step past int32": (_top("step", 2**40), "step"),
    # The tutorial's own key.
    "no epoch": (_top("epoch", delete=True), "epoch"),
    "epoch negative": (_top("epoch", -1), "epoch"),
    "epoch fraction": (_top("epoch", 0.5), "epoch"),
    # Malformed optimizer dicts.
    "no optimizer": (_top("optimizer_D_state_dict", delete=True), "optimizer_D_state_dict"),
    "optimizer a list": (_top("optimizer_G_state_dict", [1, 2]), "optimizer_G_state_dict"),
    "no state": (_optimizer("G", lambda o: o.pop("state")), "state"),
    "no param_groups": (_optimizer("D", lambda o: o.pop("param_groups")), "param_groups"),
    "no groups": (_optimizer("D", lambda o: o.update(param_groups=[])), "param_groups"),
    "short group": (_optimizer("G", lambda o: o["param_groups"][0].update(params=[0, 1, 2])), "param_groups"),
    "state short": (_optimizer("G", lambda o: o["state"].pop(5)), "state"),
    "state extra": (_optimizer("D", lambda o: o["state"].update({6: o["state"][0]})), "state"),
    "state not a dict": (_optimizer("D", lambda o: o["state"].update({2: 7})), "state"),
    "moment missing": (_optimizer("G", lambda o: o["state"][2].pop("exp_avg_sq")), "exp_avg_sq"),
    "moment shape": (_moment("G", 0, "exp_avg", lambda m: _tensor(3, 3)), "shape"),
    "moment scalar": (_moment("D", 4, "exp_avg_sq", lambda m: 0.5), "shape"),
    "dataset_used a tensor": (_top("dataset_used", None), None),  # Replaced below: a tensor.
}
BAD_IMPORTS["dataset_used a tensor"] = (
    lambda payload: payload.update(dataset_used=_tensor(2)), "dataset_used")


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_convert_refuses_a_pth_whose_content_is_wrong_in_one_line_creating_nothing(case, pth, tmp_path,
                                                                                   capsys):
    change, fragment = BAD_IMPORTS[case]
    bad = _tampered(pth, tmp_path, change)
    from jax_gan import convert

    dest = tmp_path / "imported"
    assert convert.main([str(bad), str(dest)]) == 2
    line = _one_line_error(capsys)
    assert str(bad) in line and fragment in line, line
    assert not dest.exists()


def test_the_untouched_checkpoint_still_imports_with_its_step_and_epoch(pth, tmp_path, capsys):
    from jax_gan import checkpoint, convert

    assert convert.main([str(pth), str(tmp_path / "imported")]) == 0
    assert "(step 3)" in capsys.readouterr().out
    state, _, meta = checkpoint.load(tmp_path / "imported")
    assert int(state.step) == 3 and int(state.opt_state_g[0].count) == 3 and meta["epoch"] == 0


def _tutorial_payload(adam_steps: int, old_torch: bool = False) -> dict:
    """The tutorial's own file: its five keys only, default architecture, no step/config/checksums."""
    import torch

    from torch_reference.train_step import create_train_state

    state = create_train_state(Config(), "cpu")
    for model, opt in ((state.g, state.opt_g), (state.d, state.opt_d)):
        for _ in range(adam_steps):
            for p in model.parameters():
                p.grad = torch.full_like(p, 0.01)
            opt.step()
    payload = {"epoch": 7, "model_G_state_dict": state.g.state_dict(),
               "model_D_state_dict": state.d.state_dict(),
               "optimizer_G_state_dict": state.opt_g.state_dict(),
               "optimizer_D_state_dict": state.opt_d.state_dict()}
    if old_torch:  # torch before 1.12 saved Adam's step as a Python int.
        for key in ("optimizer_G_state_dict", "optimizer_D_state_dict"):
            for moments in payload[key]["state"].values():
                moments["step"] = int(moments["step"])
    assert set(payload) == set(TUTORIAL_KEYS)
    return payload


@pytest.mark.parametrize("adam_steps, old_torch", [(0, False), (2, False), (2, True)])
def test_the_tutorials_own_five_key_file_keeps_importing(adam_steps, old_torch, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from jax_gan import checkpoint, convert

    torch.save(_tutorial_payload(adam_steps, old_torch), tmp_path / "tutorial.pth")
    assert convert.main([str(tmp_path / "tutorial.pth"), str(tmp_path / "run")]) == 0, capsys.readouterr().err
    state, config, meta = checkpoint.load(tmp_path / "run")
    assert int(state.step) == adam_steps and meta["epoch"] == 7 and config.hidden_dim == 256
    assert load_generator(tmp_path / "tutorial.pth").step == adam_steps


def _jax_run_with(folder: Path, poison: float) -> Path:
    """A jax_gan run whose generator holds one `poison` value."""
    import jax

    from jax_gan.checkpoint import Checkpointer
    from jax_gan.train_step import create_train_state

    config = Config(dataset="mnist-sample", hidden_dim=16, latent_dim=8)
    state = create_train_state(config)
    leaves, tree = jax.tree.flatten(state.params_g)
    leaves[-1] = leaves[-1].at[(0,) * leaves[-1].ndim].set(poison)
    state = state.replace(params_g=jax.tree.unflatten(tree, leaves))
    (folder / "checkpoints").mkdir(parents=True)
    checkpointer = Checkpointer(folder / "checkpoints")
    checkpointer.save(state, {"config": config.to_dict(), "epoch": 0, "dataset_used": "mnist-sample"})
    checkpointer.close()
    return folder


@pytest.mark.parametrize("kind", ["pth", "jax"])
def test_sample_interpolate_and_evaluate_refuse_a_generator_that_is_not_finite(kind, pth, tmp_path, capsys):
    if kind == "pth":
        source = _tampered(pth, tmp_path, _poke("G", "model.3.weight", math.nan, 7))
    else:
        source = _jax_run_with(tmp_path / "jax_run", math.inf)
    with pytest.raises(CheckpointError, match="not finite"):
        load_generator(source)
    for name, main, argv in (
            ("sample", jax_sample.main, ["--checkpoint", str(source), "--num", "4", "--out"]),
            ("interpolate", jax_interpolate.main, ["--checkpoint", str(source), "--out"]),
    ):
        out = tmp_path / f"{name}.npy"
        assert main([*argv, str(out)]) == 2, name
        assert "not finite" in _one_line_error(capsys)
        assert not out.exists()
    assert evaluate.main([str(source), "--num", "200", "--data-dir", str(tmp_path / "data"),
                          "--json", str(tmp_path / "q.json")]) == 2
    assert "not finite" in _one_line_error(capsys)
    assert not (tmp_path / "q.json").exists() and not (tmp_path / "data").exists()


def test_an_import_that_fails_to_write_leaves_no_half_run(pth, tmp_path, capsys, monkeypatch):
    from jax_gan import convert

    def full_disk(self, state, meta):
        raise CheckpointError(f"cannot save checkpoint 3 in {self.directory}: No space left on device")

    monkeypatch.setattr(convert.Checkpointer, "save", full_disk)
    assert convert.main([str(pth), str(tmp_path / "imported")]) == 2
    assert "No space left" in _one_line_error(capsys)
    assert not (tmp_path / "imported").exists()
    (tmp_path / "mine").mkdir()  # A folder the user made is left, with what they put there.
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert convert.main([str(pth), str(tmp_path / "mine")]) == 2
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_export_refuses_a_run_whose_weights_are_not_finite(tmp_path, capsys):
    pytest.importorskip("torch")
    from jax_gan import convert

    run = _jax_run_with(tmp_path / "run", math.nan)
    assert convert.main([str(run), str(tmp_path / "out.pth")]) == 2
    assert "not finite" in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --- B. scores that mean something ----------------------------------------------------------------

def _npy(folder: Path, name: str, array: np.ndarray) -> Path:
    np.save(folder / name, array)
    return folder / name


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 28, 28)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 16, 128])
def test_too_few_samples_are_refused_not_scored(n, data_dir, tmp_path, capsys):
    """Four noise images scored precision 1 and coverage 1: k-NN balls among a handful of points
    hold everything, and FID's 128-dimensional covariance is singular below 129 samples."""
    path = _npy(tmp_path, "noise.npy", _noise(n))
    assert evaluate.main([str(path), "--dataset", "mnist-sample", "--data-dir", str(data_dir)]) == 2
    line = _one_line_error(capsys)
    assert "at least 129" in line and f"{n} images" in line
    with pytest.raises(UserError, match="at least 129"):
        evaluate_images(_noise(n), "mnist-sample", data_dir, parzen=False)


@pytest.mark.slow
def test_the_smallest_set_scored_is_meaningful(data_dir):
    """At the minimum, noise reads as noise and real digits as digits."""
    noise = evaluate_images(_noise(129), "mnist-sample", data_dir, parzen=False)
    real = evaluate_images(calibration_sets("mnist-sample", data_dir)["real"][:129], "mnist-sample",
                           data_dir, parzen=False)
    assert noise["precision"] < 0.1 and noise["coverage"] < 0.1
    assert real["precision"] > 0.8 and real["coverage"] > 0.8 and real["fid"] < noise["fid"] / 10


def test_a_num_below_the_minimum_is_refused_before_any_work(tmp_path, capsys):
    path = _npy(tmp_path, "ok.npy", np.zeros((300, 28, 28), np.float32))
    assert evaluate.main([str(path), "--num", "50", "--dataset", "mnist-sample", "--data-dir",
                          str(tmp_path / "data")]) == 2
    assert "--num must be at least 129" in _one_line_error(capsys)
    assert not (tmp_path / "data").exists()


def test_a_npz_behind_a_npy_name_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "arrays.npz", images=np.zeros((200, 28, 28), np.float32))
    os.rename(tmp_path / "arrays.npz", tmp_path / "samples.npy")
    assert evaluate.main([str(tmp_path / "samples.npy"), "--dataset", "mnist-sample", "--data-dir",
                          str(tmp_path / "data")]) == 2
    line = _one_line_error(capsys)
    assert "samples.npy" in line and ".npz" in line
    assert not (tmp_path / "data").exists()


def test_an_absurd_num_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    run = _jax_run_with(tmp_path / "run", 0.0)
    monkeypatch.setattr(evaluate, "load_reference", _no_scoring)
    assert evaluate.main([str(run), "--num", str(10**12), "--data-dir", str(tmp_path / "data")]) == 2
    line = _one_line_error(capsys)
    assert "--num 1000000000000" in line and "GiB" in line and "free" in line, line
    # A .npy's --num is only the most to read: what the file holds is what is allocated.
    path = _npy(tmp_path, "ok.npy", np.zeros((200, 28, 28), np.float32))
    source = evaluate.read_input(path, 10**12, 0)
    assert source.images.shape == (200, 28, 28)


def _no_scoring(*args, **kwargs):
    raise AssertionError("scoring started")


@pytest.mark.parametrize("case", ["a folder", "unwritable folder"])
def test_json_is_checked_before_scoring(case, tmp_path, capsys, monkeypatch):
    path = _npy(tmp_path, "ok.npy", np.zeros((200, 28, 28), np.float32))
    if case == "a folder":
        out = tmp_path / "scores.json"
        out.mkdir()
    else:
        out = Path("/sys/jax-gan-scores.json")  # Not writable, even by root.
        try:
            with open(out, "w"):
                pass
        except OSError:
            pass
        else:
            out.unlink()
            pytest.skip("/sys is writable here")
    monkeypatch.setattr(evaluate, "load_reference", _no_scoring)
    assert evaluate.main([str(path), "--dataset", "mnist-sample", "--data-dir", str(tmp_path / "data"),
                          "--json", str(out)]) == 2
    assert "--json" in _one_line_error(capsys)


@pytest.mark.slow
def test_scoring_a_npy_offline_leaves_no_empty_data_folder(data_dir, tmp_path, monkeypatch, capsys):
    """MNIST cannot be downloaded, so the reference is mnist-sample's (in the package) and the cached
    classifier is read: nothing is written to the data folder, so nothing may appear in it."""
    data = tmp_path / "data"
    shutil.copytree(data_dir / "classifiers", data / "classifiers")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    path = _npy(cwd, "real.npy", calibration_sets("mnist-sample", data_dir)["real"][:200])
    assert evaluate.main([str(path), "--data-dir", str(data), "--no-parzen"]) == 0
    assert "mnist-sample" in capsys.readouterr().out
    assert sorted(p.name for p in data.iterdir()) == ["classifiers"]
    assert sorted(p.name for p in cwd.iterdir()) == ["real.npy"]
    data_default = tmp_path / "cwd2"  # No --data-dir: ./data holds the classifier it trains, nothing else.
    data_default.mkdir()
    shutil.copytree(data_dir / "classifiers", data_default / "data" / "classifiers")
    monkeypatch.chdir(data_default)
    assert evaluate.main([str(path), "--no-parzen"]) == 0
    assert sorted(p.name for p in (data_default / "data").iterdir()) == ["classifiers"]


# --- B. the scorer beside a trainer: a reply timeout -------------------------------------------

def _stuck_scorer(folder: Path, handshake: bool = True) -> tuple[Path, Path]:
    """A 'python' that answers the scorer's handshake (or not), then never replies (a hung worker)."""
    pid_file = folder / "scorer.pid"
    script = folder / "stuck-python"
    ready = """echo '{"reference_split": "fake", "classifier_accuracy": 1.0}'""" if handshake else ""
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo $$ > {pid_file}
        {ready}
        exec sleep 300
        """))
    script.chmod(0o755)
    return script, pid_file


def _kill_leftover(pid_file: Path) -> bool:
    """Kill the fake scorer if it is still alive (only a process this test started); True if it was."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return False
    return True


CHILD = """\
import time
import numpy as np
from gan_core.driver import GracefulStop
from gan_core.errors import UserError
from gan_core.quality import QualityWorker

def attempt(worker):
    start = time.monotonic()
    try:
        worker.score(np.zeros((200, 28, 28), np.float32))
        print("scored")
    except UserError as e:
        print(f"error: {e}")
    return time.monotonic() - start
"""


def _run_child(code: str, pid_file: Path, interrupts: int = 0) -> tuple[str, str, int, bool]:
    """Run `CHILD` and `code` in a Python of its own, sending it `interrupts` Ctrl-Cs once it prints
    "ready"; its stdout, stderr and exit status, and whether the fake scorer outlived it (then killed)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD + textwrap.dedent(code)], env=ENV, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if interrupts:
            assert child.stdout.readline() == "ready\n"
            for _ in range(interrupts):
                time.sleep(0.5)
                child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        _kill_leftover(pid_file)  # It holds the child's stderr open.
        child.communicate()
        pytest.fail("waited for a stuck scorer for a minute")
    finally:
        leftover = _kill_leftover(pid_file)
    return out, err, child.returncode, leftover


def test_a_stuck_scorer_times_out_is_killed_and_is_one_error(tmp_path):
    script, pid_file = _stuck_scorer(tmp_path)
    out, err, _, leftover = _run_child(f"""
        worker = QualityWorker("mnist-sample", {str(tmp_path)!r}, python={str(script)!r})
        worker.timeout = 2.0
        seconds = attempt(worker)
        print(f"after {{seconds:.1f}} s; exit {{worker.process.poll()}}")
        worker.close()
        print("folder gone" if not worker.folder.exists() else "folder left")
        """, pid_file)
    lines = out.splitlines()
    assert lines[0].startswith("error: the quality scorer") and "2 s" in lines[0], (out, err)
    assert lines[1].endswith("exit -9") and lines[2] == "folder gone", out
    assert not leftover


def test_ctrl_c_is_not_held_up_by_a_stuck_scorer(tmp_path):
    script, pid_file = _stuck_scorer(tmp_path)
    out, err, _, leftover = _run_child(f"""
        with GracefulStop() as stop:
            worker = QualityWorker("mnist-sample", {str(tmp_path)!r}, python={str(script)!r})
            print("ready", flush=True)
            seconds = attempt(worker)
            print(f"stop requested {{stop.requested}} after {{seconds:.1f}} s")
            worker.close(abort=True)
        """, pid_file, interrupts=1)  # The first Ctrl-C: stop after this epoch.
    lines = out.splitlines()
    assert lines[0].startswith("error: ") and "stop" in lines[0], (out, err)
    assert lines[1].startswith("stop requested True"), out
    assert float(lines[1].split()[-2]) < 30
    assert not leftover


def test_ctrl_c_while_the_scorer_starts_lets_the_run_stop_before_it_starts(tmp_path):
    """The first reply can take minutes (a download, training the classifier): a stop request ends the
    wait, and the trainer, seeing its stop, says "stopped before the run started" (exit 130)."""
    script, pid_file = _stuck_scorer(tmp_path, handshake=False)
    out, err, _, leftover = _run_child(f"""
        import threading
        with GracefulStop() as stop:
            threading.Timer(1.0, lambda: print("ready", flush=True)).start()
            start = time.monotonic()
            worker = QualityWorker("mnist-sample", {str(tmp_path)!r}, python={str(script)!r})
            print(f"info {{worker.info}} stop requested {{stop.requested}} after "
                  f"{{time.monotonic() - start:.1f}} s, worker exit {{worker.process.poll()}}")
            print(attempt(worker) < 1, "folder gone" if not worker.folder.exists() else "folder left")
        """, pid_file, interrupts=1)
    lines = out.splitlines()
    assert lines[0].startswith("info None stop requested True") and lines[0].endswith("exit -9"), (out, err)
    assert float(lines[0].split()[-5]) < 30
    assert lines[1:] == ["error: the quality scorer was stopped while it started", "True folder gone"], out
    assert not leftover


def test_a_second_ctrl_c_aborts_a_wait_at_once(tmp_path):
    script, pid_file = _stuck_scorer(tmp_path)
    out, _, code, leftover = _run_child(f"""
        with GracefulStop():
            with QualityWorker("mnist-sample", {str(tmp_path)!r}, python={str(script)!r}) as worker:
                print("ready", flush=True)
                try:
                    worker.score(np.zeros((200, 28, 28), np.float32))
                except KeyboardInterrupt:
                    print("interrupted", flush=True)
                    raise
        """, pid_file, interrupts=2)
    assert out == "interrupted\n" and code != 0
    assert not leftover  # The worker was killed with the run.


def test_the_worker_api_keeps_its_shape():
    import inspect

    params = list(inspect.signature(quality.QualityWorker).parameters)
    assert params[:3] == ["dataset", "data_dir", "python"]
    assert list(inspect.signature(quality.QualityWorker.score).parameters) == ["self", "images", "seed"]
    assert quality.KEYS[0] == "fid" and callable(quality.as_eval_range)
