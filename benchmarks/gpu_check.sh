#!/usr/bin/env bash
# Everything to measure on an H100/H200 in one call (about 6-8 minutes on an H200):
#   1. the kernel's GPU tests (pytest -m gpu tests/kernels): accuracy vs the same-dtype PyTorch error, bitwise
#      determinism, the training-curve match, offsets past 2^31;
#   2. bench-kernel at the goal shapes (B = N = 4096, 16384, 65536; d = 768; bf16 and fp32; every provider, with
#      torch-compile in a step of its own so a slow compile cannot cost the rest);
#   3. the demo's hybrid run trained with loss.impl triton and with torch (throughput and final loss).
# Every result lands under OUT_DIR as JSON (plus logs); commit that folder under benchmarks/.
#
#   benchmarks/gpu_check.sh [OUT_DIR]      # default: $OUT/gpu_check when $OUT is set, else benchmarks/gpu_check
#   GPU_CHECK_DRY_RUN=1 benchmarks/gpu_check.sh OUT_DIR
#       CPU rehearsal of the same steps with tiny shapes (kernels through the Triton interpreter, a few training
#       steps with loss.impl torch); the test suite runs it so the script does not rot.
#
# Python: $PYTHON (default python3) must hold torch, triton, transformers, click, pyyaml, numpy, pytest and
# hypothesis (the GPU image has them: torch 2.11, triton 3.6). The project itself is installed from this checkout
# into a throwaway folder (no index, no build isolation). Packages the GPU image lacks travel as wheels in .whl/:
# pydantic, pydantic-core, annotated-types, typing-inspection (download them here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 \
#     typing-inspection==0.4.5
# and carry .whl). Python runs with -P so that the checkout's hybrid_repro/ folder never shadows the installed one.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
dry_run=${GPU_CHECK_DRY_RUN:-0}
default_out=benchmarks/gpu_check
[ -n "${OUT:-}" ] && default_out="$OUT/gpu_check"
out=$(mkdir -p "${1:-$default_out}" && cd "${1:-$default_out}" && pwd)
site=$(mktemp -d)
work=$(mktemp -d .gpu_check.XXXXXX)  # training outputs must lie inside the repository; removed at exit
trap 'rm -rf "$site" "$work"' EXIT
failures=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, log to OUT/NAME.log, record status and seconds
  local name=$1 limit=$2 started status
  shift 2
  started=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  status=$?
  echo "{\"step\": \"$name\", \"exit_status\": $status, \"seconds\": $(( $(date +%s) - started ))}" >> "$out/steps.jsonl"
  tail -n 3 "$out/$name.log"
  [ "$status" -eq 0 ] || failures=$((failures + 1))
}

wheels=()
[ -d .whl ] && wheels=(.whl/*.whl)
"$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" "${wheels[@]}" . \
  || { echo "could not install the project into $site" >&2; exit 2; }
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
py=("$PYTHON" -P)
: > "$out/steps.jsonl"

step env 60 "${py[@]}" -m hybrid_repro.cli env
if [ "$dry_run" = 1 ]; then
  # On CPU the GPU tests skip themselves; collecting them still checks that they import and select.
  step gpu_tests 300 "${py[@]}" -m pytest -m gpu tests/kernels -q -p no:cacheprovider --junitxml="$out/gpu_tests.xml"
  step bench_fp32 300 "${py[@]}" -m hybrid_repro.cli bench-kernel --sizes 64 --dims 32 --dtypes fp32 \
    --providers triton,torch,torch-chunked --warmup-ms 1 --rep-ms 2 --out "$out/bench-fp32"
  step training 600 "${py[@]}" benchmarks/gpu_training_check.py --out "$out" --work "$work" --impls torch --max-steps 3
else
  step gpu_tests 240 "${py[@]}" -m pytest -m gpu tests/kernels -q -p no:cacheprovider --junitxml="$out/gpu_tests.xml"
  for dtype in bf16 fp32; do
    step "bench_$dtype" 120 "${py[@]}" -m hybrid_repro.cli bench-kernel --sizes 4096,16384,65536 --dims 768 \
      --dtypes "$dtype" --providers triton,torch,torch-chunked,inf-cl,memeff --out "$out/bench-$dtype"
  done
  step bench_compile 120 "${py[@]}" -m hybrid_repro.cli bench-kernel --sizes 4096,16384,65536 --dims 768 \
    --dtypes bf16,fp32 --providers torch-compile --out "$out/bench-compile"
  step training 180 "${py[@]}" benchmarks/gpu_training_check.py --out "$out" --work "$work" --impls triton,torch --max-steps 600
fi
echo "gpu_check: $failures step(s) failed; results in $out"
[ "$failures" -eq 0 ]
