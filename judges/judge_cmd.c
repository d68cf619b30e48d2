/*
 * judges/judge_cmd.c — the `cmd` judge: an external program answering battles over pipes. The
 * protocol and the failure rules are in judges/judge_cmd.h.
 */
#define _GNU_SOURCE  // pipe2
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "judges/judge_cmd.h"
#include "io/json.h"
#include "common/utils.h"

extern char** environ;

// how long a program may take to exit once its input is closed (end of run) or once it
// has closed its output, and how long SIGTERM gets before SIGKILL
#define EXIT_GRACE_S 1.0
#define TERM_GRACE_S 0.5
// bytes of a bad answer line quoted in an error message
#define QUOTE_BYTES 200
// free space made in the answer buffer before each read
#define READ_CHUNK 65536

// ----------------------------------------------------------------------------
// the programs end with the trainer

// Each program runs in its own process group (so that a timeout kills a shell's children
// too), which also keeps the terminal's Ctrl-C, sent to the foreground group, from
// reaching it: a trainer stopped by SIGINT, SIGTERM or SIGHUP must end its programs
// itself, or they run on as orphans. Slots hold the group ids of the programs not yet
// reaped (0: free); the handler reads them, so they are sig_atomic_t.
#define MAX_LIVE_PROGRAMS 64
static volatile sig_atomic_t live_groups[MAX_LIVE_PROGRAMS];
static const int ENDING_SIGNALS[3] = { SIGINT, SIGTERM, SIGHUP };

// async-signal-safe only: kill, waitid, nanosleep, signal, raise. SIGTERM to every group,
// TERM_GRACE_S for the shells to exit, SIGKILL to every group (what end_child does, for
// all of them at once), then the signal again with its default action: the trainer ends
// as the signal meant, with the status that says so
static void end_programs_and_die(int sig) {
    for (int i = 0; i < MAX_LIVE_PROGRAMS; i++) {
        if (live_groups[i] > 0) { kill(-(pid_t)live_groups[i], SIGTERM); }
    }
    for (int tick = 0; tick < (int)(TERM_GRACE_S * 100); tick++) {
        int running = 0;
        for (int i = 0; i < MAX_LIVE_PROGRAMS; i++) {
            siginfo_t info;
            info.si_pid = 0;
            if (live_groups[i] > 0 && waitid(P_PID, (id_t)live_groups[i], &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                info.si_pid == 0) {
                running = 1;
            }
        }
        if (!running) { break; }
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
    for (int i = 0; i < MAX_LIVE_PROGRAMS; i++) {
        if (live_groups[i] > 0) { kill(-(pid_t)live_groups[i], SIGKILL); }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void live_group_add(pid_t pid) {
    static int handlers_installed = 0;
    if (!handlers_installed) {
        for (int k = 0; k < 3; k++) {
            // a signal this process was told to ignore (nohup) stays ignored
            struct sigaction old;
            sigaction(ENDING_SIGNALS[k], NULL, &old);
            if (old.sa_handler != SIG_DFL) { continue; }
            struct sigaction sa;
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = end_programs_and_die;
            sigemptyset(&sa.sa_mask);
            for (int m = 0; m < 3; m++) { sigaddset(&sa.sa_mask, ENDING_SIGNALS[m]); }
            sigaction(ENDING_SIGNALS[k], &sa, NULL);
        }
        handlers_installed = 1;
    }
    for (int i = 0; i < MAX_LIVE_PROGRAMS; i++) {
        if (live_groups[i] == 0) { live_groups[i] = (sig_atomic_t)pid; return; }
    }
    die("cmd judge: more than %d judge programs at once", MAX_LIVE_PROGRAMS);
}

// before the program is reaped, so that the handler never signals a reused group id
static void live_group_remove(pid_t pid) {
    for (int i = 0; i < MAX_LIVE_PROGRAMS; i++) {
        if (live_groups[i] == (sig_atomic_t)pid) { live_groups[i] = 0; }
    }
}

// The shell (dash as /bin/sh) forks a command and waits for it, keeping its own copy of
// the command's stdout, our pipe, open all the while: a program that closes its stdout
// and runs on would never show as the end of our pipe, only as a timeout. A plain command
// (a program, its arguments and redirections) is therefore run with exec, the program
// replacing the shell, so that the pipe's write end is the program's alone. Anything else
// (a list, a pipeline, a compound command, a builtin, leading assignments) runs as given:
// there the shell stays, and holds the pipe (README: end it with exec).
static int is_plain_command(const char* command) {
    if (strpbrk(command, ";&|()`\n") != NULL) { return 0; }
    while (*command == ' ' || *command == '\t') { command++; }
    size_t len = strcspn(command, " \t");
    if (len == 0 || command[0] == '#' || memchr(command, '=', len) != NULL) { return 0; }
    static const char* const shell_words[] = {
        "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "{", "}", "!",
        "exec", "exit", "return", "break", "continue", ":", ".", "source", "eval", "export", "readonly", "set",
        "unset", "shift", "trap", "times", "cd", "read", "wait", "umask", "ulimit", "alias", "unalias", "command",
        "getopts", "hash", "jobs", "fg", "bg", "type", "local", "echo", "printf", "test", "[", "true", "false",
        "kill", "pwd",
    };
    for (size_t i = 0; i < sizeof(shell_words) / sizeof(shell_words[0]); i++) {
        if (strlen(shell_words[i]) == len && memcmp(shell_words[i], command, len) == 0) { return 0; }
    }
    return 1;
}

// ----------------------------------------------------------------------------
// time and child processes

// 1 once the child has exited; it is left a zombie (WNOWAIT) so that its pid, which is
// also its process group's id, cannot be reused before the group is killed and it is reaped
static int child_exited(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno != EINTR) { die("waitid on judge program (pid %d) failed: %s", (int)pid, strerror(errno)); }
    }
    return info.si_pid != 0;
}

static int wait_child_exit(pid_t pid, double seconds) {
    double deadline = wall_seconds() + seconds;
    while (!child_exited(pid)) {
        if (wall_seconds() >= deadline) { return 0; }
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    return 1;
}

// ends the program and reaps it: SIGTERM to its process group unless the shell is gone,
// SIGKILL if that is not enough; returns the shell's wait status
static int end_child(CmdJudge* j) {
    if (!child_exited(j->pid)) {
        kill(-j->pid, SIGTERM);
        if (!wait_child_exit(j->pid, TERM_GRACE_S)) { kill(-j->pid, SIGKILL); }
    }
    // members of the group that outlive the shell (a background job, a pipeline's other
    // commands) would hold the pipes open and run on unseen
    kill(-j->pid, SIGKILL);
    live_group_remove(j->pid);
    int status = 0;
    while (waitpid(j->pid, &status, 0) < 0) {
        if (errno != EINTR) { die("waitpid on judge program failed: %s", strerror(errno)); }
    }
    j->pid = -1;
    return status;
}

static void describe_status(char* out, size_t outlen, int status) {
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        snprintf(out, outlen, "exited with status %d%s", code,
                 code == 127 ? " (the shell did not find the command)" :
                 code == 126 ? " (the command is not executable)" : "");
    } else if (WIFSIGNALED(status)) {
        snprintf(out, outlen, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, outlen, "ended with wait status %d", status);
    }
}

static void close_fd(int* fd) {
    if (*fd >= 0) { close(*fd); *fd = -1; }
}

// ----------------------------------------------------------------------------
// start and stop

void cmd_judge_start(CmdJudge* j, const char* command, double timeout_s) {
    if (!(timeout_s > 0.0)) { die("cmd judge: timeout must be > 0 s, got %g", timeout_s); }
    memset(j, 0, sizeof(*j));
    j->command = strdupCheck(command);
    j->timeout_s = timeout_s;
    j->pid = -1;
    j->pending_cap = READ_CHUNK;
    j->pending = (char*)mallocCheck(j->pending_cap);
    signal(SIGPIPE, SIG_IGN);

    // close-on-exec, so that a second judge started later (an ensemble) does not inherit
    // our ends: the first program would never see the end of its input
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        die("cmd judge: could not create pipes for '%s': %s", command, strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    // its own process group, so a timeout kills the shell's children too; SIGPIPE back to
    // its default (ignored signals would stay ignored across exec) and no blocked signals
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t sigpipe_only, none;
    sigemptyset(&sigpipe_only);
    sigaddset(&sigpipe_only, SIGPIPE);
    sigemptyset(&none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigdefault(&attr, &sigpipe_only);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    size_t script_len = strlen(command) + 8;
    char* script = (char*)mallocCheck(script_len);
    snprintf(script, script_len, "%s%s", is_plain_command(command) ? "exec " : "", command);
    char* argv[] = {"sh", "-c", script, NULL};
    // the signals that end the trainer are held until the program's group is registered,
    // so that none of them can leave it behind
    sigset_t ending, before;
    sigemptyset(&ending);
    for (int k = 0; k < 3; k++) { sigaddset(&ending, ENDING_SIGNALS[k]); }
    pthread_sigmask(SIG_BLOCK, &ending, &before);
    int rc = posix_spawn(&j->pid, "/bin/sh", &actions, &attr, argv, environ);
    if (rc == 0) { live_group_add(j->pid); }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    free(script);
    if (rc != 0) { die("cmd judge: could not start /bin/sh for '%s': %s", command, strerror(rc)); }
    close(in[0]);
    close(out[1]);
    j->to_child = in[1];
    j->from_child = out[0];
    // non-blocking: one loop waits on both pipes (poll), never on one of them alone
    fcntl(j->to_child, F_SETFL, fcntl(j->to_child, F_GETFL) | O_NONBLOCK);
    fcntl(j->from_child, F_SETFL, fcntl(j->from_child, F_GETFL) | O_NONBLOCK);
}

void cmd_judge_stop(CmdJudge* j) {
    close_fd(&j->to_child);
    if (j->pid > 0) {
        // its stdout stays open until it is reaped: a program that writes while exiting
        // must not die of SIGPIPE and look like a crash
        int exited = wait_child_exit(j->pid, EXIT_GRACE_S);
        int status = end_child(j);
        if (!exited) {
            fprintf(stderr, "warning: judge program '%s' did not exit within %g s of the end of its input; killed\n",
                    j->command, EXIT_GRACE_S);
        } else if (status != 0) {
            char how[128];
            describe_status(how, sizeof(how), status);
            fprintf(stderr, "warning: judge program '%s' %s at the end of its input\n", j->command, how);
        }
    }
    close_fd(&j->from_child);
    free(j->command);
    free(j->pending);
    memset(j, 0, sizeof(*j));
    j->pid = -1;
    j->to_child = -1;
    j->from_child = -1;
}

// ----------------------------------------------------------------------------
// requests and answers

// the n requests as JSONL, ids first_id.. ; *len_out gets the byte count
static char* format_requests(size_t* len_out, long long first_id,
                             const char* const* query_a, const char* const* doc_a,
                             const char* const* query_b, const char* const* doc_b, int n) {
    char* buf = NULL;
    size_t len = 0;
    FILE* fp = open_memstream(&buf, &len);
    if (fp == NULL) { die("cmd judge: open_memstream failed: %s", strerror(errno)); }
    for (int i = 0; i < n; i++) {
        const char* qb = query_b != NULL ? query_b[i] : NULL;
        if (query_a[i] == NULL || doc_a[i] == NULL || doc_b[i] == NULL) {
            die("cmd judge: request %d of the batch has a NULL text", i);
        }
        fprintf(fp, "{\"id\": %lld, \"query\": ", first_id + i);
        json_write_string(fp, query_a[i]);
        fputs(", \"doc_a\": ", fp);
        json_write_string(fp, doc_a[i]);
        fputs(", \"doc_b\": ", fp);
        json_write_string(fp, doc_b[i]);
        if (qb != NULL) {
            fputs(", \"query_b\": ", fp);
            json_write_string(fp, qb);
        }
        fputs("}\n", fp);
    }
    if (fclose(fp) != 0) { die("cmd judge: could not format requests: %s", strerror(errno)); }
    *len_out = len;
    return buf;
}

// checks one answer line[0..len) and gives its p; on a bad line returns 0 and writes why
// (quoting the line, cut to QUOTE_BYTES) into why
static int parse_answer(float* p_out, char* why, size_t whylen, const char* line, size_t len, long long id) {
    char quote[QUOTE_BYTES + 64];
    int shown = len > QUOTE_BYTES ? QUOTE_BYTES : (int)len;
    if (len > QUOTE_BYTES) {
        snprintf(quote, sizeof(quote), "'%.*s'... (%zu bytes)", shown, line, len);
    } else {
        snprintf(quote, sizeof(quote), "'%.*s'", shown, line);
    }
    char err[160];
    JsonValue v;
    if (!json_parse(&v, line, len, err, sizeof(err))) {
        snprintf(why, whylen, "gave an answer to request id %lld that is not JSON (%s): %s", id, err, quote);
        return 0;
    }
    int ok = 0;
    const JsonValue* jid = json_get(&v, "id");
    const JsonValue* jp = json_get(&v, "p");
    if (v.type != JSON_OBJECT) {
        snprintf(why, whylen, "gave an answer to request id %lld that is not a JSON object: %s", id, quote);
    } else if (jid == NULL || jid->type != JSON_NUMBER) {
        snprintf(why, whylen, "gave an answer to request id %lld with no number \"id\": %s", id, quote);
    } else if (jid->number != (double)id) {
        snprintf(why, whylen, "answered id %.17g where request id %lld was expected "
                 "(one answer per request, in the order received): %s", jid->number, id, quote);
    } else if (jp == NULL || jp->type != JSON_NUMBER) {
        snprintf(why, whylen, "gave an answer to request id %lld with no number \"p\": %s", id, quote);
    } else if (!(jp->number >= 0.0 && jp->number <= 1.0)) {
        snprintf(why, whylen, "gave an answer to request id %lld with p = %g, outside [0, 1]: %s", id, jp->number, quote);
    } else {
        *p_out = (float)jp->number;
        ok = 1;
    }
    json_free(&v);
    return ok;
}

// uses the complete lines in j->pending as answers while *answered < n; *scanned is how
// far pending is known to hold no newline, so a long line arriving in pieces is scanned once.
// returns 0 on a bad answer, with why written.
static int take_answers(float* p_out, int* answered, size_t* scanned, char* why, size_t whylen,
                        CmdJudge* j, long long first_id, int n) {
    size_t start = 0;
    int ok = 1;
    while (*answered < n) {
        char* nl = memchr(j->pending + *scanned, '\n', j->pending_len - *scanned);
        if (nl == NULL) { *scanned = j->pending_len; break; }
        size_t end = (size_t)(nl - j->pending);
        if (!parse_answer(&p_out[*answered], why, whylen, j->pending + start, end - start,
                          first_id + *answered)) {
            ok = 0;
            break;
        }
        (*answered)++;
        start = end + 1;
        *scanned = start;
    }
    // lines past the batch stay for the next call (and fail there: their ids are stale)
    memmove(j->pending, j->pending + start, j->pending_len - start);
    j->pending_len -= start;
    *scanned -= start;
    return ok;
}

int cmd_judge_ask(float* p_out, char* error, size_t errlen, CmdJudge* j,
                  const char* const* query_a, const char* const* doc_a,
                  const char* const* query_b, const char* const* doc_b, int n) {
    if (errlen > 0) { error[0] = '\0'; }
    if (j->failure[0] != '\0') {
        snprintf(error, errlen, "judge program '%s' is not running any more: %s", j->command, j->failure);
        return 0;
    }
    if (n <= 0) { return 0; }
    long long first_id = j->next_id;
    size_t len = 0;
    char* requests = format_requests(&len, first_id, query_a, doc_a, query_b, doc_b, n);

    size_t written = 0;
    size_t scanned = 0;
    int answered = 0;
    int input_closed = 0;   // the program closed its stdin (EPIPE): we write nothing more
    int output_closed = 0;  // end of its stdout: no answer can come any more
    int timed_out = 0;
    int bad_answer = 0;
    char why[QUOTE_BYTES + 512] = "";
    double last_progress = wall_seconds();
    // answers already buffered (past a previous batch) are checked before any wait
    bad_answer = !take_answers(p_out, &answered, &scanned, why, sizeof(why), j, first_id, n);
    // writing goes on until the whole batch is out even once all answers are in, so that
    // no partial request is left to corrupt the next batch
    while (!bad_answer && (answered < n || written < len)) {
        double wait_s = last_progress + j->timeout_s - wall_seconds();
        if (wait_s <= 0.0) { timed_out = 1; break; }
        struct pollfd fds[2] = {{.fd = j->from_child, .events = POLLIN}, {.fd = j->to_child, .events = POLLOUT}};
        int nfds = (written < len && !input_closed) ? 2 : 1;
        // an hour at most per poll (the loop checks the clock again), so a huge timeout_s
        // cannot overflow the int of milliseconds
        int ready = poll(fds, (nfds_t)nfds, wait_s > 3600.0 ? 3600000 : (int)ceil(wait_s * 1000.0));
        if (ready < 0 && errno != EINTR) { die("cmd judge: poll failed: %s", strerror(errno)); }
        if (ready <= 0) { continue; }
        if (nfds == 2 && fds[1].revents != 0) {
            ssize_t w = write(j->to_child, requests + written, len - written);
            if (w > 0) {
                written += (size_t)w;
                last_progress = wall_seconds();
            } else if (w < 0 && errno == EPIPE) {
                input_closed = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                die("cmd judge: writing to judge program '%s' failed: %s", j->command, strerror(errno));
            }
        }
        if (fds[0].revents != 0) {
            if (j->pending_cap - j->pending_len < READ_CHUNK) {
                j->pending_cap = 2 * j->pending_cap + READ_CHUNK;
                j->pending = (char*)reallocCheck(j->pending, j->pending_cap);
            }
            ssize_t r = read(j->from_child, j->pending + j->pending_len, j->pending_cap - j->pending_len);
            if (r > 0) {
                j->pending_len += (size_t)r;
                last_progress = wall_seconds();
                bad_answer = !take_answers(p_out, &answered, &scanned, why, sizeof(why), j, first_id, n);
            } else if (r == 0) {
                output_closed = 1;
                break;
            } else if (errno != EAGAIN && errno != EINTR) {
                die("cmd judge: reading from judge program '%s' failed: %s", j->command, strerror(errno));
            }
        }
    }
    free(requests);
    if (!bad_answer && !timed_out && !output_closed && answered == n && written == len) {
        j->next_id += n;
        return n;
    }

    // failure: the program is ended whatever happened, and the judge stays failed
    long long unanswered_id = first_id + answered;
    if (bad_answer) {
        end_child(j);
    } else if (timed_out) {
        end_child(j);
        snprintf(why, sizeof(why), "%s within %g s (request id %lld); it was killed",
                 input_closed ? "closed its input (stdin) and answered nothing more"
                              : "did not answer", j->timeout_s, unanswered_id);
    } else {
        int exited = wait_child_exit(j->pid, EXIT_GRACE_S);
        char how[128];
        describe_status(how, sizeof(how), end_child(j));
        if (exited) {
            snprintf(why, sizeof(why), "%s before answering request id %lld", how, unanswered_id);
        } else {
            snprintf(why, sizeof(why), "closed its output (stdout) before answering request id %lld; "
                     "it was killed", unanswered_id);
        }
    }
    close_fd(&j->to_child);
    close_fd(&j->from_child);
    snprintf(j->failure, sizeof(j->failure), "%s", why);
    snprintf(error, errlen, "judge program '%s' %s", j->command, why);
    return answered;
}
