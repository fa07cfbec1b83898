#!/usr/bin/env bash
# The whole test suite. Installs what it needs when missing, then runs
# formatting, lints, every test (also with `fast-math`), the no_std builds
# for the Cortex-M target, and compiles the benchmarks and the fuzz target.
# Then the Python package: its wheel, pytest and the quickstart notebook.
#   tools/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Run a cargo test command, keeping its output for the closing tally.
run_tests() { "$@" 2>&1 | tee -a "$log"; }

step "toolchain"
target=thumbv7em-none-eabihf
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
# plotters draws text through fontconfig: its headers at build time, a font at run time.
if ! pkg-config --exists fontconfig 2>/dev/null || ! ls /usr/share/fonts/truetype/dejavu >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq pkg-config libfontconfig1-dev fonts-dejavu-core
fi
# NLB interop (feature nlb) reads and writes HDF5 through the system's libhdf5.
if ! pkg-config --exists hdf5 2>/dev/null && [ ! -e /usr/include/hdf5/serial/hdf5.h ]; then
  apt-get update -qq && apt-get install -y -qq libhdf5-dev
fi
# The firmware tests boot the Cortex-M4F and Cortex-M7 images under QEMU.
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq qemu-system-arm
fi
# The CUDA kernels' compile check: NVRTC, the CUDA headers and ptxas from PyPI
# wheels in a git-ignored folder (about 320 MB); no GPU or driver is needed.
cuda_tools="$PWD/.tools/cuda"
if [ ! -x "$cuda_tools/nvidia/cuda_nvcc/bin/ptxas" ] || [ ! -e "$cuda_tools/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade --target "$cuda_tools" \
    "nvidia-cuda-nvrtc-cu12==12.9.*" "nvidia-cuda-runtime-cu12==12.9.*" "nvidia-cuda-nvcc-cu12==12.9.*"
fi
# CUDA 13's NVRTC and ptxas (about 500 MB): the same kernels must compile with both toolkits.
cuda13_tools="$PWD/.tools/cuda13"
if [ ! -x "$cuda13_tools/nvidia/cu13/bin/ptxas" ] || [ ! -e "$cuda13_tools/nvidia/cu13/lib/libnvrtc.so.13" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade --target "$cuda13_tools" \
    "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-nvcc==13.0.*"
fi
export LD_LIBRARY_PATH="$cuda_tools/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LFLOW_PTXAS="$cuda_tools/nvidia/cuda_nvcc/bin/ptxas"
export LFLOW_REQUIRE_NVRTC=1
if [ ! -d ../shared/golden ] && [ -z "${LFLOW_SHARED:-}" ]; then
  echo "error: ../shared/golden not found (set LFLOW_SHARED to the shared folder)" >&2
  exit 1
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy -p lflow-core -- -D warnings
cargo clippy --workspace --all-targets --features lflow-core/std,lflow-host/cuda-emu,lflow-host/nlb -- -D warnings
cargo clippy -q -p lflow-host --all-targets -- -D warnings  # the default build (no HDF5) too

step "no_std builds for $target (no std dependency may creep in)"
for features in "" fast-math defmt fast-math,defmt wire; do
  echo "features: ${features:-none}"
  cargo build -q -p lflow-core --target "$target" --no-default-features --features "$features"
done

step "firmware: QEMU (Cortex-M7, Cortex-M4F) and STM32H7 builds; panic-never proves no panic path links"
# One target folder per core for every firmware build (here, the QEMU tests, the demo's closed loop).
export CARGO_TARGET_DIR_FIRMWARE="$PWD/target/firmware"
(cd firmware && export CARGO_TARGET_DIR="$CARGO_TARGET_DIR_FIRMWARE" && cargo build -q --release && cargo build -q --release --no-default-features --features stm32h7 \
  && cargo build -q --release --features defmt && cargo build -q --release --no-default-features --features stm32h7,defmt \
  && cargo build -q --release --features panic-never \
  && cargo build -q --release --no-default-features --features stm32h7,panic-never \
  && cargo build -q --release --target "$(rustc -vV | sed -n 's/^host: //p')" \
  && cargo clippy -q --release -- -D warnings && cargo fmt -- --check)
# The Cortex-M4F (mps2-an386): its own target-cpu and 96 KiB RAM limit (the reference
# configuration's builds in every format run in tests/tests/qemu.rs).
m4_flags=$(printf -- '-C\x1flink-arg=-Tlink.x\x1f-C\x1ftarget-cpu=cortex-m4')
(cd firmware && export CARGO_TARGET_DIR="$PWD/../target/firmware-m4" CARGO_ENCODED_RUSTFLAGS="$m4_flags" \
  && cargo build -q --release --target "$target" --no-default-features --features an386,panic-never \
  && cargo clippy -q --release --target "$target" --no-default-features --features an386 -- -D warnings)

step "CUDA kernels: NVRTC to PTX (compute_80, compute_90), ptxas to SASS (sm_80, sm_90), with CUDA 12.9 and 13.0"
LFLOW_EXPECT_CUDA_MAJOR=12 cargo test -q -p lflow-host --test cuda_compile -- --nocapture 2>&1 | grep -v '^$'
LD_LIBRARY_PATH="$cuda13_tools/nvidia/cu13/lib" LFLOW_PTXAS="$cuda13_tools/nvidia/cu13/bin/ptxas" LFLOW_EXPECT_CUDA_MAJOR=13 \
  cargo test -q -p lflow-host --test cuda_compile -- --nocapture 2>&1 | grep -v '^$'

step "tests (the CUDA backend through its CPU emulation, NLB interop against nlb_tools' fixtures)"
run_tests cargo test --workspace --features lflow-core/std,lflow-host/cuda-emu,lflow-host/nlb
if [ "${LFLOW_TEST_CUDA:-}" = 1 ]; then
  step "the CUDA backend on this machine's GPU (LFLOW_TEST_CUDA=1)"
  run_tests cargo test -p lflow-host --features cuda-emu --test cuda_emulated -- --ignored
fi
step "tests with fast-math"
run_tests cargo test -p lflow-core --features std,fast-math,wire

step "the demo, end to end on a reduced size (README's first command at full size)"
demo_dir=target/demo-test
rm -rf "$demo_dir"
cargo run -q -p lflow-host -- demo --out "$demo_dir" --trials 200 --epochs 4 --samples 4 --threads 2 --quiet \
  --device-trials 2
test -s "$demo_dir/run-streaming/eval.json"
test -s "$demo_dir/run-streaming/plots/latents.png"
# The closed loop through the firmware under QEMU: every bin equal to lflow-core on the host.
grep -q '"mismatches": 0' "$demo_dir/closed_loop.json"
grep -q '"bins": [1-9]' "$demo_dir/closed_loop.json"

step "Python package: the wheel (maturin), its tests (pytest; PBT sweeps on a local Ray), the quickstart notebook (nbclient)"
# A virtual environment in the git-ignored .venv with maturin, numpy, pytest,
# the notebook's packages and Ray Tune (lflow.tune's sweeps) from PyPI; the wheel builds with the dev profile
# (sharing target/ with the builds above) and is installed into it.
venv="$PWD/.venv"
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  python3 -m venv --clear "$venv" || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv --clear "$venv"; }
fi
if ! "$venv/bin/python" -c "import maturin, numpy, pytest, nbclient, nbformat, ipykernel, matplotlib, ray.tune" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9.4,<2" numpy pytest nbclient nbformat ipykernel matplotlib "ray[tune]>=2.9"
fi
rm -rf target/wheels
"$venv/bin/maturin" build --quiet --profile dev --auditwheel skip --features nlb -m python/Cargo.toml --interpreter "$venv/bin/python" --out target/wheels
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/lflow-*.whl
(cd /tmp && "$venv/bin/python" -c "import lflow; print('import lflow', lflow.__version__)")
run_tests env LFLOW_BIN="$PWD/target/debug/lflow" LFLOW_SHARED="${LFLOW_SHARED:-$PWD/../shared}" "$venv/bin/python" -m pytest -q -p no:cacheprovider --color=no python/tests
"$venv/bin/python" - <<'PY'
import nbformat
from nbclient import NotebookClient
nb = nbformat.read("python/examples/quickstart.ipynb", as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3").execute()
text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
assert "bytes; co-bps host" in text, "the notebook did not reach its export cell"
print("python/examples/quickstart.ipynb: executed,", len(nb.cells), "cells")
PY

step "benchmarks and fuzz target compile; tools/gpu-check.sh parses"
bash -n tools/gpu-check.sh
cargo bench -q -p lflow-core --features std --no-run
cargo check -q --manifest-path core/fuzz/Cargo.toml

echo
awk '/^test result:/ || /^[0-9]+ (passed|failed)/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
