#!/usr/bin/env bash
# `distillery logs preview` benchmark: generates realistic Bedrock invocation logs once (~1 GB of gzipped
# log files by default, into .local/bench-logs-<MB>mb/, reused when present), previews them with the
# release build, and reports throughput (gzipped and decompressed MB/s) and peak RSS.
#
# Environment (all optional):
#   BENCH_LOGS_MB    gzipped megabytes of logs to generate (default 1000)
#   BENCH_LOGS_DIR   where the logs go (default .local/bench-logs-<MB>mb)
#   BENCH_FILTER     a requestMetadataFilters JSON for the run (default {"equals":{"team":"support"}})
set -euo pipefail
cd "$(dirname "$0")/.."

mb="${BENCH_LOGS_MB:-1000}"
dir="${BENCH_LOGS_DIR:-.local/bench-logs-${mb}mb}"
filter="${BENCH_FILTER:-{\"equals\":{\"team\":\"support\"}}}"

command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 2; }

echo "bench: building release binaries" >&2
cargo build --locked --release --quiet -p distillery-cli --bin distillery
cargo build --locked --release --quiet -p distillery-core --example gen_invocation_logs
bin=target/release/distillery

if [[ ! -f "$dir/.complete" ]]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "bench: generating ${mb} MB of invocation logs into $dir" >&2
  target/release/examples/gen_invocation_logs "$dir" "$mb"
  touch "$dir/.complete"
fi
bytes=$(find "$dir" -path '*/data/*' -prune -o -name '*.json.gz' -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
# Warm the page cache so the figures measure the preview, not the disk.
find "$dir" -name '*.json.gz' -type f -exec cat {} + >/dev/null

report=$(mktemp)
timing=$(mktemp)
trap 'rm -f "$report" "$timing"' EXIT
rc=0
/usr/bin/time -v -o "$timing" "$bin" logs preview "$dir" --filter "$filter" --format json >"$report" || rc=$?
if [[ $rc -gt 1 ]]; then
  echo "bench: distillery exited $rc" >&2
  exit 1
fi
secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$timing")
user=$(awk -F': ' '/User time/ { print $2 }' "$timing")
sys=$(awk -F': ' '/System time/ { print $2 }' "$timing")
rss_kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$timing")
field() { sed -n "s/^  \"$1\": \([0-9]*\),\$/\1/p" "$report" | head -n 1; }
raw=$(field bytes)

rate() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "n/a" }'; }
echo "distillery logs preview: $(field files) files, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB gzipped," \
  "$(awk -v b="$raw" 'BEGIN { printf "%.1f", b / 1e6 }') MB of JSON lines, $(field scanned) records" \
  "($(field matched) matched, $(field eligible) eligible, $(field distinct_prompts) distinct prompts)"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
echo "  wall $secs s: $(rate "$bytes" "$secs") MB/s gzipped, $(rate "$raw" "$secs") MB/s decompressed;" \
  "CPU (user+sys) $cpu s: $(rate "$bytes" "$cpu") MB/s gzipped, $(rate "$raw" "$cpu") MB/s decompressed"
echo "  peak RSS $(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }') MB; load average when done: $(cut -d' ' -f1-3 /proc/loadavg)"
