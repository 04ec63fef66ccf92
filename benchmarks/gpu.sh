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
# A backend that hangs (a stuck compile) is recorded as failed after this long.
TIMEOUT="${TIMEOUT:-240}"
# After each run, with $OUT set, its records, table and chart are copied there at
# once, so a run cut short still leaves what it finished.
save() {
  echo "[gpu.sh] $1 done at ${SECONDS} s"
  if [ -n "${OUT:-}" ]; then cp "$RESULTS/$1"* "$OUT"/ 2>/dev/null || true; fi
}

"$PY" - <<'PY'
import jax, torch, flax, optax
print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__,
      "cuda" if torch.cuda.is_available() else "no cuda",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
      "| flax", flax.__version__, "| optax", optax.__version__)
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

# 1. Full float32 ("highest": no TF32 anywhere), every GPU backend but the slow tutorial loader.
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision highest --batch-sizes "$BATCHES" \
  --backends torch-eager,torch-compile,torch-compile-cudagraphs,jax-jit,jax-scan,jax-scan-threefry \
  $EXTRA --parallel-start --timeout "$TIMEOUT" \
  --json "$RESULTS/gpu-float32.json" || echo "some backend failed; see the table"
save gpu-float32
# 2. The frameworks' default precision (TF32 matmuls on Ampere and later).
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision default --batch-sizes "$ENDS" \
  --backends torch-eager,torch-compile-cudagraphs,jax-scan $EXTRA --parallel-start --timeout "$TIMEOUT" \
  --json "$RESULTS/gpu-tf32.json" || echo "some backend failed; see the table"
save gpu-tf32
# 3. The tutorial's own data pipeline: CPU-bound per-image PIL work, so fewer steps.
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision highest --batch-sizes "$ENDS" \
  --backends torch-tutorial,torch-eager,jax-scan --steps 20 --repeats 5 --parallel-start --timeout "$TIMEOUT" \
  --json "$RESULTS/gpu-tutorial-loader.json" || echo "some backend failed; see the table"
save gpu-tutorial-loader
# 4. Many runs as one program: jax_gan.sweep's population, member steps per second
# (its 'tutorial recipe' column is the projected time of 200 epochs for every member at once).
if [ "${QUICK:-0}" = 1 ]; then POPS="1,4"; else POPS="1,8,64,256"; fi
"$PY" -m benchmarks.throughput --device "$DEVICE" --precision highest --batch-sizes 64 \
  --backends jax-scan,jax-sweep --populations "$POPS" $EXTRA --repeats 3 --timeout "$TIMEOUT" \
  --json "$RESULTS/gpu-sweep.json" || echo "some backend failed; see the table"
save gpu-sweep
# 5. The trainer end to end: 200 epochs (the recipe's epoch count, so its per-epoch
# logging, sample grids and checkpoints) on the offline 5,000-digit sample.
if [ "${QUICK:-0}" = 1 ]; then EPOCHS=1; else EPOCHS=200; fi
RUN_DIR="$(mktemp -d)"
start=$SECONDS
timeout "$TIMEOUT" "$PY" -m jax_gan.train --dataset mnist-sample --epochs "$EPOCHS" --quiet \
  --out-dir "$RUN_DIR/jax_gan" > "$RESULTS/gpu-train.log" 2>&1 || echo "jax_gan.train failed; see gpu-train.log"
echo "python -m jax_gan.train --dataset mnist-sample --epochs $EPOCHS: $((SECONDS - start)) s wall" \
  | tee -a "$RESULTS/gpu-train.log"
cp "$RUN_DIR/jax_gan/samples.png" "$RESULTS/gpu-train-samples.png" 2>/dev/null || true
save gpu-train
