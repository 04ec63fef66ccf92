"""The shape of the codebase, held by tests: one-way imports, no import-time side effects."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gan_core", "jax_gan", "torch_reference", "parity_tests", "benchmarks")


def _imports(package: str) -> dict[str, set[str]]:
    """Module path -> every module it imports (absolute names), anywhere in the file."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def _top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_the_product_never_imports_its_reference():
    for path, names in _imports("jax_gan").items():
        assert "torch_reference" not in _top(names), path


def test_the_reference_never_imports_the_jax_port():
    for path, names in _imports("torch_reference").items():
        assert not _top(names) & {"jax_gan", "jax", "flax", "optax", "orbax"}, path


def test_the_shared_core_imports_no_framework():
    for path, names in _imports("gan_core").items():
        assert not _top(names) & {"jax_gan", "torch_reference", "jax", "flax", "optax", "orbax", "torch",
                                  "torchvision"}, path


def test_no_module_imports_a_private_name_from_another():
    for package in PACKAGES:
        for path, names in _imports(package).items():
            private = [n for n in names if n.split(".")[-1].startswith("_") and not n.endswith("__")
                       and n.split(".")[0] in PACKAGES]
            assert not private, f"{path} imports {private}"


@pytest.mark.parametrize("module, check", [
    ("gan_core.images", "gan_core.images.save_losses('/dev/null', [{'step': 0, 'loss_g': 1, 'loss_d': 1}], "
                        "'t'); print(dict.__getitem__(matplotlib.rcParams, 'backend') is before)"),
    ("jax_gan.checkpoint", "import logging; print(logging.getLogger('absl').level == before)"),
    ("parity_tests.checks", "import jax; print(jax.config.jax_default_matmul_precision == before)"),
])
def test_importing_changes_no_global_state(module, check):
    pytest.importorskip("torch")
    setup = {"gan_core.images": "import matplotlib; "
                                "before = dict.__getitem__(matplotlib.rcParams, 'backend')",
             "jax_gan.checkpoint": "import logging; before = logging.getLogger('absl').level",
             "parity_tests.checks": "import jax; before = jax.config.jax_default_matmul_precision"}[module]
    code = f"{setup}\nimport {module}\n{check}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.strip() == "True"
