/*
 * judges/judge_cmd.h — the `cmd` judge: any external program (an LLM client, a script, another
 * model) judges battles by speaking JSON Lines on its stdin and stdout.
 *
 * Protocol. The program is started once per run through `/bin/sh -c COMMAND` (`exec
 * COMMAND` when COMMAND is a plain command: the program then replaces the shell, which
 * would otherwise hold the program's stdout open while it waits), its stdin and stdout
 * piped to us; its stderr is the terminal's, so it may log there freely. It gets one
 * request per line on stdin:
 *     {"id": 17, "query": "...", "doc_a": "...", "doc_b": "..."}
 *     {"id": 18, "query": "...", "doc_a": "...", "doc_b": "...", "query_b": "..."}
 * and answers each request with one line on stdout, in the order received:
 *     {"id": 17, "p": 0.83}
 * where p is the probability that doc_a is the better answer: to `query`, or, when
 * "query_b" is present (a cross-query battle, used to calibrate scores across queries),
 * the probability that doc_a answers `query` better than doc_b answers `query_b`.
 * - ids are integers that increase by one across the whole session (across batches).
 * - texts are JSON strings in UTF-8 (invalid bytes of the corpus arrive as U+FFFD).
 * - an answer may carry more members (e.g. "reason"): they are ignored; an answer line
 *   may be of any length. Anything else on stdout (a debug print, a blank line) is an
 *   error: log to stderr.
 * - requests come in batches; the next batch is sent only when every request of this one
 *   is answered, and stdin stays open in between. A program may answer line by line, or
 *   read what is available and answer it together (an LLM client batching its calls):
 *   it must never wait for more requests than have arrived, nor for end of input.
 * - end of input (stdin closed) means the run is over: the program should exit.
 * - unicode escapes: requests use \uXXXX only for control characters; answers may use
 *   any valid JSON.
 *
 * Robustness. Requests are written and answers read at the same time (poll on both
 * pipes), so neither side can block the other on a full pipe whatever the batch size.
 * A call fails, keeping every answer received before the failure, when the program
 * - makes no progress (reads no byte of ours, writes none) for timeout_s seconds,
 * - exits, is killed by a signal, or closes its stdout or stdin (its stdout: seen at once
 *   for a plain command; a shell that runs a compound command keeps its own copy of
 *   stdout open while it waits, so there only the timeout sees it),
 * - answers something that is not {"id": <the expected id>, "p": <a number in [0, 1]>}.
 * After a failure the program is killed (SIGTERM, then SIGKILL; its whole process group,
 * so that children of the shell die too) and reaped, and the judge answers nothing more.
 * SIGPIPE is ignored in this process from cmd_judge_start on (a write to a program that
 * is gone must be an error to report, not a silent death of the trainer). SIGINT, SIGTERM
 * and SIGHUP, where their action is the default, get a handler from then on that ends
 * every program not yet reaped (SIGTERM to its group, SIGKILL 0.5 s later) and then ends
 * the trainer by the same signal: the programs' own process groups keep the terminal's
 * Ctrl-C from reaching them, and they would run on as orphans.
 */
#ifndef ZELO_JUDGE_CMD_H
#define ZELO_JUDGE_CMD_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    char* command;        // as given, for messages
    double timeout_s;     // longest wait without any byte moving either way
    pid_t pid;            // the shell, leader of its own process group; -1 once reaped
    int to_child;         // our end of the program's stdin, -1 once closed
    int from_child;       // our end of the program's stdout, -1 once closed
    long long next_id;    // id of the next request
    char* pending;        // (pending_cap,) bytes read past the last answer line used
    size_t pending_len;
    size_t pending_cap;
    char failure[768];    // why the judge stopped working; "" while it works
} CmdJudge;

// starts `command` through /bin/sh -c, its stdin/stdout piped to us; stderr passes through.
// dies if the pipes or the process cannot be created (a command that is not found shows
// up as exit status 127 at the first cmd_judge_ask).
void cmd_judge_start(CmdJudge* j, const char* command, double timeout_s);

// sends n requests as JSONL and reads one answer line per request, in order; returns how
// many were answered (n on success, error set to ""). On failure (the program died, hung
// past timeout_s, or answered garbage) returns the count answered before it and writes
// why into error: the caller keeps p_out[0..returned) and reports the error.
// p_out (n,) probability that doc_a wins; query_a, doc_a, doc_b (n,) texts; query_b (n,)
// for cross-query battles, or NULL (or a NULL entry) when doc_b answers query_a[i] too.
int cmd_judge_ask(float* p_out, char* error, size_t errlen, CmdJudge* j,
                  const char* const* query_a, const char* const* doc_a,
                  const char* const* query_b, const char* const* doc_b, int n);

// closes the program's stdin, gives it a moment to exit, then kills it; always reaps it.
void cmd_judge_stop(CmdJudge* j);

#endif // ZELO_JUDGE_CMD_H
