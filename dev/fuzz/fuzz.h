/*
 * dev/fuzz/fuzz.h — what every fuzz target shares (include it in exactly one file of a
 * target, its fuzz_<reader>.c). The targets are built with -DZELO_FUZZING and
 * -fsanitize=fuzzer,address,undefined (`make fuzz`, README "Fuzzing").
 *
 * A reader refuses bad input with die() (common/utils.h), which would end the process, and
 * libFuzzer counts an exit during a run as a crash. In a fuzz build die() formats its
 * message (so that the sanitizers check the arguments of every error message) and calls
 * fuzz_refused, which jumps back to fuzz_run: a refusal is an answer, not a finding. What
 * is a finding: a crash, a sanitizer report, a hang (libFuzzer's -timeout), an allocation
 * over -malloc_limit_mb, and a leak on an input the reader accepts.
 *
 * Leaks: a refused parse abandons what it had allocated (the process would have ended
 * there). fuzz_run notes every allocation made while the reader runs (ASan's malloc hook);
 * after a refusal it closes the streams the reader left open (or the process would run
 * out of file descriptors) and frees what is still allocated of what it noted, so that a
 * refusal leaves nothing behind, and libFuzzer's leak check (on by default) reports only
 * what an accepted input leaks. A reader must therefore keep nothing it allocates in
 * static state (none does; stdout gets a static buffer for the same reason).
 */
#ifndef ZELO_FUZZ_H
#define ZELO_FUZZ_H

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <sanitizer/allocator_interface.h>
#include "common/utils.h"

typedef void (*FuzzFn)(const uint8_t* data, size_t size);

static jmp_buf* fuzz_jump;          // where a refusal goes; NULL outside fuzz_run
#define FUZZ_MAX_FILES 64
static FILE* fuzz_files[FUZZ_MAX_FILES];  // streams fopen_check opened during this call
static int fuzz_file_fds[FUZZ_MAX_FILES];
static int fuzz_n_files;

void fuzz_refused(const char* file, int line, const char* message) {
    if (getenv("FUZZ_VERBOSE") != NULL) { fprintf(stderr, "refused at %s:%d: %s\n", file, line, message); }
    if (fuzz_jump == NULL) {
        fprintf(stderr, "error at %s:%d: %s (outside fuzz_run)\n", file, line, message);
        abort();
    }
    longjmp(*fuzz_jump, 1);
}

void fuzz_opened(FILE* fp) {
    if (fuzz_n_files == FUZZ_MAX_FILES) { return; }  // no reader holds that many at once
    fuzz_files[fuzz_n_files] = fp;
    fuzz_file_fds[fuzz_n_files] = fileno(fp);
    fuzz_n_files++;
}

// closes the streams a refused call left open: a stream whose descriptor is still open and
// was not handed to a later stream (a descriptor is reused only once its stream is closed)
static void fuzz_close_abandoned(void) {
    for (int i = fuzz_n_files - 1; i >= 0; i--) {
        int fd = fuzz_file_fds[i], later = 0;
        for (int k = i + 1; k < fuzz_n_files; k++) { later |= fuzz_file_fds[k] == fd; }
        if (!later && fcntl(fd, F_GETFD) != -1) { fclose(fuzz_files[i]); }
    }
    fuzz_n_files = 0;
}

// every block allocated during the current call (freed ones too: what is still allocated
// at a refusal is found by asking the allocator)
#define FUZZ_MAX_ALLOCS (1 << 21)
static void* fuzz_allocs[FUZZ_MAX_ALLOCS];
static int fuzz_n_allocs;
// per thread: the hook runs on every thread, and libFuzzer's own threads (the RSS watcher,
// which may start late on a loaded machine) allocate while a call runs; a block of theirs
// noted here would be freed under them at a refusal
static _Thread_local int fuzz_tracking;

static void fuzz_malloc_hook(const volatile void* p, size_t size) {
    (void)size;
    if (!fuzz_tracking) { return; }
    if (fuzz_n_allocs == FUZZ_MAX_ALLOCS) {
        fuzz_tracking = 0;
        fprintf(stderr, "fuzz: more than %d allocations in one input: raise FUZZ_MAX_ALLOCS\n", FUZZ_MAX_ALLOCS);
        abort();
    }
    fuzz_allocs[fuzz_n_allocs++] = (void*)p;
}

static void fuzz_free_hook(const volatile void* p) { (void)p; }

static int fuzz_compare_pointers(const void* a, const void* b) {
    uintptr_t x = (uintptr_t)*(void* const*)a, y = (uintptr_t)*(void* const*)b;
    return (x > y) - (x < y);
}

// frees what the refused call left allocated; an address noted twice (freed, then given out
// again during the call) is freed once
static void fuzz_free_abandoned(void) {
    qsort(fuzz_allocs, (size_t)fuzz_n_allocs, sizeof(void*), fuzz_compare_pointers);
    for (int i = 0; i < fuzz_n_allocs; i++) {
        if (i > 0 && fuzz_allocs[i] == fuzz_allocs[i - 1]) { continue; }
        if (__sanitizer_get_ownership(fuzz_allocs[i])) { free(fuzz_allocs[i]); }
    }
}

// runs fn(data, size), the reader under test; a refusal (die) comes back here
static void fuzz_run(FuzzFn fn, const uint8_t* data, size_t size) {
    static int hooked = 0;
    if (!hooked) {
        static char stdout_buffer[BUFSIZ];  // a buffer stdio allocates during a call would be freed
        setvbuf(stdout, stdout_buffer, _IOFBF, sizeof(stdout_buffer));
        if (!__sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook, fuzz_free_hook)) { abort(); }
        hooked = 1;
    }
    jmp_buf here;
    fuzz_n_files = 0;
    fuzz_n_allocs = 0;
    if (setjmp(here) != 0) {
        fuzz_tracking = 0;
        fuzz_jump = NULL;
        fuzz_close_abandoned();
        fuzz_free_abandoned();
        return;
    }
    fuzz_jump = &here;
    fuzz_tracking = 1;
    fn(data, size);
    fuzz_tracking = 0;
    fuzz_jump = NULL;
}

// a scratch directory of this process, for readers that take a path: in memory where
// there is /dev/shm (a file is written at every run)
static char fuzz_dir[64];

// removes the scratch directory at exit (a finding's abort leaves it)
static inline void fuzz_remove_dir(void) {
    DIR* d = opendir(fuzz_dir);
    if (d == NULL) { return; }
    char path[128];
    for (struct dirent* e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) { continue; }
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fuzz_dir);
}

static inline void fuzz_make_dir(void) {
    if (fuzz_dir[0] != '\0') { return; }
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/zelo_fuzz_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(fuzz_dir) == NULL) { perror("mkdtemp"); abort(); }
    atexit(fuzz_remove_dir);
}

// writes data[0..size) to <scratch>/name and returns that path (a static buffer per name
// slot: slot 0..3, so that a target can hold several files at once)
static inline const char* fuzz_file(int slot, const char* name, const void* data, size_t size) {
    static char paths[4][128];
    fuzz_make_dir();
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", fuzz_dir, name);
    FILE* fp = fopen(paths[slot], "wb");
    if (fp == NULL || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) { perror(paths[slot]); abort(); }
    return paths[slot];
}

#endif // ZELO_FUZZ_H
