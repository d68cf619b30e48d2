/*
 * test_judge_cmd.c — the `cmd` judge against programs that behave well and badly
 * (test/fixtures/judge_cmd/fake_judge.py, one mode per behaviour, and plain shell
 * commands). Run from the repository root.
 *
 * The fake judge answers p = (|query| + |doc_a|) / (|query| + |doc_a| + |query_b| + |doc_b|)
 * with byte lengths of the texts it decoded. It computes that in Python from integers,
 * we compute the same double division here, Python prints the shortest repr that reads
 * back to the same double and strtod reads it back exactly: the float we get must EQUAL
 * the float of our own division, so every comparison of p below is exact. A request
 * that loses, mangles or misplaces a byte of its texts changes p.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "judges/judge_cmd.h"
#include "test/test.h"
#include "common/utils.h"

// -S: the fake needs only the standard library, and starts faster without site-packages
#define FAKE "exec python3 -S test/fixtures/judge_cmd/fake_judge.py "

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ----------------------------------------------------------------------------
// batches of requests

typedef struct {
    int n;
    char** query_a;  // (n,)
    char** doc_a;    // (n,)
    char** query_b;  // (n,) NULL entries for same-query battles; all NULL unless cross
    char** doc_b;    // (n,)
} Batch;

static unsigned long long rng_state = 12345;
static unsigned rand_u32(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(rng_state >> 33);
}

// a text of about len bytes mixing what JSON must escape (quote, backslash, newline, tab,
// control bytes), multi-byte UTF-8 and plain words; one text in 17 gets an invalid byte
static char* random_text(int len) {
    static const char* pieces[] = {"word ", "the ", "\"", "\\", "\n", "\t", "\x01", "\x1f",
                                   "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "x", "/", "{}"};
    int n_pieces = (int)(sizeof(pieces) / sizeof(pieces[0]));
    char* s = (char*)mallocCheck((size_t)len + 8);
    int at = 0;
    while (at < len) {
        const char* p = pieces[rand_u32() % (unsigned)n_pieces];
        size_t k = strlen(p);
        memcpy(s + at, p, k);
        at += (int)k;
    }
    s[at] = '\0';
    if (at > 0 && rand_u32() % 17 == 0) { s[rand_u32() % (unsigned)at] = '\xff'; }
    return s;
}

// bytes of s as the judge program decodes it: json_write_string turns each invalid byte
// into U+FFFD (3 bytes). Overwriting one byte of a multi-byte character with 0xff also
// leaves that character's other bytes invalid, so every byte that does not start or
// continue a well-formed sequence is counted, the same way io/json.c decides.
static size_t decoded_len(const char* str) {
    const unsigned char* s = (const unsigned char*)str;
    size_t n = 0;
    while (*s) {
        int k = 0;
        if (s[0] < 0x80) { k = 1; }
        else if (s[0] >= 0xc2 && s[0] <= 0xdf) { k = 2; }
        else if (s[0] >= 0xe0 && s[0] <= 0xef) { k = 3; }
        else if (s[0] >= 0xf0 && s[0] <= 0xf4) { k = 4; }
        for (int i = 1; i < k; i++) {
            if ((s[i] & 0xc0) != 0x80) { k = 0; break; }
        }
        // our pieces never make overlong or surrogate sequences, so lead + continuation
        // bytes is the whole of validity here
        if (k == 0) { n += 3; s++; }
        else { n += (size_t)k; s += k; }
    }
    return n;
}

static float expected_p(const Batch* b, int i) {
    size_t qa = decoded_len(b->query_a[i]) + decoded_len(b->doc_a[i]);
    const char* qb = b->query_b[i] != NULL ? b->query_b[i] : b->query_a[i];
    size_t total = qa + decoded_len(qb) + decoded_len(b->doc_b[i]);
    return (float)((double)qa / (double)total);
}

static Batch make_batch(int n, int max_doc, int cross) {
    Batch b;
    b.n = n;
    b.query_a = (char**)mallocCheck(sizeof(char*) * (size_t)n);
    b.doc_a = (char**)mallocCheck(sizeof(char*) * (size_t)n);
    b.query_b = (char**)mallocCheck(sizeof(char*) * (size_t)n);
    b.doc_b = (char**)mallocCheck(sizeof(char*) * (size_t)n);
    for (int i = 0; i < n; i++) {
        b.query_a[i] = random_text(1 + (int)(rand_u32() % 40));
        b.doc_a[i] = random_text((int)(rand_u32() % (unsigned)(max_doc + 1)));
        b.doc_b[i] = random_text((int)(rand_u32() % (unsigned)(max_doc + 1)));
        b.query_b[i] = (cross && i % 2 == 0) ? random_text(1 + (int)(rand_u32() % 40)) : NULL;
    }
    return b;
}

static void free_batch(Batch* b) {
    for (int i = 0; i < b->n; i++) {
        free(b->query_a[i]);
        free(b->doc_a[i]);
        free(b->query_b[i]);
        free(b->doc_b[i]);
    }
    free(b->query_a);
    free(b->doc_a);
    free(b->query_b);
    free(b->doc_b);
}

static int ask(float* p, char* err, size_t errlen, CmdJudge* j, const Batch* b, int cross) {
    return cmd_judge_ask(p, err, errlen, j, (const char* const*)b->query_a, (const char* const*)b->doc_a,
                         cross ? (const char* const*)b->query_b : NULL, (const char* const*)b->doc_b, b->n);
}

// how many of p[0..count) differ from the fake judge's formula
static int count_wrong(const float* p, const Batch* b, int count) {
    int wrong = 0;
    for (int i = 0; i < count; i++) {
        if (p[i] != expected_p(b, i)) {
            if (wrong == 0) { printf("  first wrong p: request %d got %.9g want %.9g\n", i, p[i], expected_p(b, i)); }
            wrong++;
        }
    }
    return wrong;
}

// 1 when this process has no child left, not even a zombie
static int no_child_left(void) {
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

// ----------------------------------------------------------------------------
// the cases

static void test_well_behaved(void) {
    // line-by-line answers padded to 200+ bytes: 1000 answers (> 200 KB) and requests of
    // several MB both exceed a pipe's 64 KB, so a judge that wrote the whole batch before
    // reading would deadlock (and fail here on the timeout)
    Batch b = make_batch(1000, 6000, 0);
    float* p = (float*)mallocCheck(sizeof(float) * 1000);
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, FAKE "well", 20.0);
    double t0 = now_s();
    int got = ask(p, err, sizeof(err), &j, &b, 0);
    double dt = now_s() - t0;
    CHECK(got == 1000 && err[0] == '\0', "well-behaved judge: %d of 1000 answered: %s", got, err);
    CHECK(count_wrong(p, &b, got) == 0, "well-behaved judge: answers differ from the formula");
    printf("well-behaved judge: 1000 requests with documents up to 6 KB in %.3f s\n", dt);

    // a second batch of the same session (ids go on), with cross-query battles
    Batch c = make_batch(300, 300, 1);
    got = ask(p, err, sizeof(err), &j, &c, 1);
    CHECK(got == 300 && err[0] == '\0', "cross-query batch: %d of 300 answered: %s", got, err);
    CHECK(count_wrong(p, &c, got) == 0, "cross-query batch: answers differ from the formula");
    CHECK(cmd_judge_ask(p, err, sizeof(err), &j, NULL, NULL, NULL, NULL, 0) == 0 && err[0] == '\0',
          "an empty batch must answer nothing without an error: %s", err);
    cmd_judge_stop(&j);
    CHECK(no_child_left(), "well-behaved judge: a child process remains after stop");
    free_batch(&b);
    free_batch(&c);
    free(p);
}

static void test_batching_judge(void) {
    // the program reads 250 requests before answering any: we must finish writing them
    // all while nothing comes back; 500 requests make two of its batches
    Batch b = make_batch(500, 2000, 0);
    float p[500];
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, FAKE "batch 250", 10.0);
    int got = ask(p, err, sizeof(err), &j, &b, 0);
    CHECK(got == 500 && err[0] == '\0', "batching judge: %d of 500 answered: %s", got, err);
    CHECK(count_wrong(p, &b, got) == 0, "batching judge: answers differ from the formula");
    cmd_judge_stop(&j);
    CHECK(no_child_left(), "batching judge: a child process remains after stop");
    free_batch(&b);
}

// a program that fails after `answered_first` good answers; checks the count, the
// answers kept, the message, that the program is gone, and that the judge stays failed;
// returns the seconds the failing call took
static double check_failure(const char* name, const char* command, double timeout_s, const Batch* b,
                          int answered_first, const char* const* must_say, int n_must) {
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)b->n);
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, command, timeout_s);
    double t0 = now_s();
    int got = ask(p, err, sizeof(err), &j, b, 0);
    double dt = now_s() - t0;
    CHECK(got == answered_first, "%s: returned %d, want %d (error: %s)", name, got, answered_first, err);
    CHECK(count_wrong(p, b, got < answered_first ? got : answered_first) == 0, "%s: the answers kept are wrong", name);
    CHECK(strlen(err) > 0 && strlen(err) < 700, "%s: error of %zu bytes: %s", name, strlen(err), err);
    for (int k = 0; k < n_must; k++) {
        CHECK(strstr(err, must_say[k]) != NULL, "%s: error does not say \"%s\": %s", name, must_say[k], err);
    }
    CHECK(no_child_left(), "%s: the program was not reaped after the failure", name);
    int again = ask(p, err, sizeof(err), &j, b, 0);
    CHECK(again == 0 && strstr(err, "not running") != NULL, "%s: a failed judge answered %d: %s", name, again, err);
    cmd_judge_stop(&j);
    free(p);
    return dt;
}

static void test_program_death(void) {
    // 200 requests of up to 2 KB (> 64 KB): the program dies while we still write, so
    // its end shows on both pipes, in either order; the answers it gave must count
    Batch b = make_batch(200, 2000, 0);
    // the order made certain: EPIPE first, the answers after it
    const char* stdin_first[] = {"exited with status 6", "request id 9"};
    check_failure("close stdin, then answer", FAKE "close_stdin 9 6", 10.0, &b, 9, stdin_first, 2);
    const char* crash[] = {"exited with status 3", "request id 37"};
    check_failure("crash", FAKE "crash 37 3", 10.0, &b, 37, crash, 2);
    const char* killed[] = {"killed by signal 9", "request id 5"};
    check_failure("selfkill", FAKE "selfkill 5", 10.0, &b, 5, killed, 2);
    const char* clean_exit[] = {"exited with status 0", "request id 12"};
    check_failure("early exit 0", FAKE "crash 12 0", 10.0, &b, 12, clean_exit, 2);
    const char* at_once[] = {"exited with status 4", "request id 0"};
    check_failure("exit at once", "exit 4", 10.0, &b, 0, at_once, 2);
    const char* not_found[] = {"status 127", "did not find"};
    check_failure("no such command", "zelo_no_such_judge_program_x", 10.0, &b, 0, not_found, 2);
    // a batch small enough for the pipe: no EPIPE, only the end of the program's output
    Batch small = make_batch(1, 10, 0);
    const char* small_exit[] = {"exited with status 5"};
    check_failure("exit, small batch", "exit 5", 10.0, &small, 0, small_exit, 1);
    free_batch(&small);

    double t0 = now_s();
    const char* closed[] = {"closed its output", "request id 3", "killed"};
    check_failure("close stdout", FAKE "close_stdout 3", 10.0, &b, 3, closed, 3);
    double dt = now_s() - t0;
    CHECK(dt < 5.0, "close stdout: took %.2f s", dt);
    // the same program as a plain command, without exec: a shell that forks it and waits
    // holds its own copy of the program's stdout, so the end of the output must not hinge
    // on the user's writing exec (before the fix: the 10 s timeout)
    t0 = now_s();
    check_failure("close stdout, no exec", "python3 -S test/fixtures/judge_cmd/fake_judge.py close_stdout 3", 10.0, &b, 3, closed, 3);
    dt = now_s() - t0;
    CHECK(dt < 5.0, "close stdout, no exec: took %.2f s", dt);
    free_batch(&b);
}

// whether process pid still runs 1 s from now (its /proc stat line in stat): an orphan is
// reparented, and gone or a zombie waiting for its new parent counts as dead
static int still_runs(char* stat, size_t cap, int pid) {
    char stat_path[64];
    snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", pid);
    struct timespec tick = {0, 20 * 1000 * 1000};
    int alive = 1;
    for (int tries = 0; tries < 50 && alive; tries++) {
        FILE* sp = fopen(stat_path, "r");
        alive = sp != NULL && fgets(stat, (int)cap, sp) != NULL && strstr(stat, ") Z ") == NULL;
        if (sp != NULL) { fclose(sp); }
        if (alive) { nanosleep(&tick, NULL); }
    }
    return alive;
}

static void test_timeout(void) {
    Batch b = make_batch(200, 2000, 0);
    const char* hang[] = {"did not answer within 1 s", "request id 5", "killed"};
    check_failure("hang after 5 answers", FAKE "hang 5", 1.0, &b, 5, hang, 3);
    // a program that reads nothing: 10 small requests fit in the pipe, so the last
    // progress is the call's start and the timeout is measured from there. Allowed: the
    // 1 s, plus the poll wake-up and SIGTERM's delivery (milliseconds), with 0.5 s to spare
    // for a loaded machine
    Batch small = make_batch(10, 50, 0);
    const char* silent[] = {"did not answer within 1 s", "request id 0", "killed"};
    double dt = check_failure("silent program", "exec sleep 60", 1.0, &small, 0, silent, 3);
    CHECK(dt >= 1.0 && dt < 1.5, "silent program: the 1 s timeout took %.3f s", dt);
    printf("silent program: 1 s timeout returned after %.3f s\n", dt);
    free_batch(&small);

    // the shell forks a background job that would hang on forever if only the shell were
    // killed: the whole process group must go
    char pid_path[64];
    snprintf(pid_path, sizeof(pid_path), "/tmp/zelo_test_judge_cmd_%d.pid", (int)getpid());
    char command[256];
    snprintf(command, sizeof(command), "sleep 30 & echo $! > %s; wait", pid_path);
    const char* group[] = {"did not answer within 0.5 s", "request id 0"};
    check_failure("hang in a background job", command, 0.5, &b, 0, group, 2);
    FILE* fp = fopen(pid_path, "r");
    int job = 0;
    CHECK(fp != NULL && fscanf(fp, "%d", &job) == 1, "background job: no pid in %s", pid_path);
    if (fp != NULL) { fclose(fp); }
    remove(pid_path);
    char stat[256] = "";
    CHECK(job > 0 && !still_runs(stat, sizeof(stat), job), "background job %d of a timed-out judge still runs: %s", job, stat);
    free_batch(&b);
}

// a trainer (here a forked child that starts a judge and waits) stopped by SIGTERM or
// SIGINT ends its judge, whose own process group the terminal's Ctrl-C does not reach,
// and dies of that signal
static void test_killed_trainer(void) {
    const int sigs[2] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        char pid_path[64], command[256];
        snprintf(pid_path, sizeof(pid_path), "/tmp/zelo_test_judge_cmd_%d_sig%d.pid", (int)getpid(), sigs[k]);
        remove(pid_path);
        // the judge writes its pid (the shell's, then sleep's through exec) and runs on
        snprintf(command, sizeof(command), "echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 60", pid_path, pid_path, pid_path);
        pid_t trainer = fork();
        if (trainer == 0) {
            CmdJudge j;
            cmd_judge_start(&j, command, 60.0);
            for (;;) { pause(); }
        }
        int judge = 0;
        for (int tries = 0; tries < 500 && judge == 0; tries++) {
            FILE* fp = fopen(pid_path, "r");
            if (fp == NULL || fscanf(fp, "%d", &judge) != 1) { judge = 0; }
            if (fp != NULL) { fclose(fp); }
            struct timespec tick = {0, 10 * 1000 * 1000};
            if (judge == 0) { nanosleep(&tick, NULL); }
        }
        remove(pid_path);
        kill(trainer, sigs[k]);
        int status = 0;
        waitpid(trainer, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sigs[k], "trainer killed by %s: wait status %d, want death by that signal",
              strsignal(sigs[k]), status);
        char stat[256] = "";
        CHECK(judge > 0 && !still_runs(stat, sizeof(stat), judge), "trainer killed by %s: its judge (pid %d) still runs: %s",
              strsignal(sigs[k]), judge, stat);
        if (judge > 0) { kill(judge, SIGKILL); }
    }
}

static void test_bad_answers(void) {
    Batch b = make_batch(10, 100, 0);
    // the kept answers before a bad line (python, after 3 good answers) ...
    const char* garbage[] = {"not JSON", "request id 3", "'hello'"};
    check_failure("garbage after 3 answers", FAKE "bad 3 hello", 10.0, &b, 3, garbage, 3);
    const char* wrong_id[] = {"answered id 999 where request id 3 was expected"};
    check_failure("wrong id after 3 answers", FAKE "bad 3 '{\"id\": 999, \"p\": 0.5}'", 10.0, &b, 3, wrong_id, 1);
    // ... and every kind of bad line, as the first answer of a shell judge (it starts in
    // a millisecond, python in tens of them)
    struct { const char* line; const char* says; } cases[] = {
        {"hello", "not JSON"},
        {"", "not JSON"},
        {"{\"id\": 0, \"p\": NaN}", "not JSON"},
        {"{\"id\": 0, \"p\": 0.5", "not JSON"},
        {"[0, 0.5]", "not a JSON object"},
        {"{\"p\": 0.5}", "no number \"id\""},
        {"{\"id\": \"0\", \"p\": 0.5}", "no number \"id\""},
        {"{\"id\": 1, \"p\": 0.5}", "answered id 1 where request id 0 was expected"},
        {"{\"id\": 0}", "no number \"p\""},
        {"{\"id\": 0, \"p\": \"0.5\"}", "no number \"p\""},
        {"{\"id\": 0, \"p\": null}", "no number \"p\""},
        {"{\"id\": 0, \"p\": 1.5}", "outside [0, 1]"},
        {"{\"id\": 0, \"p\": -0.25}", "outside [0, 1]"},
        {"{\"id\": 0, \"p\": 1e999}", "outside [0, 1]"},
    };
    int n_cases = (int)(sizeof(cases) / sizeof(cases[0]));
    for (int c = 0; c < n_cases; c++) {
        // the shell quotes the line as one argument; none of the lines holds a '
        char command[512], name[128];
        snprintf(command, sizeof(command), "read -r request; printf '%%s\\n' '%s'; exec sleep 60", cases[c].line);
        snprintf(name, sizeof(name), "bad answer '%s'", cases[c].line);
        const char* must[] = {cases[c].says, "request id 0"};
        check_failure(name, command, 10.0, &b, 0, must, 2);
    }
    const char* swapped[] = {"answered id 1 where request id 0 was expected"};
    check_failure("answers out of order", FAKE "swap", 10.0, &b, 0, swapped, 1);
    // a 1 MB garbage line: read whole, quoted in 200 bytes (check_failure bounds the length)
    const char* huge[] = {"not JSON", "request id 2", "(1048576 bytes)"};
    check_failure("1 MB garbage line", FAKE "huge_garbage 2 1048576", 10.0, &b, 2, huge, 3);
    free_batch(&b);
}

static void test_huge_answer(void) {
    Batch b = make_batch(6, 100, 0);
    float p[6];
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, FAKE "huge 2 1048576", 10.0);
    int got = ask(p, err, sizeof(err), &j, &b, 0);
    CHECK(got == 6 && err[0] == '\0', "1 MB answer line: %d of 6 answered: %s", got, err);
    CHECK(count_wrong(p, &b, got) == 0, "1 MB answer line: answers differ from the formula");
    cmd_judge_stop(&j);
    CHECK(no_child_left(), "1 MB answer line: a child process remains after stop");
    free_batch(&b);
}

static void test_stop(void) {
    // a program that runs on after the end of its input is killed by stop
    Batch b = make_batch(10, 100, 0);
    float p[10];
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, FAKE "ignore_eof", 10.0);
    int got = ask(p, err, sizeof(err), &j, &b, 0);
    CHECK(got == 10 && count_wrong(p, &b, got) == 0, "ignore_eof judge: %d of 10 answered: %s", got, err);
    printf("(a warning that the judge was killed is expected next)\n");
    fflush(stdout);
    double t0 = now_s();
    cmd_judge_stop(&j);
    double dt = now_s() - t0;
    // EXIT_GRACE_S (1 s), then SIGTERM, which python obeys at once
    CHECK(dt >= 1.0 && dt < 2.0, "stop of a program ignoring EOF took %.3f s", dt);
    CHECK(no_child_left(), "ignore_eof judge: a child process remains after stop");
    free_batch(&b);
}

// the inode of the pipe behind fd
static unsigned long pipe_inode(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) { return 0; }
    return (unsigned long)st.st_ino;
}

static void test_two_judges(void) {
    // an ensemble runs several programs: the second must not inherit our ends of the
    // first one's pipes, or the first would never see the end of its input at stop
    CmdJudge a, b;
    cmd_judge_start(&a, FAKE "well", 10.0);
    cmd_judge_start(&b, FAKE "well", 10.0);
    unsigned long ino_in = pipe_inode(a.to_child), ino_out = pipe_inode(a.from_child);
    char fd_dir[64];
    snprintf(fd_dir, sizeof(fd_dir), "/proc/%d/fd", (int)b.pid);
    DIR* dir = opendir(fd_dir);
    CHECK(dir != NULL, "cannot list %s", fd_dir);
    int inherited = 0, listed = 0;
    struct dirent* e;
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        char link_path[320], target[128];
        snprintf(link_path, sizeof(link_path), "%s/%s", fd_dir, e->d_name);
        ssize_t k = readlink(link_path, target, sizeof(target) - 1);
        if (k <= 0) { continue; }
        target[k] = '\0';
        listed++;
        unsigned long ino = 0;
        if (sscanf(target, "pipe:[%lu]", &ino) == 1 && (ino == ino_in || ino == ino_out)) { inherited++; }
    }
    if (dir != NULL) { closedir(dir); }
    CHECK(listed >= 2 && inherited == 0, "second judge holds %d of the first one's pipes (%d fds listed)", inherited, listed);
    Batch x = make_batch(20, 200, 0);
    float p[20];
    char err[1024];
    int got_a = ask(p, err, sizeof(err), &a, &x, 0);
    int wrong_a = count_wrong(p, &x, got_a);
    int got_b = ask(p, err, sizeof(err), &b, &x, 0);
    CHECK(got_a == 20 && got_b == 20 && wrong_a == 0 && count_wrong(p, &x, got_b) == 0,
          "two judges: %d and %d of 20 answered: %s", got_a, got_b, err);
    cmd_judge_stop(&a);
    cmd_judge_stop(&b);
    CHECK(no_child_left(), "two judges: a child process remains after stop");
    free_batch(&x);
}

static void test_example_judge(void) {
    // dev/judge_example.py, the program users copy, speaks the protocol: a document
    // holding every query word beats one holding none, whichever side it is on
    const char* q[] = {"thermal conductivity of metals", "thermal conductivity of metals",
                       "boundary layer transition", "boundary layer transition"};
    const char* a[] = {"the thermal conductivity of metals at low temperature", "poems about the sea",
                       "transition of the laminar boundary layer", "stock market report"};
    const char* bb[] = {"poems about the sea", "the thermal conductivity of metals at low temperature",
                        "stock market report", "heat transfer in gases at high pressure"};
    const char* qb[] = {NULL, NULL, "heat transfer in gases", "heat transfer in gases"};
    float p[4];
    char err[1024];
    CmdJudge j;
    cmd_judge_start(&j, "exec python3 dev/judge_example.py", 10.0);
    int got = cmd_judge_ask(p, err, sizeof(err), &j, q, a, qb, bb, 4);
    CHECK(got == 4 && err[0] == '\0', "example judge: %d of 4 answered: %s", got, err);
    if (got == 4) {
        CHECK(p[0] > 0.5f && p[1] < 0.5f && p[2] > 0.5f && p[3] < 0.5f,
              "example judge: p = %g %g %g %g, want > < > < 0.5", p[0], p[1], p[2], p[3]);
    }
    // a larger batch, which it reads in pieces as they arrive
    Batch b = make_batch(300, 3000, 1);
    float* pb = (float*)mallocCheck(sizeof(float) * 300);
    got = ask(pb, err, sizeof(err), &j, &b, 1);
    CHECK(got == 300 && err[0] == '\0', "example judge: %d of 300 answered: %s", got, err);
    cmd_judge_stop(&j);
    CHECK(no_child_left(), "example judge: a child process remains after stop");
    free(pb);
    free_batch(&b);
}

int main(void) {
    // the cmd judge keeps a signal this process inherited as ignored ignored (nohup; a shell
    // without job control starts background jobs with SIGINT ignored), and then a trainer of
    // test_killed_trainer would never end: the test runs as a trainer started from a terminal
    const int ending[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int k = 0; k < 3; k++) { signal(ending[k], SIG_DFL); }
    test_well_behaved();
    test_batching_judge();
    test_program_death();
    test_timeout();
    test_killed_trainer();
    test_bad_answers();
    test_huge_answer();
    test_stop();
    test_two_judges();
    test_example_judge();
    return test_summary("test_judge_cmd");
}
