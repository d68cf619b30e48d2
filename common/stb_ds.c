/*
 * common/stb_ds.c — the one translation unit that holds stb_ds's functions (Debian's
 * libstb-dev, <stb/stb_ds.h>): its hash maps back common/strtab.h and the battle maps of
 * judges/judge.c, its growable arrays the lists read from files. Every program and test
 * links this file; every other file includes the header alone.
 */
#define STB_DS_IMPLEMENTATION
#include <stb/stb_ds.h>
