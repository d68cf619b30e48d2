/*
 * common/stb_ds.c — the one translation unit that holds stb_ds's functions (Debian's
 * libstb-dev, <stb/stb_ds.h>): its hash maps back common/strtab.h and the battle maps of
 * judges/judge.c, its growable arrays the lists read from files. Every program and test
 * links this file; every other file includes the header alone.
 */
#include "common/utils.h"

// stb_ds would write through the NULL of a failed realloc; this stops with a message instead.
// Blocks are still freed with free(), which the header's arrfree and hmfree use elsewhere.
#define STBDS_REALLOC(context, ptr, size) realloc_check(ptr, size, __FILE__, __LINE__)
#define STBDS_FREE(context, ptr) free(ptr)
#define STB_DS_IMPLEMENTATION
// Two of UBSan's checks are left off for stb_ds's own functions in the sanitizer pass (SAN=1,
// the fuzz targets), both for the library's idioms rather than for our use of it:
// - bounds: the string arena allocates its blocks as a header plus `char storage[8]` grown
//   past its declared size (the pre-C99 struct hack), reported on every string past the 8th
//   byte of a block; the memory is allocated and ASan still checks every access against it;
// - shift: the byte hash builds words as `d[3] << 24` on bytes promoted to int, which shifts
//   into the sign bit for bytes >= 128; every compiler gives the intended bits.
#ifdef __clang__
#pragma clang attribute push(__attribute__((no_sanitize("bounds", "shift"))), apply_to = function)
#endif
#include <stb/stb_ds.h>
#ifdef __clang__
#pragma clang attribute pop
#endif
