"""The curated mutants still fit the code: each edit applies once and compiles, and each test it names exists.

Running them takes many minutes (`python -m parity_tests.mutants`); this only
catches, in seconds, a mutant left stale by a change to the code or a test.
"""

import ast
import re

import pytest

from parity_tests import mutants, registry


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda mt: mt.name)
def test_mutant_applies_to_the_current_code(mutant, tmp_path):
    (tmp_path / mutant.path).parent.mkdir(parents=True)
    (tmp_path / mutant.path).write_text((mutants.ROOT / mutant.path).read_text())
    mutant.apply(tmp_path)  # StaleMutant if an old text is not there exactly once.
    mutated = (tmp_path / mutant.path).read_text()
    assert mutated != (mutants.ROOT / mutant.path).read_text()
    compile(mutated, mutant.path, "exec")


def _test_ids() -> set[str]:
    ids = {t for mt in mutants.MUTANTS for t in mt.tests}
    return ids | {t for by_function in mutants.TOOL_TESTS.values() for tests in by_function.values()
                  for t in tests}


@pytest.mark.parametrize("test_id", sorted(_test_ids()))
def test_named_tests_exist(test_id):
    path, _, name = test_id.partition("::")
    source = mutants.ROOT / path
    assert source.is_file(), path
    if not name:
        return
    function, param = re.fullmatch(r"(\w+)(?:\[(.*)\])?", name).groups("")
    defined = {node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert function in defined, test_id
    if function == "test_check":
        assert param in registry.BY_ID, test_id
