#!/usr/bin/env bash
# The first contact with a GPU, in one call: on a machine with an NVIDIA GPU,
# its driver and the CUDA 12 or 13 libraries (no Rust toolchain needed there),
# checks the CUDA backend and prints one JSON object:
#   - parity: the golden fixtures and random shapes (H = 12 to 280) on the GPU
#     against the CPU backend (host/tests/cuda_emulated.rs, its --ignored tests);
#   - bench: `lflow bench train --device cuda` at H = 64, 128, 280, batch 256
#     (trials/s, ms per step, launches and graph replays per step);
#   - training: Lorenz trained with configs/lorenz.toml for a fixed number of
#     epochs on the GPU and on the CPU, and the largest difference of their
#     per-epoch training losses.
# Every stage runs under `timeout` (parity 120 s, each bench 30 s, each
# training 60 s), so a hung kernel still leaves a JSON answer.
# The bundle's binaries need a glibc no older than the building machine's.
#
#   tools/gpu-check.sh --build [DIR]   on a machine with Rust: build the bundle
#                                      (default DIR: target/gpu-check), copy it over
#   DIR/gpu-check.sh [DIR]             on the GPU machine: run it (about 3 minutes)
#
# Environment: LD_LIBRARY_PATH to the CUDA libraries if they are not on the
# default path (e.g. a PyTorch install's site-packages/nvidia/*/lib);
# GPU_CHECK_EPOCHS (default 40) for the training comparison; LFLOW_CUDA_GRAPHS=0
# to run every stage with each kernel launched instead of replayed graphs.
set -uo pipefail

if [ "${1:-}" = "--build" ]; then
  set -e
  cd "$(dirname "$0")/.."
  out="${2:-target/gpu-check}"
  mkdir -p "$out/shared" "$out/configs"
  cargo build --release -q -p lflow-host
  tests=$( (cargo test --release -q -p lflow-host --test cuda_emulated --no-run --message-format=json 2>/dev/null || true) |
    (grep '"name":"cuda_emulated"' || true) | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -x "$tests" ] || { echo "error: the cuda_emulated test binary was not built" >&2; exit 1; }
  shared="${LFLOW_SHARED:-../shared}"
  cp target/release/lflow "$out/lflow"
  cp "$tests" "$out/cuda_parity"
  cp tools/gpu-check.sh "$out/gpu-check.sh"
  cp configs/lorenz.toml "$out/configs/"
  cp -r "$shared/golden" "$out/shared/"
  echo "bundle: $out ($(du -sh "$out" | cut -f1)); on the GPU machine: $out/gpu-check.sh $out"
  exit 0
fi

dir="${1:-$(dirname "$0")}"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
epochs="${GPU_CHECK_EPOCHS:-40}"
json_string() { printf '"%s"' "$(printf '%s' "$1" | tr '\n\r\t' '   ' | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# Each stage is bounded, so the whole check answers within about 5 minutes.
bounded() { timeout --kill-after=10 "$@"; }

# The device.
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
[ -n "$gpu" ] || gpu="unknown (nvidia-smi not found)"

# Parity: the real-GPU tests, one at a time.
parity_log="$work/parity.log"
start=$(date +%s)
LFLOW_SHARED="$dir/shared" bounded 120 "$dir/cuda_parity" --ignored --test-threads 1 --nocapture >"$parity_log" 2>&1
parity_ok=$?
parity_secs=$(($(date +%s) - start))
parity_lines=$(grep -E -A1 'launches;|worst gradient|logrates|panicked|^test .* \.\.\. |test result' "$parity_log" |
  grep -v '^--$' | head -60)

# Bench.
bench=""
for h in 64 128 280; do
  line=$(bounded 30 "$dir/lflow" bench train --hidden "$h" --batch 256 --device cuda --json 2>"$work/bench.err")
  if [ -z "$line" ]; then line="{\"hidden\":$h,\"error\":$(json_string "$(cat "$work/bench.err")")}"; fi
  bench="${bench:+$bench,}$line"
done

# Training: the same recipe and seed on the GPU and on the CPU.
"$dir/lflow" generate lorenz --out "$work/lorenz.safetensors" >/dev/null 2>&1
train() { # device folder
  local s
  s=$(date +%s)
  bounded 60 "$dir/lflow" train --data "$work/lorenz.safetensors" --config "$dir/configs/lorenz.toml" \
    --epochs "$epochs" --device "$1" --out "$work/$2" --quiet >"$work/$2.log" 2>&1
  local rc=$?
  echo "$rc $(($(date +%s) - s))"
}
read -r gpu_rc gpu_secs < <(train cuda gpu)
read -r cpu_rc cpu_secs < <(train cpu cpu)
# Largest relative difference of the per-epoch training loss (column 2 of
# metrics.csv), over the epochs both runs have; null when there are none.
loss_diff=$(awk -F, '
  FNR == 1 { file++; next }
  file == 1 { g[$1] = $2; next }
  ($1 in g) && $2 != "" && $2 + 0 != 0 { d = (g[$1] - $2) / $2; if (d < 0) d = -d; if (d > m) m = d; k++ }
  END { if (k == 0 || m != m || m > 1e300) print "null"; else printf "%.3e", m }
' "$work/gpu/metrics.csv" "$work/cpu/metrics.csv" 2>/dev/null)
[ -n "$loss_diff" ] || loss_diff=null
final() { # the last epoch's training loss, or null
  local v
  v=$(tail -1 "$work/$1/metrics.csv" 2>/dev/null | cut -d, -f2)
  case "$v" in '' | train_loss | *[!0-9eE.+-]*) echo null ;; *) echo "$v" ;; esac
}

printf '{"gpu":%s,' "$(json_string "$gpu")"
printf '"parity":{"passed":%s,"timed_out":%s,"seconds":%s,"report":%s},' \
  "$([ $parity_ok = 0 ] && echo true || echo false)" "$([ $parity_ok = 124 ] && echo true || echo false)" \
  "$parity_secs" "$(json_string "$parity_lines")"
printf '"bench":[%s],' "$bench"
printf '"training":{"epochs":%s,"gpu":{"exit":%s,"seconds":%s,"final_loss":%s},' "$epochs" "$gpu_rc" "$gpu_secs" \
  "$(final gpu)"
printf '"cpu":{"exit":%s,"seconds":%s,"final_loss":%s},"max_rel_loss_diff":%s' "$cpu_rc" "$cpu_secs" \
  "$(final cpu)" "$loss_diff"
if [ "$gpu_rc" != 0 ]; then printf ',"gpu_error":%s' "$(json_string "$(tail -5 "$work/gpu.log")")"; fi
printf '}}\n'
