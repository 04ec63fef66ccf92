"""The benchmark harness runs end to end (no timing assertions)."""

import json

import pytest

from benchmarks import throughput
from benchmarks.backends import CPU_BACKENDS
from benchmarks.roofline import step_gemms, train_step_flops
from gan_core.config import Config

pytest.importorskip("torch")


def test_flop_count_by_hand():
    # Per image: 2 x (G fwd 291,840 + D fwd 266,496 + D dX 266,496 + G dW 291,840 + G dX 266,240
    #                 + 2 x (D fwd 266,496 + D dW 266,496 + D dX 65,792)) = 5,160,960.
    assert train_step_flops(Config(batch_size=1)) == 5_160_960
    assert train_step_flops(Config(batch_size=64)) == 64 * 5_160_960
    # 6 matmuls for G's forward and D's, 3 for D's input-gradients, 5 for G's
    # gradients; D's step: 3 forward, 3 weight-gradients, 2 input-gradients.
    assert len(step_gemms(Config())) == 22


@pytest.mark.slow
def test_quick_run_over_all_cpu_backends(tmp_path):
    out = tmp_path / "bench.json"
    # One thread each (the harness's --threads): a second one mostly spin-waits on a busy
    # 2-core machine. Workers start side by side (--parallel-start): their compiles overlap.
    code = throughput.main(["--device", "cpu", "--quick", "--batch-sizes", "64", "--threads", "1",
                            "--parallel-start", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    records = {r["backend"]: r for r in result["records"]}
    assert set(records) == set(CPU_BACKENDS)
    for r in records.values():
        assert {"backend", "batch_size", "steps_per_s", "images_per_s", "first_step_s"} <= set(r)
        assert r["steps_per_s"] > 0 and r["images_per_s"] == pytest.approx(64 * r["steps_per_s"])
        assert 0 < r["fraction_of_step_gemms"] and 0 < r["fraction_of_matmul_ceiling"]
    assert set(result["ceiling"]["step_gemms"]["64"]) == {"jax_gflops", "torch_gflops"}
    assert out.with_suffix(".md").read_text().count("| 64 |") == len(CPU_BACKENDS)
    assert out.with_suffix(".png").stat().st_size > 0


def test_bad_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        throughput.main(["--backends", "tensorflow"])
    assert info.value.code == 2 and "unknown backend" in capsys.readouterr().err


def test_a_backend_that_hangs_is_recorded_as_failed(tmp_path):
    # No backend can import its framework and compile within 10 ms: each must be
    # reported as failed, with the reason, and the run must still write its table.
    out = tmp_path / "bench.json"
    code = throughput.main(["--device", "cpu", "--quick", "--batch-sizes", "64", "--timeout", "0.01",
                            "--backends", "torch-eager,jax-scan", "--json", str(out)])
    assert code == 1
    records = json.loads(out.read_text())["records"]
    assert [r["backend"] for r in records] == ["torch-eager", "jax-scan"]
    for r in records:
        assert "steps_per_s" not in r and r["error"].startswith("timed out")
    assert out.with_suffix(".md").read_text().count("failed: timed out") == 2


@pytest.mark.slow
def test_sweep_backend_records_population_scaling(tmp_path):
    out = tmp_path / "sweep.json"
    code = throughput.main(["--device", "cpu", "--quick", "--batch-sizes", "64", "--threads", "1",
                            "--backends", "jax-scan,jax-sweep", "--populations", "1,3", "--json", str(out)])
    assert code == 0
    records = {r["backend"]: r for r in json.loads(out.read_text())["records"]}
    assert set(records) == {"jax-scan", "jax-sweep@1", "jax-sweep@3"}
    assert records["jax-scan"]["population"] == 1
    sweep3 = records["jax-sweep@3"]
    assert sweep3["population"] == 3
    assert sweep3["member_steps_per_s"] == pytest.approx(3 * sweep3["steps_per_s"])
    assert sweep3["member_steps_vs_jax-scan"] > 0
    assert "| jax-sweep@3 | 64 |" in out.with_suffix(".md").read_text()
