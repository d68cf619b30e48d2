#!/usr/bin/env bash
# dev/fuzz/run.sh — builds the fuzz targets of dev/fuzz/ (one per fuzz_<name>.c) and runs
# each for FUZZ_SECONDS seconds (default 10) on its seeds, dev/fuzz/seeds/<name>/ (read
# only), and on what earlier runs found, build/fuzz/corpus/<name>/. A target passes when
# libFuzzer ends its time without a crash, sanitizer report, leak, hang (-timeout) or
# oversized allocation; a finding is written to build/fuzz/crash-<name>-*, and the end of
# its log (build/fuzz/<name>.log) is shown. Arguments: the targets to run (default all).
# Closing line: "fuzz: N passed, N failed". Where clang cannot build a libFuzzer program,
# it says so and runs nothing (0 passed, 0 failed).
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-10}
fuzz_cc=${FUZZ_CC:-clang}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in dev/fuzz/fuzz_*.c; do n=$(basename "$f" .c); targets+=("${n#fuzz_}"); done
fi

probe=$(mktemp)
if ! echo 'int LLVMFuzzerTestOneInput(const unsigned char* d, unsigned long n) { (void)d; (void)n; return 0; }' \
        | "$fuzz_cc" -fsanitize=fuzzer,address,undefined -x c - -o "$probe" 2>/dev/null; then
    rm -f "$probe"
    echo "fuzz: skipped: $fuzz_cc cannot build a libFuzzer program here (Debian: apt-get install clang libclang-rt-dev)"
    echo "fuzz: 0 passed, 0 failed"
    exit 0
fi
rm -f "$probe"

bins=()
for t in "${targets[@]}"; do bins+=("build/fuzz/fuzz_$t"); done
if ! make -s -j2 FUZZ_CC="$fuzz_cc" "${bins[@]}"; then
    echo "fuzz: the targets do not build"
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
for t in "${targets[@]}"; do
    mkdir -p "build/fuzz/corpus/$t"
    rm -f build/fuzz/crash-"$t"-*
    start=$(date +%s)
    # -close_fd_mask=3: the readers' warnings and the programs' output are not kept (a
    # finding's report still is); -timeout: seconds one input may take
    "build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="build/fuzz/crash-$t-" \
        "build/fuzz/corpus/$t" "dev/fuzz/seeds/$t" > "build/fuzz/$t.log" 2>&1
    status=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "build/fuzz/$t.log" | grep -oE '[0-9]+$')
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz_$t: ok, ${runs:-?} inputs in $(( $(date +%s) - start )) s"
    else
        failed=$((failed + 1))
        echo "fuzz_$t: FAILED (exit $status), log build/fuzz/$t.log, input: $(ls build/fuzz/crash-"$t"-* 2>/dev/null | head -1)"
        grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "build/fuzz/$t.log" | head -12 | sed 's/^/    /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
