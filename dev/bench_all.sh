#!/usr/bin/env bash
# Runs every benchmark script in dev/ (dev/bench_*.sh); each builds what it needs and
# prints its figures side by side with the peer it is compared to.
set -eu
cd "$(dirname "$0")/.."
for s in dev/bench_*.sh; do
    [ "$s" = "dev/bench_all.sh" ] && continue
    echo "=== $s"
    bash "$s"
done
