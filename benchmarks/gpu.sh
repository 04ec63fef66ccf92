#!/usr/bin/env bash
# The whole GPU comparison in one go (aimed at under 8 minutes on one H100/H200).
# Run from the repository root:  bash benchmarks/gpu.sh
# Results land in benchmarks/results/gpu-*.{json,md,png} (and in $OUT when set).
# QUICK=1 DEVICE=cpu bash benchmarks/gpu.sh  smoke-tests the script without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)" PYTHONUNBUFFERED=1
DEVICE="${DEVICE:-gpu}"
RESULTS="${RESULTS:-benchmarks/results}"
if [ "${QUICK:-0}" = 1 ]; then
  EXTRA="--quick"; BATCHES="64"; ENDS="64"
else
  EXTRA="--steps 200 --repeats 5"; BATCHES="64,256,1024"; ENDS="64,1024"
fi
PY="${PYTHON:-$(command -v python3 || command -v python)}"
mkdir -p "$RESULTS"

"$PY" - <<'PY'
import jax, torch, flax, optax
print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__,
      "cuda" if torch.cuda.is_available() else "no cuda",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
      "| flax", flax.__version__, "| optax", optax.__version__)
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

# 1. Full float32 ("highest": no TF32 anywhere), every GPU backend but the slow seed loader.
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision highest --batch-sizes "$BATCHES" \
  --backends torch-eager,torch-compile,torch-compile-cudagraphs,jax-jit,jax-scan,jax-scan-threefry \
  $EXTRA --parallel-start \
  --json "$RESULTS/gpu-float32.json" || echo "some backend failed; see the table"
# 2. The frameworks' default precision (TF32 matmuls on Ampere and later).
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision default --batch-sizes "$ENDS" \
  --backends torch-eager,torch-compile-cudagraphs,jax-scan $EXTRA --parallel-start \
  --json "$RESULTS/gpu-tf32.json" || echo "some backend failed; see the table"
# 3. The tutorial's own data pipeline: CPU-bound per-image PIL work, so fewer steps.
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision highest --batch-sizes "$ENDS" \
  --backends torch-seed,torch-eager,jax-scan --steps 20 --repeats 5 --parallel-start \
  --json "$RESULTS/gpu-seed-loader.json" || echo "some backend failed; see the table"

# With $OUT set, a copy of the records, the tables and one chart goes there too.
if [ -n "${OUT:-}" ]; then cp "$RESULTS"/gpu-*.json "$RESULTS"/gpu-*.md "$RESULTS"/gpu-float32.png "$OUT"/; fi
