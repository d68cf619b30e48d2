/*
 * common/utils.h — the checked wrappers every file uses. Each one prints the file and line of
 * the call that failed, a hint, and exits non-zero: a tool that trains for hours must
 * stop loudly at the first bad read, never carry on with garbage.
 */
#ifndef ZELO_UTILS_H
#define ZELO_UTILS_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef ZELO_FUZZING
// fuzz builds only (dev/fuzz/fuzz.h defines these): a refusal returns to the fuzz target
// instead of ending the process, since a fuzzer counts an exit as a crash; and each stream
// fopen_check opens is reported, so that the target can close what a refused input left open
__attribute__((noreturn)) void fuzz_refused(const char* file, int line, const char* message);
void fuzz_opened(FILE* fp);
#endif

// A program run as several processes (common/dist.c) defines these two: the first gives
// stderr back to a rank whose output was muted and returns the rank to name in the message
// (" (rank 1 of 2)", "" in one process); the second ends the whole job, so that one rank's
// error never leaves the others waiting for it. Weak: other programs lack them.
#ifdef __cplusplus
extern "C" {
#endif
__attribute__((weak)) const char* dist_error_begin(void);
__attribute__((weak)) void dist_error_exit(void);
#ifdef __cplusplus
}
#endif

// prints "error at file:line: <message>" and exits with status 1
__attribute__((format(printf, 3, 4), noreturn))
static inline void die_at(const char* file, int line, const char* fmt, ...) {
#ifdef ZELO_FUZZING
    char message[1024];  // formatted all the same, so that the sanitizers check its arguments
    va_list fuzz_ap;
    va_start(fuzz_ap, fmt);
    vsnprintf(message, sizeof(message), fmt, fuzz_ap);
    va_end(fuzz_ap);
    fuzz_refused(file, line, message);
#endif
    fflush(stdout);
    fprintf(stderr, "error at %s:%d%s: ", file, line, dist_error_begin != NULL ? dist_error_begin() : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (dist_error_exit != NULL) { dist_error_exit(); }
    exit(1);
}
#define die(...) die_at(__FILE__, __LINE__, __VA_ARGS__)

static inline FILE* fopen_check(const char* path, const char* mode, const char* file, int line) {
    FILE* fp = fopen(path, mode);
    if (fp == NULL) {
        die_at(file, line, "could not open '%s' (mode %s): %s", path, mode, strerror(errno));
    }
#ifdef ZELO_FUZZING
    fuzz_opened(fp);
#endif
    return fp;
}
#define fopenCheck(path, mode) fopen_check(path, mode, __FILE__, __LINE__)

// nothing to move is not a call: an empty array's pointer may be NULL, which fread and
// fwrite must never be given, whatever the count
static inline void fread_check(void* ptr, size_t size, size_t nmemb, FILE* fp, const char* file, int line) {
    if (size == 0 || nmemb == 0) { return; }
    size_t got = fread(ptr, size, nmemb, fp);
    if (got != nmemb) {
        die_at(file, line, "short read: wanted %zu items of %zu bytes, got %zu (%s); "
               "the file is truncated or not of the expected format",
               nmemb, size, got, feof(fp) ? "end of file" : "read error");
    }
}
#define freadCheck(ptr, size, nmemb, fp) fread_check(ptr, size, nmemb, fp, __FILE__, __LINE__)

static inline void fwrite_check(const void* ptr, size_t size, size_t nmemb, FILE* fp, const char* file, int line) {
    if (size == 0 || nmemb == 0) { return; }
    size_t put = fwrite(ptr, size, nmemb, fp);
    if (put != nmemb) {
        die_at(file, line, "short write: wanted %zu items of %zu bytes, wrote %zu: %s (disk full?)",
               nmemb, size, put, strerror(errno));
    }
}
#define fwriteCheck(ptr, size, nmemb, fp) fwrite_check(ptr, size, nmemb, fp, __FILE__, __LINE__)

static inline void fclose_check(FILE* fp, const char* file, int line) {
    // a buffered write can fail only at close time (disk full), so this is checked too
    if (fclose(fp) != 0) {
        die_at(file, line, "fclose failed: %s", strerror(errno));
    }
}
#define fcloseCheck(fp) fclose_check(fp, __FILE__, __LINE__)

static inline void fseek_check(FILE* fp, long off, int whence, const char* file, int line) {
    if (fseek(fp, off, whence) != 0) {
        die_at(file, line, "fseek to %ld (whence %d) failed: %s", off, whence, strerror(errno));
    }
}
#define fseekCheck(fp, off, whence) fseek_check(fp, off, whence, __FILE__, __LINE__)

static inline void* malloc_check(size_t size, const char* file, int line) {
    void* ptr = malloc(size > 0 ? size : 1);
    if (ptr == NULL) {
        die_at(file, line, "out of memory allocating %zu bytes", size);
    }
    return ptr;
}
#define mallocCheck(size) malloc_check(size, __FILE__, __LINE__)

static inline void* calloc_check(size_t nmemb, size_t size, const char* file, int line) {
    void* ptr = calloc(nmemb > 0 ? nmemb : 1, size > 0 ? size : 1);
    if (ptr == NULL) {
        die_at(file, line, "out of memory allocating %zu x %zu bytes", nmemb, size);
    }
    return ptr;
}
#define callocCheck(nmemb, size) calloc_check(nmemb, size, __FILE__, __LINE__)

static inline void* realloc_check(void* old, size_t size, const char* file, int line) {
    void* ptr = realloc(old, size > 0 ? size : 1);
    if (ptr == NULL) {
        die_at(file, line, "out of memory growing a buffer to %zu bytes", size);
    }
    return ptr;
}
#define reallocCheck(old, size) realloc_check(old, size, __FILE__, __LINE__)

static inline char* strdup_check(const char* s, const char* file, int line) {
    size_t n = strlen(s) + 1;
    char* copy = (char*)malloc_check(n, file, line);
    memcpy(copy, s, n);
    return copy;
}
#define strdupCheck(s) strdup_check(s, __FILE__, __LINE__)

// the length in bytes of the open file fp (named path), its position kept
static inline int64_t file_length_check(FILE* fp, const char* path, const char* file, int line) {
    long pos = ftell(fp);
    if (pos < 0 || fseek(fp, 0, SEEK_END) != 0) { die_at(file, line, "could not size '%s': %s", path, strerror(errno)); }
    long len = ftell(fp);
    if (len < 0) { die_at(file, line, "could not size '%s': %s", path, strerror(errno)); }
    fseek_check(fp, pos, SEEK_SET, file, line);
    return (int64_t)len;
}
#define fileLengthCheck(fp, path) file_length_check(fp, path, __FILE__, __LINE__)

// A binary reader's guard on a size read from a header, before anything is allocated from it:
// count items of item_bytes each must fit in file_bytes (the file's length, or what is left
// of it for this field). Compared by division, so
// that a crafted count (near 2^31 or 2^63) can never wrap a product. Returns the items' bytes,
// at most file_bytes, so a reader can add a few such terms in int64 and compare the sum with
// the file's length. Dies naming the file, the header field and both figures.
static inline int64_t payload_bytes_check(const char* path, const char* field, int64_t count, int64_t item_bytes,
                                          int64_t file_bytes, const char* file, int line) {
    if (count < 0 || item_bytes <= 0 || count > file_bytes / item_bytes) {
        die_at(file, line, "'%s': header field %s = %lld (items of %lld bytes) does not fit in the %lld bytes "
               "the file has for it: the file is truncated, or its header corrupt", path, field, (long long)count,
               (long long)item_bytes, (long long)file_bytes);
    }
    return count * item_bytes;
}
#define payloadBytesCheck(path, field, count, item_bytes, file_bytes) \
    payload_bytes_check(path, field, count, item_bytes, file_bytes, __FILE__, __LINE__)

// dies unless the file's length is exactly what its header describes
static inline void file_size_match_check(const char* path, int64_t file_bytes, int64_t want_bytes,
                                         const char* file, int line) {
    if (file_bytes != want_bytes) {
        die_at(file, line, "'%s' has %lld bytes, its header describes %lld: the file is longer than its header says, "
               "truncated or corrupt", path, (long long)file_bytes, (long long)want_bytes);
    }
}
#define fileSizeMatchCheck(path, file_bytes, want_bytes) file_size_match_check(path, file_bytes, want_bytes, __FILE__, __LINE__)

// reads a whole file into a NUL-terminated buffer; *len_out (if not NULL) gets its length
static inline char* read_file_check(const char* path, size_t* len_out, const char* file, int line) {
    FILE* fp = fopen_check(path, "rb", file, line);
    fseek_check(fp, 0, SEEK_END, file, line);
    long size = ftell(fp);
    if (size < 0) { die_at(file, line, "could not size '%s': %s", path, strerror(errno)); }
    fseek_check(fp, 0, SEEK_SET, file, line);
    char* buf = (char*)malloc_check((size_t)size + 1, file, line);
    fread_check(buf, 1, (size_t)size, fp, file, line);
    buf[size] = '\0';
    fclose(fp);
    if (len_out != NULL) { *len_out = (size_t)size; }
    return buf;
}
#define readFileCheck(path, len_out) read_file_check(path, len_out, __FILE__, __LINE__)

// ----------------------------------------------------------------------------
// time and paths

// seconds on a clock that never jumps (for rates and timeouts, not dates)
static inline double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int file_exists(const char* path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// path = dir/name; a path that does not fit is an error, never a silently cut name
static inline void join_path_check(char* path, size_t cap, const char* dir, const char* name, const char* file, int line) {
    int n = snprintf(path, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) { die_at(file, line, "path too long: %s/%s", dir, name); }
}
#define joinPathCheck(path, cap, dir, name) join_path_check(path, cap, dir, name, __FILE__, __LINE__)

// mkdir -p: creates dir and its missing parents
static inline void make_dirs_check(const char* dir, const char* file, int line) {
    char* path = strdup_check(dir, file, line);
    for (char* p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') { continue; }
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            die_at(file, line, "could not create directory '%s': %s", path, strerror(errno));
        }
        *p = saved;
        if (saved == '\0') { break; }
    }
    free(path);
}
#define makeDirsCheck(dir) make_dirs_check(dir, __FILE__, __LINE__)

// ----------------------------------------------------------------------------
// atomic writes: everything goes to PATH.tmp, which atomicCommit syncs to disk and renames
// over PATH, so that a crash or a kill leaves the old file or the new one, never half of one

typedef struct {
    FILE* fp;
    char* path;
    char* tmp;
} AtomicFile;

static inline FILE* atomic_open(AtomicFile* af, const char* path, const char* mode, const char* file, int line) {
    size_t n = strlen(path);
    af->path = strdup_check(path, file, line);
    af->tmp = (char*)malloc_check(n + 5, file, line);
    memcpy(af->tmp, path, n);
    memcpy(af->tmp + n, ".tmp", 5);
    af->fp = fopen_check(af->tmp, mode, file, line);
    return af->fp;
}
#define atomicOpen(af, path, mode) atomic_open(af, path, mode, __FILE__, __LINE__)

static inline void atomic_commit(AtomicFile* af, const char* file, int line) {
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        die_at(file, line, "could not write '%s' to disk: %s", af->tmp, strerror(errno));
    }
    fclose_check(af->fp, file, line);
    if (rename(af->tmp, af->path) != 0) {
        die_at(file, line, "could not rename '%s' to '%s': %s", af->tmp, af->path, strerror(errno));
    }
    free(af->path);
    free(af->tmp);
}
#define atomicCommit(af) atomic_commit(af, __FILE__, __LINE__)

#endif // ZELO_UTILS_H
