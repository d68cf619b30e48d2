# test/check.sh — sourced by the test scripts: `check "what" command...` runs the command and
# counts it passed (exit 0) or failed, printing "FAIL: what" on a failure. A script ends by
# printing "NAME: $passed passed, $failed failed" (the line test/run_all.sh adds up) and
# exiting non-zero if any check failed.
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}
