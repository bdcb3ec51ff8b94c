#!/usr/bin/env bash
# Merges every examples/*.yml with the Release CLI into OUT_ROOT/<name>/ and prints the sha256 of every
# output file, plus of each merge_report.json with its wall-clock fields (timings_s, *seconds*,
# images_per_second) removed, so two runs of the same code print the same lines. Needs jq.
# Usage: scripts/example-sha256.sh OUT_ROOT   (after dotnet build src/Cli -c Release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(realpath -m "$1"); rm -rf "$root"; mkdir -p "$root"
for y in examples/*.yml; do
  n=$(basename "$y" .yml)
  dotnet run --no-build --project src/Cli -c Release -- merge "$y" "$root/$n" > "$root/$n.log" 2>&1 \
    || { echo "merge of $y failed:" >&2; cat "$root/$n.log" >&2; exit 1; }
done
cd "$root"
find . -type f ! -name '*.log' | sort | xargs sha256sum
for f in $(find . -name merge_report.json | sort); do
  h=$(jq -S 'del(.timings_s) | walk(if type=="object" then with_entries(select(.key|test("seconds|images_per_second")|not)) else . end)' "$f" | sha256sum | cut -d' ' -f1)
  printf '%s  %s (timings removed)\n' "$h" "$f"
done
