"""JAX vs the PyTorch reference, numerically: `pytest parity_tests`, `python -m parity_tests.report`."""
