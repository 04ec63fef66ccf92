"""The README and docs/ name only commands, flags, imports and files that exist.

Every `python -m MODULE` they show, in a code block or in inline code, must be
importable (`importlib.util.find_spec`), and every `--flag` shown with it must
appear in the usage that `python -m MODULE --help` prints. A flag belongs to a command when it is on
the same command line (up to `|`, `;`, `&` or a `#` comment; backslash
continuations joined), or in the same inline code span, or when a table row
begins with it: then it belongs to the command that row names, or else to the
ones the table's header names. Flags of other tools (pip,
pytest, bash, `XLA_FLAGS=...`) are never attributed to a project command.
Python blocks' `from X import Y` must resolve, and relative links and
`bash path.sh` scripts must point at files.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")
COMMAND = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")
FLAG = re.compile(r"(?<![\w-])--(\[no-\])?([A-Za-z][\w-]*)")
SEPARATOR = re.compile(r"\s#|[|;&]")  # The end of a command: a comment, a pipe, `;`, `&&`.
LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")
SCRIPT = re.compile(r"\bbash ([\w./-]+\.sh)\b")


class Use(NamedTuple):
    """`python -m module` shown in `where`, with the flags attributed to it."""

    where: str
    module: str
    flags: tuple[str, ...]


def flags_in(text: str) -> tuple[str, ...]:
    """`--x` and `--[no-]x` (both spellings) in text, `--x=value` as `--x`."""
    found = []
    for negatable, name in FLAG.findall(text):
        name = name.rstrip("-")
        found += [f"--{name}", f"--no-{name}"] if negatable else [f"--{name}"]
    return tuple(found)


def command_line_uses(line: str, where: str) -> Iterator[Use]:
    """Each `python -m M` on a shell line, with the flags after it up to the next command or separator."""
    starts = list(COMMAND.finditer(line))
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(line)
        rest = line[match.end():end]
        cut = SEPARATOR.search(rest)
        yield Use(where, match.group(1), flags_in(rest[: cut.start()] if cut else rest))


def table_uses(rows: list[tuple[int, str]], name: str) -> Iterator[Use]:
    """A table of flags: a row whose first cell shows flags (inline code starting with `--`) gives
    them to the commands the row names, or else to those its header names."""
    header_modules = [m for span in INLINE.findall(rows[0][1]) for m in COMMAND.findall(span)]
    for number, line in rows[2:]:
        first_cell = line.strip().strip("|").split(" | ")[0]
        flags = tuple(f for span in INLINE.findall(first_cell) if span.startswith("--")
                      for f in flags_in(span))
        modules = [m for span in INLINE.findall(line) for m in COMMAND.findall(span)] or header_modules
        if flags:
            yield from (Use(f"{name}:{number}", module, flags) for module in modules)


def uses(text: str, name: str = "doc") -> list[Use]:
    """Every command shown in a Markdown text and the flags attributed to it."""
    found: list[Use] = []
    for block in FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        joined = block.group(1).replace("\\\n", " ")
        for offset, line in enumerate(joined.splitlines()):
            found += command_line_uses(line, f"{name}:{first + offset}")
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # Keep line numbers.
    for span in INLINE.finditer(prose):
        where = f"{name}:{prose.count(chr(10), 0, span.start()) + 1}"
        found += command_line_uses(span.group(1).replace("\n", " "), where)
    table: list[tuple[int, str]] = []
    for number, line in enumerate([*prose.splitlines(), ""], start=1):
        if line.lstrip().startswith("|"):
            table.append((number, line))
            continue
        if len(table) > 2:
            found += table_uses(table, name)
        table = []
    return found


def is_project(module: str) -> bool:
    return (ROOT / module.split(".")[0] / "__init__.py").is_file()


def runnable(module: str) -> bool:
    """Whether `python -m module` can start: the module exists (a package needs a `__main__`)."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{module}.__main__")
    except (ImportError, ValueError):
        return False
    return spec is not None


# `python -m MODULE --help` for several modules in one interpreter, so JAX and PyTorch are imported
# once: runpy runs each module as `-m` does, its output captured, its SystemExit caught.
HELP_SCRIPT = """
import contextlib, io, json, runpy, sys, traceback
texts = {}
for module in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [module, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as e:
        status = e.code or 0
    except BaseException:
        status = traceback.format_exc(limit=-1).strip().splitlines()[-1]
    texts[module] = [status == 0, out.getvalue() if status == 0 else f"{status} {err.getvalue()[-300:]}"]
print("\\n@@help@@" + json.dumps(texts))
"""
HELP: dict[str, tuple[bool, str]] = {}  # module -> (ran, its --help text or why not), once per session.


def load_help(modules: list[str]) -> None:
    todo = [m for m in modules if m not in HELP]
    if not todo:
        return
    env = {**os.environ, "COLUMNS": "200", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", HELP_SCRIPT, *todo], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    if "@@help@@" not in done.stdout:
        raise RuntimeError(f"--help of {todo} crashed (status {done.returncode}): {done.stderr[-500:]}")
    HELP.update(json.loads(done.stdout.rsplit("@@help@@", 1)[1]))


def help_text(module: str) -> str:
    """The help text, or ValueError saying why `python -m module --help` failed."""
    load_help([module])
    ran, text = HELP[module]
    if not ran:
        raise ValueError(f"`python -m {module} --help` failed: {text}")
    return text


def problems(found: list[Use]) -> list[str]:
    """What the docs show that does not exist, one line each."""
    wrong = []
    for use in found:
        if not runnable(use.module):
            wrong.append(f"{use.where}: `python -m {use.module}`: no such module")
        elif is_project(use.module):
            try:
                shown = help_text(use.module)
            except ValueError as e:
                wrong.append(f"{use.where}: {e}")
                continue
            usage = shown.split("\n\n")[0]  # argparse's usage names every option, and nothing else.
            wrong += [f"{use.where}: `python -m {use.module}` has no {flag}" for flag in use.flags
                      if flag not in flags_in(usage)]
    return wrong


def python_imports(text: str, name: str) -> list[str]:
    """`from X import Y` in Python blocks whose module or name does not exist (checked without importing)."""
    wrong = []
    for block in re.finditer(r"^[ \t]*```python\n(.*?)^[ \t]*```", text, re.S | re.M):
        for node in ast.walk(ast.parse(textwrap.dedent(block.group(1)))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            try:
                spec = importlib.util.find_spec(node.module)
            except ImportError:
                spec = None
            if spec is None or spec.origin is None:
                wrong.append(f"{name}: `from {node.module} import ...`: no such module")
                continue
            defined = _top_level_names(Path(spec.origin))
            for alias in node.names:
                submodule = importlib.util.find_spec(f"{node.module}.{alias.name}") \
                    if spec.submodule_search_locations else None
                if alias.name not in defined and submodule is None:
                    wrong.append(f"{name}: `from {node.module} import {alias.name}`: no such name")
    return wrong


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def broken_links(text: str, name: str, folder: Path) -> list[str]:
    """Relative links and images to missing files or headings, and `bash x.sh` scripts that are not there."""
    missing = []
    for target in (link or image for link, image in LINK.findall(text)):
        file, _, anchor = target.partition("#")
        if re.match(r"[a-z]+:", target) or not file:
            continue
        if not (folder / file).exists():
            missing.append(f"{name}: link {target}")
        elif anchor and anchor not in _anchors(folder / file):
            missing.append(f"{name}: link {target}: no such heading")
    missing += [f"{name}: bash {script}" for script in SCRIPT.findall(text) if not (ROOT / script).is_file()]
    return missing


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _read(path: Path) -> tuple[str, str]:
    return path.read_text(), str(path.relative_to(ROOT))


# --- the real docs ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def doc_uses() -> list[Use]:
    found = [use for path in DOCS for use in uses(*_read(path))]
    load_help(sorted({u.module for u in found if is_project(u.module) and runnable(u.module)}))
    return found


def test_docs_exist_and_show_the_commands(doc_uses):
    assert (ROOT / "docs").is_dir() and len(DOCS) > 1
    readme = [u for u in doc_uses if u.where.startswith("README.md")]
    assert {"jax_gan.train", "torch_reference.train", "jax_gan.sweep"} <= {u.module for u in readme}
    assert any(u.flags for u in readme), "no flag found in the README: the extraction is broken"


def test_docs_name_only_real_commands_and_flags(doc_uses):
    assert problems(doc_uses) == []


def test_python_examples_import_real_names():
    assert [p for path in DOCS for p in python_imports(*_read(path))] == []


def test_links_and_scripts_point_at_files():
    assert [p for path in DOCS for p in broken_links(*_read(path), path.parent)] == []


# --- the checker itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("doc, reported", [
    ("```bash\npython -m jax_gan.train --no-such-flag\n```", "has no --no-such-flag"),
    ("```bash\npython -m jax_gan.sweep --seeds 0,1 \\\n  --lr 1e-4 --no-such-flag\n```",
     "has no --no-such-flag"),
    ("Run `python -m jax_gan.sample --checkpoint RUN --nmu 5 --out s.png`.", "has no --nmu"),
    ("`python -m\njax_gan.train --epochz 5` across a line break", "has no --epochz"),
    ("`python -m jax_gan.trian`", "no such module"),
    ("```\npython -m no_such_package.cli --help\n```", "no such module"),
    ("| flag (`python -m jax_gan.evaluate`) | what |\n| --- | --- |\n| `--no-parzen-please` | x |\n",
     "has no --no-parzen-please"),
    ("| flag | what |\n| --- | --- |\n| `--slurp` | a great circle (`python -m jax_gan.interpolate`) |\n",
     "has no --slurp"),
    ("| flag | what |\n| --- | --- |\n| `--[no-]downlaod` | x (`python -m jax_gan.train`) |\n",
     "downlaod"),  # Both spellings are reported.
])
def test_a_wrong_command_or_flag_is_reported(doc_uses, doc, reported):
    found = problems(uses(doc))
    assert found and all(reported in line for line in found), found


@pytest.mark.parametrize("doc", [
    '```bash\npip install -e ".[all]"\npytest -m "not slow" --durations=5\n```',
    "```bash\nXLA_FLAGS=--xla_force_host_platform_device_count=4 python -m jax_gan.sweep --seeds 0,1\n```",
    "```bash\npython -m jax_gan.train --lr 4e-4 | tee log --append   # or --whatever in a comment\n```",
    "`python -m jax_gan.convert IN OUT [--overwrite]`; `--not-a-command-flag` alone is prose",
    "| flag (`python -m jax_gan.train`, `python -m torch_reference.train`) | what |\n| --- | --- |\n"
    "| `--[no-]download` | x |\n| `--eval-every K` | y |\n",
    "| command | what |\n| --- | --- |\n"
    "| `python -m jax_gan.evaluate RUN` | like `--eval-every` (a trainer's) |\n",
])
def test_other_tools_and_real_flags_are_not_reported(doc_uses, doc):
    assert problems(uses(doc)) == []


def test_a_wrong_python_import_is_reported():
    doc = ("```python\nfrom jax_gan.train import train, no_such_function\nfrom jax_gan.nope import x\n"
           "from nope.deeper import y\nfrom jax_gan import Config, train_step\n```")
    assert len(python_imports(doc, "doc")) == 3


def test_a_broken_link_or_script_is_reported():
    doc = ("[a](docs/nope.md) [b](docs/sweeps.md#no-such-heading) [c](docs/sweeps.md#across-machines) "
           '<img src="docs/images/none.png"> `bash benchmarks/cpu.sh` [d](https://example.org/x)')
    assert len(broken_links(doc, "doc", ROOT)) == 4
