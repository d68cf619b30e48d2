#!/usr/bin/env bash
# Runs each test binary given, from the repository root, and adds up their closing lines
# ("name: N passed, N failed"). Exits non-zero if any test failed or crashed.
set -u
cd "$(dirname "$0")/.."
total_passed=0
total_failed=0
crashed=()
for t in "$@"; do
    name=$(basename "$t")
    echo "=== $name"
    out=$("$t" 2>&1)
    status=$?
    echo "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[A-Za-z0-9_]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        crashed+=("$name (exit $status, no closing line)")
        total_failed=$((total_failed + 1))
        continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        crashed+=("$name (exit $status)")
        total_failed=$((total_failed + 1))
    fi
done
for c in "${crashed[@]+"${crashed[@]}"}"; do echo "CRASHED: $c"; done
echo "total: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
