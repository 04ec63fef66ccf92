"""Mutation testing of the parity suite: `python -m parity_tests.mutants [--only NAME,...] [--jobs N]`.

Would the suite notice a wrong port? Each curated mutant below is one
plausible porting mistake. It is applied, alone, to a fresh copy of the
repository in a temporary folder (never to the working tree, so a crash
cannot leave the code mutated), and the tests named for it run there, with
`PYTHONPATH` pointing at the copy, stopping at the first failure. A mutant
is killed when a test fails; a survivor is a missing test. The table goes to
stdout and to `parity_tests/mutants.md`, whose "General-purpose tool"
section (`--tool`, a mutmut run) is kept as it is.

`--tool` takes the mutants mutmut 2 makes (`pip install mutmut==2.5.1`;
not a project dependency) of the JAX step, models and dropout, and tests
each in a copy with the tests for the function it changes; it rewrites that
section with the score and the mutants not killed. Importing JAX and torch
costs more than most tests, so one server imports them once and forks a
pytest per mutant. `--tool-minutes` stops early, with a uniform sample.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "parity_tests" / "mutants.md"
TOOL_HEADING = "## General-purpose tool"
SCORE_PREFIX = "Mutation score:"
IGNORED = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", "runs", "data", ".venv*",
                                 "*.egg-info", ".mutmut-cache", "html", "mutants")

# The tests each mutant runs, cheapest and likeliest killer first (pytest stops at the first failure):
# `test_check[ID]` asserts the registry's check ID (`parity_tests/registry.py`).
P = "parity_tests/test_parity.py"


def check(check_id: str) -> str:
    return f"{P}::test_check[{check_id}]"


SHAPES, INIT = check("shapes"), check("init")
FWD_G, FWD_D = check("forward_generator"), check("forward_discriminator")
GRADS = check("gradients")
DROPOUT = check("dropout")
TRAJ64 = check("trajectory_float64_100")
DATA = check("data")
FWD_TRAIN_G, FWD_TRAIN_D = check("forward_train_generator"), check("forward_train_discriminator")
MASKS = check("production_masks")
ORDER_JAX, ORDER_TORCH = check("data_order_jax"), check("data_order_torch")
DTRAJ64 = check("trajectory_dropout_float64_100")
Z = check("latents")
EPOCH_SAMPLES = check("epoch_samples")


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    what: str  # The porting mistake it stands for.
    path: str  # Relative to the repository root.
    edits: tuple[tuple[str, str], ...]  # (old, new): each old text must occur exactly once.
    tests: tuple[str, ...]

    @property
    def side(self) -> str:
        return self.path.split("/")[0]

    def apply(self, root: Path) -> None:
        path = root / self.path
        text = path.read_text()
        for old, new in self.edits:
            if text.count(old) != 1:
                raise StaleMutant(f"{self.name}: {self.path} holds {text.count(old)} copies of {old!r}")
            text = text.replace(old, new)
        path.write_text(text)


class StaleMutant(Exception):
    """The code a mutant edits has changed: the mutant must be rewritten, not skipped."""


def m(name: str, what: str, path: str, old: str, new: str, *tests: str) -> Mutant:
    return Mutant(name, what, path, ((old, new),), tests)


JS, JM, JD = "jax_gan/train_step.py", "jax_gan/models.py", "jax_gan/dropout.py"
TS, TM = "torch_reference/train_step.py", "torch_reference/models.py"
D_STEP_FAKES = "real, jax.lax.stop_gradient(fake)),"
D_IN_G_STEP = "discriminator(state.params_d, d_drop_g)"
HIDDEN_DENSE = '            x = dense(self.hidden_dim, x.shape[-1], self.init_scheme, f"Dense_{index}")(x)\n'
HIDDEN_DROPOUT = " " * 12 + "x = Dropout(self.dropout_rate, self.dropout_masks)(x, deterministic=not train)\n"
ACTIVATION = " " * 12 + "x = self.activation(x)\n"
G_UPDATE = ("    state.opt_g.zero_grad()\n    loss_g, fake = generator_loss(g, d, z)\n    loss_g.backward()\n"
            "    state.opt_g.step()\n")

MUTANTS: tuple[Mutant, ...] = (
    # The JAX port: models.
    m("d-leaky-slope", "D's LeakyReLU slope 0.2, not the config's 0.01", JM,
      "nn.leaky_relu(h, self.leaky_slope)", "nn.leaky_relu(h, 0.2)", FWD_D),
    m("g-activation", "G's hidden activation LeakyReLU instead of ReLU", JM,
      "self.image_size**2, nn.relu,", "self.image_size**2, nn.leaky_relu,", FWD_G),
    m("g-output-hardtanh", "G's tanh output replaced by a clip to [-1, 1]", JM,
      "jnp.tanh(x).reshape", "jnp.clip(x, -1, 1).reshape", FWD_G),
    m("init-bound", "weights from U(+-sqrt(3/fan_in)), not torch's U(+-1/sqrt(fan_in))", JM,
      "bound = 1.0 / math.sqrt(fan_in)", "bound = math.sqrt(3.0 / fan_in)", INIT),
    m("dropout-layer-removed", "no dropout after the second hidden layer (G and D)", JM,
      "(x, deterministic=not train)", "(x, deterministic=not train or index == 3)",
      FWD_TRAIN_G, DTRAJ64),
    Mutant("dropout-before-linear", "dropout moved from after the activation to before the Linear", JM,
           ((HIDDEN_DENSE, HIDDEN_DROPOUT + HIDDEN_DENSE),
            (ACTIVATION + HIDDEN_DROPOUT, ACTIVATION)),
           (FWD_TRAIN_G, DTRAJ64)),
    m("dropout-on-output", "a third dropout, on the output layer's logits", JM,
      'return dense(self.out_dim, x.shape[-1], self.init_scheme, "Dense_6")(x)',
      'return Dropout(self.dropout_rate, self.dropout_masks)(dense(self.out_dim, x.shape[-1], '
      'self.init_scheme, "Dense_6")(x), deterministic=not train)', FWD_TRAIN_D, DTRAJ64),
    # The JAX port: dropout itself.
    m("dropout-scale", "survivors scaled by (1 - rate) instead of 1 / (1 - rate)", JD,
      "jnp.where(keep, x / (1.0 - self.rate)", "jnp.where(keep, x * (1.0 - self.rate)", DROPOUT),
    m("dropout-keep-rate", "keeps with probability rate instead of 1 - rate", JD,
      "keep = keep_mask(key, x.shape, self.rate)", "keep = keep_mask(key, x.shape, 1.0 - self.rate)",
      MASKS),
    m("dropout-unkeyed", "hash masks ignore the key: every layer and step drops the same units", JD,
      "_fmix32(_fmix32(counter ^ words[0]) + words[-1])", "_fmix32(_fmix32(counter))", MASKS),
    # The JAX port: the step.
    m("g-step-no-dropout", "G trained with dropout off in its own step", JS,
      'return lambda z: g.apply({"params": params_g}, z, train=dropout,',
      'return lambda z: g.apply({"params": params_g}, z, train=False,', MASKS, DTRAJ64),
    m("d-in-g-step-no-dropout", "D without dropout when it judges G's fakes in G's step", JS,
      D_IN_G_STEP, 'lambda x: d.apply({"params": state.params_d}, x, train=False)', MASKS, DTRAJ64),
    m("d-step-no-dropout", "D trained with dropout off in its own step", JS,
      "discriminator(p, d_drop_d)", 'lambda x: d.apply({"params": p}, x, train=False)', MASKS, DTRAJ64),
    m("shared-dropout-key", "D's dropout in G's step reuses G's key: correlated masks", JS,
      D_IN_G_STEP, "discriminator(state.params_d, g_drop)", MASKS),
    m("d-loss-not-averaged", "D's loss is the sum of the real and fake BCEs, not their mean", JS,
      "(bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0)) / 2",
      "(bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0))", GRADS, DTRAJ64),
    m("d-labels-swapped", "D's labels swapped: real 0, fake 1", JS,
      "(bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0)) / 2",
      "(bce_with_logits(real_logits, 0.0) + bce_with_logits(fake_logits, 1.0)) / 2", GRADS, DTRAJ64),
    m("g-label", "G trained towards label 0 (helping D)", JS,
      "return bce_with_logits(discriminator(fake), 1.0), fake",
      "return bce_with_logits(discriminator(fake), 0.0), fake", GRADS, DTRAJ64),
    m("adam-b1", "Adam beta1 0.5", JS, "b1=config.b1", "b1=0.5", DTRAJ64),
    m("adam-b2", "Adam beta2 0.99", JS, "b2=config.b2", "b2=0.99", DTRAJ64),
    m("adam-eps", "Adam eps 1e-7 (optax's own default is 1e-8, PyTorch's too)", JS,
      "eps=config.eps", "eps=1e-7", DTRAJ64),
    m("z-uniform", "z uniform with unit variance, not normal", JS,
      "z = jax.random.normal(z_key, (n, config.latent_dim), real.dtype)",
      "z = jax.random.uniform(z_key, (n, config.latent_dim), real.dtype, -3**0.5, 3**0.5)", Z),
    m("z-scaled", "z ~ N(0, 1.05^2)", JS,
      "z = jax.random.normal(z_key, (n, config.latent_dim), real.dtype)",
      "z = 1.05 * jax.random.normal(z_key, (n, config.latent_dim), real.dtype)", Z),
    m("step-key-frozen", "every step draws from the same key: the same z and masks each step", JS,
      "jax.random.fold_in(state.key, state.step)", "jax.random.fold_in(state.key, 0)", Z),
    m("d-sees-updated-g", "G/D update order: D trains on fakes from the already-updated G", JS,
      D_STEP_FAKES,
      "real, jax.lax.stop_gradient(g.apply({'params': optax.apply_updates(state.params_g, "
      "tx.update(grads_g, state.opt_state_g, state.params_g)[0])}, z, train=dropout, "
      "rngs={'dropout': g_drop}))),", TRAJ64),
    m("no-stop-gradient", "no stop-gradient: G's update also follows D's loss through the fakes", JS,
      "updates_g, opt_state_g = tx.update(grads_g,",
      "grads_g = jax.tree.map(jnp.add, grads_g, jax.grad(lambda pg: bce_with_logits(d.apply("
      "{'params': state.params_d}, g.apply({'params': pg}, z, train=dropout, rngs={'dropout': g_drop}), "
      "train=dropout, rngs={'dropout': d_drop_d}), 0.0) / 2)(state.params_g))\n"
      "    updates_g, opt_state_g = tx.update(grads_g,", TRAJ64),
    m("no-shuffle", "the data in file order every epoch", JS,
      "return jnp.argsort(jax.random.bits(perm_key, (num_examples,), jnp.uint32), stable=True)",
      "return jnp.arange(num_examples)", ORDER_JAX),
    m("same-order-each-epoch", "one shuffle, reused by every epoch", JS,
      "jax.random.fold_in(state.key, 0x7FFFFFFF), epoch)", "jax.random.fold_in(state.key, 0x7FFFFFFF), 0)",
      ORDER_JAX),
    m("partial-batch-dropped", "the last, partial batch dropped (drop_last=True)", JS,
      "per_epoch = full + (remainder > 0)", "per_epoch = full", ORDER_JAX),
    m("grids-after-update", "sample grids taken one step late, after the update", JS,
      "jax.lax.cond(state.step % config.sample_every == 0,",
      "jax.lax.cond((state.step + 1) % config.sample_every == 0,", EPOCH_SAMPLES),
    # Shared by both frameworks.
    m("normalization", "images left in [0, 1] (the tutorial's no-op Normalize) by default",
      "gan_core/data.py",
      "return (x - np.float32(0.5)) / np.float32(0.5)", "return x", DATA),
    # The PyTorch reference.
    Mutant("ref-update-order", "reference: D's step before G's (G then trains against the updated D)", TS,
           ((G_UPDATE, "    fake = g(z)\n"),
            ("    state.opt_d.step()\n", "    state.opt_d.step()\n" + G_UPDATE)),
           (TRAJ64,)),
    m("ref-no-detach", "reference: the fakes not detached in D's step", TS,
      "discriminator_loss(d, real, fake.detach())", "discriminator_loss(d, real, fake)", TRAJ64),
    m("ref-leaky-slope", "reference: D's LeakyReLU slope 0.2", TM,
      "nn.Linear(image_size * image_size, hidden_dim),\n            nn.LeakyReLU(leaky_slope),",
      "nn.Linear(image_size * image_size, hidden_dim),\n            nn.LeakyReLU(0.2),", FWD_D),
    m("ref-dropout-removed", "reference: G's second dropout layer removed", TM,
      "            nn.Dropout(dropout_rate),\n            nn.Linear(hidden_dim, image_size * image_size),",
      "            nn.Linear(hidden_dim, image_size * image_size),", FWD_TRAIN_G),
    m("ref-z-uniform", "reference: z from torch.rand (uniform on [0, 1))", TS,
      "z = torch.randn(real.size(0), config.latent_dim,", "z = torch.rand(real.size(0), config.latent_dim,",
      Z),
    m("ref-no-shuffle", "reference: the data in file order", TS,
      "order = torch.randperm(len(images), generator=epoch_generator(config, epoch))",
      "order = torch.arange(len(images))", ORDER_TORCH),
    m("ref-partial-batch-dropped", "reference: the last, partial batch dropped", TS,
      "    for i in range(start, stop):\n        yield images[",
      "    for i in range(start, min(stop, len(images) // config.batch_size)):\n        yield images[",
      ORDER_TORCH),
)


EQUIVALENT = """Not in the list because no test can kill them, being the same computation:
- removing `jax.lax.stop_gradient(fake)` from the JAX D step: `value_and_grad` there differentiates
  D's parameters only, so no gradient could reach G anyway (`no-stop-gradient` is the port of a
  missing `.detach()` that does change the result);
- moving a dropout from after the (Leaky)ReLU to before it: both activations commute with
  multiplying by 0 or 1/(1 - p), so the outputs are identical for every mask."""


def copy_tree(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=IGNORED, symlinks=True)
    return dest


def pytest_env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}


def run_pytest(root: Path, tests: Iterable[str], timeout: float) -> tuple[int, str]:
    """pytest in `root` on `tests`, stopping at the first failure: (exit code, output)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", "-W",
           "ignore::UserWarning", *tests]
    try:
        done = subprocess.run(cmd, cwd=root, env=pytest_env(root), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def killer(output: str) -> str:
    """The test that failed first, from pytest's short summary ('collection' if none ran)."""
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    if not found:
        return "collection / import"
    return found.group(1).replace("parity_tests/", "")


@dataclasses.dataclass
class Result:
    mutant: Mutant
    killed: bool
    by: str
    seconds: float


def run_mutant(mutant: Mutant, timeout: float) -> Result:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        root = copy_tree(Path(tmp) / "repo")
        try:
            mutant.apply(root)
        except StaleMutant as e:
            return Result(mutant, False, f"STALE: {e}", 0.0)
        code, output = run_pytest(root, mutant.tests, timeout)
    seconds = time.perf_counter() - start
    if code == 0:
        return Result(mutant, False, "SURVIVED", seconds)
    if code == -1:
        return Result(mutant, True, "timeout", seconds)
    if code in (1, 2):  # Tests failed, or collection failed (the mutant broke an import).
        return Result(mutant, True, killer(output), seconds)
    return Result(mutant, False, f"pytest exit {code}: {output[-300:]}", seconds)


def baseline(mutants: Iterable[Mutant], timeout: float) -> None:
    """The unmutated copy imports itself (not the working tree) and passes every test used."""
    tests = sorted({t for mutant in mutants for t in mutant.tests})
    with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as tmp:
        root = copy_tree(Path(tmp) / "repo")
        where = subprocess.run([sys.executable, "-c", "import jax_gan, torch_reference, gan_core, "
                                "parity_tests; print(jax_gan.__file__, torch_reference.__file__, "
                                "gan_core.__file__, parity_tests.__file__)"],
                               cwd=root, env=pytest_env(root), capture_output=True, text=True, check=True)
        outside = [f for f in where.stdout.split() if not f.startswith(str(root))]
        if outside:
            raise SystemExit(f"baseline: the copy imports {outside}, not its own files")
        code, output = run_pytest(root, tests, timeout * len(tests))
        if code != 0:
            raise SystemExit(f"baseline: the unmutated copy fails its tests:\n{output[-3000:]}")


def table(results: list[Result]) -> str:
    lines = ["| mutant | side | the mistake | killed by | seconds |", "| --- | --- | --- | --- | ---: |"]
    for r in results:
        by = f"`{r.by}`" if r.killed else f"**{r.by}**"
        lines.append(f"| {r.mutant.name} | {r.mutant.side} | {r.mutant.what} | {by} | {r.seconds:.0f} |")
    return "\n".join(lines)


def summary(results: list[Result], wall: float) -> str:
    killed = sum(r.killed for r in results)
    sides = {side: (sum(r.killed for r in results if r.mutant.side == side),
                    sum(r.mutant.side == side for r in results)) for side in dict.fromkeys(
                        r.mutant.side for r in results)}
    parts = ", ".join(f"{k}/{n} {side}" for side, (k, n) in sides.items())
    return (f"curated {killed}/{len(results)} killed ({parts}); {wall / 60:.1f} min wall "
            f"({sum(r.seconds for r in results) / 60:.1f} min in mutant runs) on {os.cpu_count()} cores.")


def tool_section() -> str:
    if REPORT.exists() and TOOL_HEADING in REPORT.read_text():
        return REPORT.read_text()[REPORT.read_text().index(TOOL_HEADING):]
    return f"{TOOL_HEADING}\n\nNot run yet: `python -m parity_tests.mutants --tool`.\n"


def write_report(curated: str, tool: str) -> None:
    REPORT.write_text("# Mutation testing\n\nWritten by `python -m parity_tests.mutants` (curated mutants) "
                      "and `python -m parity_tests.mutants --tool` (mutmut).\n\n" + curated.strip()
                      + "\n\n" + tool.strip() + "\n")


def curated_section() -> str:
    text = REPORT.read_text() if REPORT.exists() else ""
    start = text.find("## Curated mutants")
    end = text.find(TOOL_HEADING)
    return text[start:end if end >= 0 else None] if start >= 0 else "## Curated mutants\n\nNot run yet.\n"


def score_line() -> str:
    """One line with both scores from `mutants.md`, for the parity report's last line."""
    text = REPORT.read_text() if REPORT.exists() else ""
    scores = [line.removeprefix(SCORE_PREFIX).strip().split(";")[0] for line in text.splitlines()
              if line.startswith(SCORE_PREFIX)]
    found = "; ".join(scores) if scores else "not measured yet (python -m parity_tests.mutants)"
    return f"{SCORE_PREFIX} {found} (parity_tests/mutants.md)."


# The general-purpose tool: mutmut 2 over the JAX step, models and dropout.
TOOL_PATHS = ("jax_gan/train_step.py", "jax_gan/models.py", "jax_gan/dropout.py")
D = "tests/test_dropout.py"
TOOL_TESTS = {  # By file, then by top-level function or class; cheapest first.
    "jax_gan/dropout.py": {
        "": (D, DROPOUT, check("dropout_eval"), check("mask_injection_is_production"),
             FWD_TRAIN_G, MASKS, DTRAJ64),
    },
    "jax_gan/models.py": {
        "": (SHAPES, INIT, FWD_G, FWD_D, GRADS, FWD_TRAIN_G, FWD_TRAIN_D,
             f"{D}::test_every_layer_and_step_draws_a_fresh_mask", MASKS, DTRAJ64),
    },
    "jax_gan/train_step.py": {
        "": (check("one_adam_step"), Z, MASKS, DTRAJ64, TRAJ64),
        "epoch_permutation": (ORDER_JAX,),
        "train_epoch": (ORDER_JAX, EPOCH_SAMPLES),
        "generate": (FWD_G,),
        "create_train_state": (INIT, Z, MASKS),
    },
}


def changed_function(path: Path, pristine: Path) -> str:
    """The top-level function or class holding the first line where `path` differs from `pristine`."""
    ours, theirs = path.read_text().splitlines(), pristine.read_text().splitlines()
    line = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                min(len(ours), len(theirs)))
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.lineno <= line + 1 <= node.end_lineno:
            return node.name
    return ""


def tool_tests(root: Path, pristine: Path) -> tuple[str, ...]:
    """The tests for whatever function the mutant under test changed (none changed: mutmut's baseline)."""
    for rel in TOOL_PATHS:
        if (root / rel).read_text() != (pristine / rel).read_text():
            by_function = TOOL_TESTS[rel]
            return by_function.get(changed_function(root / rel, pristine / rel), by_function[""])
    return tuple(dict.fromkeys(t for by_function in TOOL_TESTS.values() for t in by_function[""]))


HEAVY = ("jax", "jax.numpy", "flax.linen", "optax", "numpy", "scipy.stats", "torch", "pytest")
OURS = ("jax_gan", "gan_core", "torch_reference", "parity_tests", "tests", "benchmarks")


def tool_server(sock: Path, pristine: Path, limit: float = 900) -> None:
    """Import JAX, Flax, torch and pytest once, then fork one pytest run per mutant.

    mutmut starts the test command afresh for each of its ~300 mutants, and
    importing the frameworks costs more than most of the tests. The parent
    never starts a JAX backend, so each child starts its own; the child
    imports this project's modules fresh, mutant and all. A client that goes
    away (mutmut's timeout) takes its child with it.
    """
    import importlib
    import select
    import signal
    import socket

    for name in HEAVY:
        importlib.import_module(name)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen()
    while True:
        conn, _ = server.accept()
        root = Path(conn.recv(4096).decode())
        if not root.is_dir():
            conn.close()
            break
        pid = os.fork()
        if pid == 0:  # The child: a fresh pytest with this project's modules unimported.
            code = 3
            try:
                for name in [n for n in sys.modules if n.split(".")[0] in OURS]:
                    del sys.modules[name]
                os.chdir(root)
                sys.path.insert(0, str(root))
                import pytest

                code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
                                        *tool_tests(root, pristine)]))
            finally:
                sys.stdout.flush()
                os._exit(code)
        start, status = time.monotonic(), None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif time.monotonic() - start > limit or (select.select([conn], [], [], 0.2)[0]
                                                     and not conn.recv(1)):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = -9
        try:
            conn.sendall(str(status).encode())
        except OSError:
            pass
        conn.close()


def tool_client(sock: Path, root: Path) -> int:
    """Ask the server to test the tree at `root`: pytest's exit code (-9: killed at the time limit)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(sock))
        client.sendall(str(root).encode())
        reply = client.recv(64).decode()
    return int(reply) if reply.lstrip("-").isdigit() else 3


def run_tool(mutmut: str, minutes: float | None = None) -> str:
    """mutmut's mutants of TOOL_PATHS, tested one by one in a copy; returns the report section.

    mutmut enumerates, applies and shows the mutants; the tests run through
    `tool_server`. They are taken in a fixed random order, so a run cut short
    by `minutes` is a uniform sample of all of them. Nothing else may run mutmut in
    the copy meanwhile: mutmut rewrites its cache from whatever file is on disk.
    """
    import random
    import socket

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutmut-") as tmp:
        root, pristine = copy_tree(Path(tmp) / "repo"), copy_tree(Path(tmp) / "pristine")
        subprocess.run([mutmut, "run", "--paths-to-mutate", ",".join(TOOL_PATHS), "--runner", "true",
                        "--tests-dir", "parity_tests", "--no-progress"], cwd=root, capture_output=True)
        ids = sorted(mutmut_statuses(root / ".mutmut-cache"))
        order = ids.copy()
        random.Random(0).shuffle(order)
        sock = Path(tmp) / "server.sock"
        with (Path(tmp) / "server.log").open("w") as log:
            server = subprocess.Popen([sys.executable, "-m", "parity_tests.mutants", "--tool-server",
                                       str(sock), str(pristine)], cwd=pristine, env=pytest_env(pristine),
                                      stdout=log, stderr=subprocess.STDOUT)
        while not sock.exists():
            time.sleep(0.5)
        statuses: dict[int, str] = {}
        survivors: dict[int, str] = {}
        try:
            for number in order:
                if minutes is not None and time.perf_counter() - start > 60 * minutes:
                    break
                began = time.perf_counter()
                applied = subprocess.run([mutmut, "apply", str(number)], cwd=root, capture_output=True)
                code = tool_client(sock, root) if applied.returncode == 0 else 3
                for rel in TOOL_PATHS:  # Back to the pristine files, which mutmut's cache describes.
                    shutil.copy2(pristine / rel, root / rel)
                statuses[number] = {0: "survived", -9: "timeout", 1: "killed", 2: "killed"}.get(code, "error")
                if statuses[number] != "killed":
                    survivors[number] = subprocess.run([mutmut, "show", str(number)], cwd=root,
                                                       capture_output=True, text=True).stdout
                print(f"mutmut #{number}: {statuses[number]} ({time.perf_counter() - began:.0f} s; "
                      f"{len(statuses)}/{len(ids)})", flush=True)
        finally:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stop:
                stop.connect(str(sock))
                stop.sendall(b"/nonexistent/stop")
            server.wait(60)
    return tool_report(statuses, survivors, (time.perf_counter() - start) / 60, len(ids))


def mutmut_statuses(cache: Path) -> dict[int, str]:
    """{mutant id: killed | survived | timeout | suspicious | skipped | untested} from mutmut's cache."""
    import sqlite3

    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT id, status FROM Mutant ORDER BY id").fetchall()
    return {number: status.removeprefix("ok_").removeprefix("bad_") for number, status in rows}


def tool_report(statuses: dict[int, str], survivors: dict[int, str], minutes: float, made: int) -> str:
    counts = {s: list(statuses.values()).count(s) for s in dict.fromkeys(statuses.values())}
    killed, tested = counts.get("killed", 0), len(statuses)
    share = killed / max(tested, 1)
    margin = 1.96 * math.sqrt(share * (1 - share) / max(tested, 1) * (1 - tested / max(made, 1)))
    sample = "all" if tested == made else f"a uniform random sample of {tested} of the"
    lines = [TOOL_HEADING, "",
             f"mutmut 2.5.1 made {made} mutants of {', '.join(f'`{p}`' for p in TOOL_PATHS)}; {sample} "
             f"{made} were tested, each by the tests for the function it changes (`TOOL_TESTS` in "
             f"`mutants.py`), in {minutes:.0f} min.", "",
             f"{SCORE_PREFIX} mutmut {killed}/{tested} killed ({100 * share:.0f}%"
             + (f" +- {100 * margin:.0f}% for all {made}" if tested < made else "") + "); "
             + (", ".join(f"{n} {s}" for s, n in counts.items() if s != "killed") or "none survived") + ".",
             "", "Not killed:", ""]
    for number, diff in sorted(survivors.items()):
        body = "\n".join(line for line in diff.splitlines() if line.startswith(("---", "+", "-", "@@")))
        lines += [f"- #{number} ({statuses[number]})", "", "```diff", body, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parity_tests.mutants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma list of mutant names")
    p.add_argument("--list", action="store_true", help="list the mutants and their tests")
    p.add_argument("--jobs", type=int, default=1, help="mutants at a time (default 1)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    p.add_argument("--no-write", action="store_true", help="print only; leave mutants.md alone")
    p.add_argument("--tool", action="store_true", help="run mutmut's mutants instead (slow: hours)")
    p.add_argument("--tool-minutes", type=float, help="stop testing mutmut's mutants after this long")
    p.add_argument("--mutmut", default="mutmut", help="the mutmut 2 executable")
    p.add_argument("--tool-server", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tool_server:
        tool_server(*args.tool_server)
        return 0
    if args.tool:
        section = run_tool(args.mutmut, args.tool_minutes)
        print(section)
        if not args.no_write:
            write_report(curated_section(), section)
        return 0
    mutants = [mt for mt in MUTANTS if not args.only or mt.name in args.only.split(",")]
    if args.list:
        for mt in mutants:
            print(f"{mt.name:28} {mt.path:32} {', '.join(mt.tests)}")
        return 0
    start = time.perf_counter()
    if not args.no_baseline:
        baseline(mutants, args.timeout)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = []
        for r in pool.map(lambda mt: run_mutant(mt, args.timeout), mutants):
            print(f"{r.mutant.name:28} {'killed by ' + r.by if r.killed else r.by} ({r.seconds:.0f} s)",
                  flush=True)
            results.append(r)
    wall = time.perf_counter() - start
    text = "\n\n".join(["## Curated mutants", f"{SCORE_PREFIX} {summary(results, wall)}", table(results),
                         EQUIVALENT])
    print("\n" + text)
    if not args.no_write and not args.only:
        write_report(text, tool_section())
    print(json.dumps({"killed": sum(r.killed for r in results), "total": len(results)}))
    return 0 if all(r.killed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
