#!/usr/bin/env bash
# Download the wheels of benchmarks/gpu_wheels.txt (what the GPU check imports beyond torch, triton and numpy) for
# the GPU image's Python (CPython 3.12, manylinux x86_64), or for another CPython version, into DEST:
#   benchmarks/gpu_wheels.sh [DEST] [PYTHON_VERSION]        # defaults: .whl 3.12
# .whl/ is ignored by git; the device call names it in its carry list (README, "The fused InfoNCE kernel").
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
version=${2:-3.12}
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
platforms=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
           manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
mkdir -p "$dest"
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -d "$dest" -r benchmarks/gpu_wheels.txt
echo "wheels for CPython $version in $dest: $(ls "$dest"/*.whl | wc -l) files, $(du -sh "$dest" | cut -f1)"
