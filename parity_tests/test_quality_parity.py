"""The JAX port's samples are as good as the reference's: mean FID, coverage and class entropy
over three seeds each differ by no more than the seed-to-seed spread."""

import pytest

from parity_tests import quality_checks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")  # The scorer trains its classifier here once.
    return data_dir, quality_checks.quality_runs(data_dir)


@pytest.mark.slow
@pytest.mark.statistical
@pytest.mark.parametrize("metric", quality_checks.METRICS)
def test_quality_parity(runs, metric):
    data_dir, records = runs
    [check] = [c for c in quality_checks.check_quality(data_dir, runs=records) if metric in c.name]
    assert check.passed, f"{check.name}: {check.measured:.3g} > {check.tolerance:.3g}; {check.note}"
