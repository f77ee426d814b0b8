#!/usr/bin/env bash
# The GPU check, prepared so that a session with a lent GPU spends its minutes measuring.
#
#   scripts/gpu_check.sh            # from the repository root; ~8 minutes at most
#
# Stages, most important first (each under its own time limit; a failed, timed-out or skipped
# stage is reported and the next one runs; the synthetic data are generated in the background):
#   0. environment: the Python with a CUDA torch, the GPU, triton
#   1. the CUDA tests (compiled recurrence on CUDA = the CPU reference, float64, grads) and the
#      device/loader helpers' tests
#   2. plstm bench --device cuda at the sines, N-MNIST and GRID shapes (ratios to cuDNN nn.LSTM)
#   3. torchrun --nproc-per-node 2 smoke run (NCCL on 2 GPUs; on one GPU: gloo on the CPU,
#      plus NCCL float64 sums on the GPU in one process)
#   4. reproduce nmnist-synthetic --scale smoke (Table 1's offline stand-in; real N-MNIST is
#      not on a machine without network), then one epoch of synthetic N-MNIST and synthetic
#      GRID (Fig. 6c's stand-in) per model: the time per epoch
#   5. the figures: bench table, epoch times, stage status
# Needs --device on train/reproduce (wired by the lead; until then those stages FAIL, reported).
#
# Installs nothing by itself: it needs a Python whose torch sees CUDA and which imports this
# package (PY=..., default .venv/bin/python, as `make install TORCH_SPEC="torch==2.13.0
# --index-url https://download.pytorch.org/whl/cu128"` creates it, or python3). Results go to
# $OUT (the device tool's output folder) when set, else runs/gpu_check.
set -uo pipefail

LIMIT_S=${LIMIT_S:-480}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu rehearses the script's mechanics on a machine without a GPU
OUT_DIR=${OUT:-runs/gpu_check}
RUNS="$OUT_DIR/runs"
mkdir -p "$OUT_DIR" "$RUNS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PY:-}
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
declare -a STATUS=()

left() { echo $((LIMIT_S - SECONDS)); }

# stage NAME SECONDS CMD...: runs CMD under min(SECONDS, time left), logs to $OUT_DIR/NAME.log
stage() {
  local name=$1 want=$2; shift 2
  local budget; budget=$(left)
  (( want < budget )) && budget=$want
  if (( budget < 15 )); then
    STATUS+=("$name: SKIPPED (time limit)"); echo "== $name: skipped, time limit"; return 0
  fi
  echo "== $name (limit ${budget}s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$budget" "$@" 2>&1 | tee "$OUT_DIR/$name.log" | tail -n 25
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - t0))
  if (( rc == 0 )); then STATUS+=("$name: ok (${took}s)")
  elif (( rc == 124 || rc == 137 )); then STATUS+=("$name: TIMED OUT after ${took}s")
  else STATUS+=("$name: FAILED rc=$rc (${took}s), see $OUT_DIR/$name.log"); fi
}

# ---- 0. environment ---------------------------------------------------------------------
if ! "$PY" - "$DEVICE" <<'EOF' 2>&1 | tee "$OUT_DIR/env.log"
import importlib.util, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("triton", importlib.util.find_spec("triton") is not None)
if sys.argv[1] != "cpu" and not torch.cuda.is_available():
    sys.exit("no CUDA device is visible to this torch: set PY to a Python with a CUDA wheel")
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}", torch.cuda.get_device_name(i))
import plstm_repro  # noqa: F401  (the package and its dependencies import)
EOF
then
  echo "gpu_check: the environment is not ready (see above); nothing else was run"
  exit 2
fi
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

# The synthetic datasets are generated on the CPU cores (minutes, once) while the GPU stages
# run; the epoch stages wait for them.
( for ds in synthetic-nmnist synthetic-grid; do
    "$PY" -m plstm_repro download "$ds" --no-progress && \
      "$PY" -m plstm_repro preprocess "$ds" --no-progress
  done ) > "$OUT_DIR/data.log" 2>&1 &
DATA_PID=$!

# ---- 1. tests ---------------------------------------------------------------------------
stage tests 120 "$PY" -m pytest -q -p no:cacheprovider -x tests/test_compiled.py \
  tests/test_device_helpers.py tests/test_loader.py -k "cuda or compiled_ or two_processes or same_batches"

# ---- 2. bench vs cuDNN (the step graphs depend on B and H only: sines and N-MNIST share) --
stage bench 150 "$PY" -m plstm_repro bench --device "$DEVICE" --repeats 3 --out "$OUT_DIR/bench" \
  --shape "sines T=500" --shape N-MNIST --shape "GRID merged"

# ---- 3. two processes -------------------------------------------------------------------
if [[ "$DEVICE" == cpu ]]; then
  stage torchrun-2cpu 60 "$PY" -m torch.distributed.run --nproc-per-node 2 -m plstm_repro \
    train sines --scale smoke --device cpu --no-progress --runs-dir "$RUNS/torchrun"
elif (( GPUS >= 2 )); then
  stage torchrun-2gpu 60 "$PY" -m torch.distributed.run --nproc-per-node 2 -m plstm_repro \
    train sines --scale smoke --device cuda --no-progress --runs-dir "$RUNS/torchrun"
else  # one GPU: two ranks cannot each have their own; gloo on the CPU, NCCL checked alone
  stage torchrun-2cpu 60 "$PY" -m torch.distributed.run --nproc-per-node 2 -m plstm_repro \
    train sines --scale smoke --device cpu --no-progress --runs-dir "$RUNS/torchrun"
  cat > "$OUT_DIR/nccl_check.py" <<'EOF'
import torch.distributed as td
from plstm_repro import distributed as D
dev = D.resolve_device("cuda")  # cuda:LOCAL_RANK
td.init_process_group(D.backend_for(dev), device_id=dev)
sums = D.reduce_values(td, 1e17, 1.0, device=dev)
assert sums == (1e17, 1.0), sums
print("nccl float64 sums on", dev, sums)
td.destroy_process_group()
EOF
  stage nccl-1gpu 40 "$PY" -m torch.distributed.run --nproc-per-node 1 "$OUT_DIR/nccl_check.py"
fi

# ---- 4. one epoch per model on the device -----------------------------------------------
stage data-ready 120 bash -c "while kill -0 $DATA_PID 2>/dev/null; do sleep 2; done; tail -n 3 '$OUT_DIR/data.log'"
stage reproduce-smoke 60 "$PY" -m plstm_repro reproduce nmnist-synthetic --scale smoke \
  --device "$DEVICE" --no-progress --runs-dir "$RUNS/reproduce"
for model in phased bn lstm; do
  stage "epoch-nmnist-$model" 60 "$PY" -m plstm_repro train synthetic-nmnist --model "$model" \
    --scale quick --set train.epochs=1 --device "$DEVICE" --no-progress --runs-dir "$RUNS"
done
for model in phased bn lstm; do
  stage "epoch-grid-$model" 50 "$PY" -m plstm_repro train synthetic-grid --model "$model" \
    --scale quick --set train.epochs=1 --device "$DEVICE" --no-progress --runs-dir "$RUNS"
done
pkill -P "$DATA_PID" 2>/dev/null; kill "$DATA_PID" 2>/dev/null || true  # the generator, if still running

# ---- 5. figures -------------------------------------------------------------------------
echo
echo "================ gpu_check summary ($SECONDS s) ================"
"$PY" - "$OUT_DIR" "$RUNS" <<'EOF'
import json, sys
from pathlib import Path
out, runs = Path(sys.argv[1]), Path(sys.argv[2])
bench = out / "bench" / "bench.json"
if bench.exists():
    data = json.loads(bench.read_text())
    print("bench on", data.get("device"), "| ratios to nn.LSTM (cuDNN), medians")
    for r in data["results"]:
        cells = "  ".join(f"{m} {v['median_ms']:.1f} ms ({v['ratio']:.2f}x)"
                          for m, v in r["methods"].items())
        print(f"  {r['shape']:<12} {r['model']:<12} {r['mode']:<6} {cells}")
try:
    from plstm_repro.tracking import MlflowTracker
    tracker = MlflowTracker(root=runs)
    for exp in ("train-synthetic-nmnist", "train-synthetic-grid"):
        for r in tracker.runs(exp):
            m = r.data.metrics
            keys = [k for k in ("epoch_time_s", "test_acc", "video/test_loss", "test_loss")
                    if k in m]
            print(f"  {exp:<24} {r.data.params.get('model.name', r.info.run_name):<14} "
                  f"{r.info.status:<9} " + "  ".join(f"{k} {m[k]:.4g}" for k in keys))
except Exception as e:  # the figures above stand on their own
    print("epoch times unavailable:", type(e).__name__, e)
EOF
printf '%s\n' "${STATUS[@]}"
