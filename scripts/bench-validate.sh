#!/usr/bin/env bash
# Validator benchmark: generates a realistic ~256 MB dataset (262,144 records by default), validates it
# with the release build of `distillery validate` pinned to one core, and reports throughput and peak RSS.
#
# Environment (all optional):
#   BENCH_RECORDS   records to generate (default 262144, about 256 MB)
#   BENCH_DATA      dataset path (default $TMPDIR/distillery-bench-<records>.jsonl; reused if present)
#   BENCH_RUNS      timed runs, the best is reported (default 3)
#   BENCH_AWS_VALIDATOR  path to AWS's dataset_validator.py (aws-samples/amazon-bedrock-samples,
#                   custom-models/model_distillation/dataset-validation/) to time on the same file, with
#   BENCH_PYTHON    the Python that has its requirements installed (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

records="${BENCH_RECORDS:-262144}"
data="${BENCH_DATA:-${TMPDIR:-/tmp}/distillery-bench-${records}.jsonl}"
runs="${BENCH_RUNS:-3}"
student="amazon.nova-lite-v1:0:300k"

command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 2; }
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c 0); fi

echo "bench: building release binaries" >&2
cargo build --locked --release --quiet -p distillery-cli --bin distillery --example gen_dataset
bin=target/release/distillery

if [[ ! -s "$data" ]]; then
  target/release/examples/gen_dataset "$data" "$records"
fi
bytes=$(stat -c %s "$data")
# Warm the page cache so the figures measure validation, not the disk.
cat "$data" >/dev/null

report=$(mktemp)
timing=$(mktemp)
trap 'rm -f "$report" "$timing"' EXIT

best_secs=""
best_cpu=""
best_rss=0
for ((i = 1; i <= runs; i++)); do
  rc=0
  /usr/bin/time -f '%e %U %S %M' -o "$timing" "${pin[@]}" "$bin" validate "$data" --student "$student" --format json >"$report" || rc=$?
  # Exit 1 is expected when the file has more records than Bedrock accepts; anything else is a failure.
  if [[ $rc -gt 1 ]]; then
    echo "bench: distillery exited $rc" >&2
    exit 1
  fi
  read -r secs user sys rss_kib < <(tail -n 1 "$timing")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  if [[ -z "$best_secs" ]] || awk -v a="$secs" -v b="$best_secs" 'BEGIN { exit !(a < b) }'; then
    best_secs=$secs
  fi
  if [[ -z "$best_cpu" ]] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
    best_cpu=$cpu
  fi
  ((rss_kib > best_rss)) && best_rss=$rss_kib
done

# The generated data is valid record by record: any error other than the record-count limit means the
# benchmark measured something else than a full validation.
line_errors=$(grep -c '"line": [0-9]' "$report" || true)
if [[ "$line_errors" != "0" ]]; then
  echo "bench: the generated dataset has $line_errors line errors; see $report" >&2
  exit 1
fi

mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
echo "distillery validate: $(wc -l <"$data") records, $mb MB, best of $runs runs on one core:"
echo "  wall $best_secs s = $(rate "$best_secs") MB/s; CPU (user+sys) $best_cpu s = $(rate "$best_cpu") MB/s"
echo "  peak RSS $(awk -v k="$best_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB; load average when done: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -n "${BENCH_AWS_VALIDATOR:-}" ]]; then
  py="${BENCH_PYTHON:-python3}"
  dir=$(dirname "$BENCH_AWS_VALIDATOR")
  (cd "$dir" && /usr/bin/time -f '%e %M' -o "$timing" "$py" "$(basename "$BENCH_AWS_VALIDATOR")" -p "$data" >/dev/null 2>&1) || true
  read -r py_secs py_user py_sys py_rss < <(tail -n 1 "$timing")
  echo "AWS Python validator ($(nproc) worker processes): wall $py_secs s = $(rate "$py_secs") MB/s;" \
    "peak RSS of its largest process $(awk -v k="$py_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
  echo "  distillery is $(awk -v p="$py_secs" -v s="$best_secs" 'BEGIN { printf "%.0f", p / s }')x faster (wall clock)"
fi
