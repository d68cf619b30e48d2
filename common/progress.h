/*
 * common/progress.h — one line on stderr that shows how far a long stage is and when it will end:
 * redrawn in place on a terminal, printed every 10 s into a log, and once more at the end.
 */
#ifndef ZELO_PROGRESS_H
#define ZELO_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "common/utils.h"

typedef struct {
    const char* what;   // e.g. "scoring pairs"
    int64_t total;
    double start;
    double last_print;
    int tty;
} Progress;

static inline void progress_begin(Progress* p, const char* what, int64_t total) {
    p->what = what;
    p->total = total;
    p->start = wall_seconds();
    p->last_print = 0.0;
    p->tty = isatty(fileno(stderr));
}

static inline void progress_update(Progress* p, int64_t done) {
    double now = wall_seconds();
    if (done < p->total && now - p->last_print < (p->tty ? 0.2 : 10.0)) { return; }
    p->last_print = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0.0;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int filled = p->total > 0 ? (int)((double)WIDTH * (double)done / (double)p->total) : WIDTH;
    for (int i = 0; i < WIDTH; i++) { bar[i] = i < filled ? '#' : '.'; }
    bar[WIDTH] = '\0';
    int running = done < p->total;
    fprintf(stderr, "%s%-22s [%s] %lld/%lld  %.1f/s  %s %.0fs%s", p->tty ? "\r" : "", p->what, bar,
            (long long)done, (long long)p->total, rate, running ? "eta" : "took", running ? eta : elapsed,
            p->tty && running ? "" : "\n");
    fflush(stderr);
}

#endif // ZELO_PROGRESS_H
