/*
 * test/test.h — the few lines every C test shares. A test counts its checks and ends
 * with "<name>: N passed, N failed" and a non-zero exit status if any failed, so that
 * `make test` (and CI) can never report success for a wrong result.
 */
#ifndef ZELO_TEST_H
#define ZELO_TEST_H

#include <math.h>
#include <stdio.h>

static int test_passed = 0;
static int test_failed = 0;

// one check: prints the failure with its place, counts either way
#define CHECK(cond, ...) do { \
    if (cond) { test_passed++; } \
    else { test_failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
} while (0)

// relative error with a floor on the denominator, so values near zero are compared absolutely
static inline double rel_err(double got, double want, double floor_abs) {
    double d = fabs(got - want);
    double scale = fabs(want) > floor_abs ? fabs(want) : floor_abs;
    return d / scale;
}

// prints the closing line and returns the process exit status
static inline int test_summary(const char* name) {
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed == 0 ? 0 : 1;
}

#endif // ZELO_TEST_H
