#!/usr/bin/env bash
# check-dataset-arg.sh PATH: what `make demo DATASET=PATH` needs of PATH, checked before the stack is
# started (which takes ~20 s): a readable, non-empty regular file whose name ends in .jsonl (the
# upload rule only starts runs for such keys). Exit 2 with one line naming the problem.
set -uo pipefail
f=${1:-}
fail() { echo "demo: DATASET=$f: $*" >&2; exit 2; }
[ -n "$f" ] || { echo "demo: DATASET is empty: pass DATASET=path/to/file.jsonl" >&2; exit 2; }
[ -e "$f" ] || fail "no such file"
[ -d "$f" ] && fail "is a directory; pass a .jsonl file"
[ -f "$f" ] || fail "is not a regular file"
[ -r "$f" ] || fail "is not readable"
[ -s "$f" ] || fail "is empty"
case "$f" in
  *.jsonl) ;;
  *) fail "the name must end in .jsonl (the upload rule only starts runs for such keys); rename the file" ;;
esac
