#!/usr/bin/env bash
# Run the kernel tests (Triton interpreter) and the sm_90 compile report under another Triton release,
# without a GPU. A release other than the venv's is installed into an overlay folder that shadows the venv's triton
# through PYTHONPATH; the venv itself is left untouched.
#
#   benchmarks/check_triton_version.sh 3.6.0 2.2.6     # triton version, numpy version for the overlay
#
# Triton 3.6's interpreter converts 1-element arrays with int(), which numpy >= 2.3 rejects, so the
# overlay carries an older numpy too. Writes benchmarks/aot_sm90_triton-VERSION.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: $0 TRITON_VERSION [NUMPY_VERSION]}"
numpy_version="${2:-}"
overlay=".cache/triton-$version"
python=.venv/bin/python

installed=$("$python" -c "import triton; print(triton.__version__)")
if [ "$version" != "$installed" ]; then
  if [ ! -d "$overlay/triton" ]; then
    packages=("triton==$version")
    [ -n "$numpy_version" ] && packages+=("numpy==$numpy_version")
    "$python" -m pip install -q --no-deps --target "$overlay" "${packages[@]}"
  fi
  export PYTHONPATH="$PWD/$overlay"
fi
"$python" -c "import triton, numpy; print('triton', triton.__version__, 'numpy', numpy.__version__)"

.venv/bin/pytest -p no:cacheprovider -q tests/kernels tests/modeling/test_loss_module.py
report="benchmarks/aot_sm90_triton-$version.txt"
{
  echo "# python -m hybrid_repro.kernels.infonce_aot with triton $version (sm_90, no GPU): ptxas resources per launch"
  "$python" -W ignore -m hybrid_repro.kernels.infonce_aot
} > "$report.tmp"
mv "$report.tmp" "$report"
echo "wrote $report"
