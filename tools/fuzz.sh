#!/usr/bin/env bash
# Fuzz `from_blob` followed by `step`, and the device's wire-frame decoder,
# each for a bounded time (not part of CI).
#   tools/fuzz.sh [SECONDS]      default 120 per target
# Installs cargo-fuzz when missing, seeds the corpus with valid blobs of every
# format, runs libFuzzer on the nightly toolchain, and prints executions and
# crashes found.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

corpus=core/fuzz/corpus/blob_step
mkdir -p "$corpus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for fmt in f32 f16 i8; do
  for sched in previous current; do
    cargo run -q -p lflow-core --features std --example synthetic_blob -- \
      3,4,12,8,5,2,2 "$fmt" "$sched" 7 "$tmp/$fmt-$sched.lfw" >/dev/null
    # mode byte: 4 bins, no reseal, mean noise; then the blob; then 4 bins of 3 counts.
    python3 - "$tmp/$fmt-$sched.lfw" "$corpus/seed-$fmt-$sched" <<'PY'
import struct, sys
blob = open(sys.argv[1], 'rb').read()
spikes = b''.join(struct.pack('<3H', t % 4, (t * 3) % 5, 300 if t == 2 else 1) for t in range(4))
open(sys.argv[2], 'wb').write(bytes([0x42]) + blob + spikes)
PY
  done
done

status=0
for target in blob_step wire_frames; do
  log="$tmp/$target.log"
  set +e
  (cd core/fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1) 2>&1 | tee "$log" | tail -n 8
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || status=$rc
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
  crashes=$(ls "core/fuzz/artifacts/$target" 2>/dev/null | grep -c -E '^(crash|oom|timeout|leak)-' || true)
  echo "fuzz $target: ${secs}s, executions ${execs:-unknown}, crash artifacts ${crashes}, exit ${rc}"
done
exit "$status"
