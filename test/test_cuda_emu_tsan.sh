#!/usr/bin/env bash
# test/test_cuda_emu_tsan.sh — the CUDA emulator under ThreadSanitizer, run from the repository
# root (make test builds build/test_cuda_emu_tsan first: test/test_cuda_emu.cu with
# -fsanitize=thread). A kernel that reads its neighbour's shared-memory slot without a
# __syncthreads must be reported as a data race at those two lines; race-free kernels with
# barriers, shuffles and __syncwarp must run without any report.
set -u
cd "$(dirname "$0")/.."
BIN=build/test_cuda_emu_tsan
source test/check.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

TSAN_OPTIONS="exitcode=66" "$BIN" --race > "$TMP/race.out" 2> "$TMP/race.err"
status=$?
check "the racy kernel exits 66 (TSan found a report), not $status" [ "$status" -eq 66 ]
check "the report names a data race in racy_neighbor" grep -q "SUMMARY: ThreadSanitizer: data race test/test_cuda_emu.cu:[0-9]* in racy_neighbor" "$TMP/race.err"
check "the racy kernel still ran to its end" grep -q "racy kernel ran: no error" "$TMP/race.out"

TSAN_OPTIONS="exitcode=66" "$BIN" --clean > "$TMP/clean.out" 2> "$TMP/clean.err"
status=$?
check "the race-free kernels exit 0, not $status" [ "$status" -eq 0 ]
check "no ThreadSanitizer report for the race-free kernels" bash -c "! grep -q ThreadSanitizer '$TMP/clean.err'"
check "the race-free kernels ran" grep -q "race-free kernel ran: no error" "$TMP/clean.out"
[ "$failed" -eq 0 ] || { echo "--- race.err:"; head -20 "$TMP/race.err"; echo "--- clean.err:"; head -20 "$TMP/clean.err"; }
echo "test_cuda_emu_tsan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
