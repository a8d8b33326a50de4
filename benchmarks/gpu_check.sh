#!/usr/bin/env bash
# What to measure on a lent H100/H200, in two commands of at most 480 s each, ordered by value:
#   part 1: the kernel's GPU tests (float64 rounding bounds, determinism, 65536 memory) and bench-kernel's
#           bf16 forward+backward at B = N = 16384 and 65536 (d = 768) against the eager bf16 and fp32 losses and
#           inf-cl, then the symmetric cell at 16384 with memeff;
#   part 2: the torch.compile baselines at 16384, bf16 and fp32 cells at 4096 and 16384 (forward and
#           forward+backward), and the demo's hybrid run trained with loss.impl triton and with torch.
# Each step runs under its own limit. After every step all results so far are packed into one archive,
# OUT_DIR/gpu_check_part<PART>.tar.gz (written atomically), so a step that times out keeps what finished before it
# and the device tool brings back one file. Commit the unpacked archive under benchmarks/gpu_check/.
#
#   GPU_CHECK_REVISION=<commit> benchmarks/gpu_check.sh PART [OUT_DIR]
#       OUT_DIR defaults to $OUT when set (the device), else benchmarks/; the revision is recorded in summary.json
#       (the device's copy of the tree has no git history to read it from).
#   GPU_CHECK_DRY_RUN=1 benchmarks/gpu_check.sh PART OUT_DIR
#       CPU rehearsal of the same steps with tiny shapes; tests/test_gpu_check.py runs it in a virtual environment
#       holding only torch, triton, numpy and the carried wheels, so a missing import fails there, not on the loan.
#
# Python: $PYTHON (default python3) with torch, triton and numpy (the GPU image: torch 2.11, triton 3.6). Everything
# else it imports travels as wheels in .whl/ (or $GPU_CHECK_WHEELS): fetch them with benchmarks/gpu_wheels.sh, and
# name .whl in the device call's carry list. The package is laid out from this checkout into a throwaway folder
# exactly as its pyproject.toml installs it (kernels/ as hybrid_repro.kernels), without building anything.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: benchmarks/gpu_check.sh PART [OUT_DIR]  (PART: 1 or 2)}
[[ "$part" == 1 || "$part" == 2 ]] || { echo "PART must be 1 or 2, got $part" >&2; exit 2; }
default_out=benchmarks
[ -n "${OUT:-}" ] && default_out="$OUT"
out=$(mkdir -p "${2:-$default_out}" && cd "${2:-$default_out}" && pwd)
PYTHON=${PYTHON:-python3}
wheels_dir=${GPU_CHECK_WHEELS:-.whl}
dry_run=${GPU_CHECK_DRY_RUN:-0}
budget_s=480
started_all=$(date +%s)
scratch=$(mktemp -d)
work=$(mktemp -d .gpu_check.XXXXXX)  # training outputs must lie inside the repository; removed at exit
trap 'rm -rf "$scratch" "$work"' EXIT
results="$work/gpu_check_part$part"  # relative, inside the project: where the package writes its outputs
site="$scratch/site"
mkdir -p "$results" "$site"
archive="$out/gpu_check_part$part.tar.gz"
failures=0

pack() {  # every result so far into one archive, replaced atomically
  tar -czf "$archive.tmp" -C "$work" "gpu_check_part$part" && mv "$archive.tmp" "$archive"
}

step() {  # step NAME LIMIT_S COMMAND...: run under its limit, log to NAME.log, record status and seconds, pack
  local name=$1 limit=$2 started status
  shift 2
  started=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$results/$name.log" 2>&1
  status=$?
  echo "{\"step\": \"$name\", \"limit_s\": $limit, \"exit_status\": $status, \"seconds\": $(( $(date +%s) - started ))}" \
    >> "$results/steps.jsonl"
  tail -n 3 "$results/$name.log"
  [ "$status" -eq 0 ] || failures=$((failures + 1))
  pack
}

: > "$results/steps.jsonl"
export PYTHONPATH="$site"
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
py=("$PYTHON" -P)  # -P: the checkout's hybrid_repro/ (without kernels/) never shadows the laid-out package
bench=("${py[@]}" -m hybrid_repro.cli bench-kernel --no-plot)

# The carried wheels, then the package laid out as pyproject.toml's package-dir mapping installs it (by copy).
export GPU_CHECK_SITE="$site" GPU_CHECK_WHEEL_DIR="$wheels_dir" PYTHON
step install 60 bash -c 'set -e; shopt -s nullglob; wheels=("$GPU_CHECK_WHEEL_DIR"/*.whl)
  [ "${#wheels[@]}" -gt 0 ] || { echo "no wheels in $GPU_CHECK_WHEEL_DIR: run benchmarks/gpu_wheels.sh first"; exit 2; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$GPU_CHECK_SITE" "${wheels[@]}"
  cp -r hybrid_repro "$GPU_CHECK_SITE/hybrid_repro"; cp -r kernels "$GPU_CHECK_SITE/hybrid_repro/kernels"'
[ "$failures" -eq 0 ] || { echo "gpu_check: the install step failed; see $archive" >&2; exit 2; }
step env 20 "${py[@]}" -m hybrid_repro.cli env
if [ "$dry_run" = 1 ]; then
  sizes_goal=64 sizes_small=32 dims=32 timing=(--warmup-ms 1 --rep-ms 2) steps=3
  export TRITON_INTERPRET=1
else
  sizes_goal=16384,65536 sizes_small=4096,16384 dims=768 timing=() steps=600
fi
tests=("${py[@]}" -m pytest --noconftest -p no:cacheprovider -q tests/kernels/test_infonce_gpu.py -m "gpu and not slow"
       --junitxml="$results/gpu_tests.xml")
if [ "$part" = 1 ]; then
  step gpu_tests 120 "${tests[@]}"
  step bench_bf16 150 "${bench[@]}" --sizes "${sizes_goal}" --dims "$dims" --dtypes bf16 --modes fwd+bwd \
    --providers triton,torch-bf16,torch-fp32,inf-cl "${timing[@]}" --out "$results/bench-bf16"
  step bench_symmetric 60 "${bench[@]}" --sizes "${sizes_goal%%,*}" --dims "$dims" --dtypes bf16 --modes fwd+bwd \
    --symmetric --providers triton,torch-bf16,memeff "${timing[@]}" --out "$results/bench-symmetric"
else
  step bench_compile 150 "${bench[@]}" --sizes "${sizes_goal%%,*}" --dims "$dims" --dtypes bf16 --modes fwd+bwd \
    --providers torch-compile-bf16,torch-compile-fp32 "${timing[@]}" --out "$results/bench-compile"
  step bench_small 90 "${bench[@]}" --sizes "$sizes_small" --dims "$dims" --dtypes bf16,fp32 --modes fwd,fwd+bwd \
    --providers triton,torch-bf16,torch-fp32,torch-chunked-fp32 "${timing[@]}" --out "$results/bench-small"
  step training 120 "${py[@]}" benchmarks/gpu_training_check.py --out "$results" --work "$work" \
    --impls "$([ "$dry_run" = 1 ] && echo torch || echo triton,torch)" --max-steps "$steps"
fi
echo "{\"part\": $part, \"revision\": \"${GPU_CHECK_REVISION:-unknown}\", \"budget_s\": $budget_s, \"seconds\": $(( $(date +%s) - started_all )), \"failed_steps\": $failures}" \
  > "$results/summary.json"
pack
echo "gpu_check part $part: $failures step(s) failed; results in $archive"
[ "$failures" -eq 0 ]
