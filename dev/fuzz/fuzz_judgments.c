/*
 * dev/fuzz/fuzz_judgments.c — zelo_fit on any judgments file: the whole program (its reader
 * is static inside zelo_fit.c, so that file is included here, its main renamed). An input
 * whose first byte is odd is given as --zbench-annotated, any other as JUDGMENTS.jsonl; the
 * fit is capped at 200 iterations so that a run stays short. zelo_fit's own line errors end
 * with exit(1), which this file maps to a refusal.
 */
#include "dev/fuzz/fuzz.h"

__attribute__((noreturn)) static void fuzz_exit(int status) {
    char message[32];
    snprintf(message, sizeof(message), "exit(%d)", status);
    fuzz_refused("zelo_fit.c", 0, message);
}
#define exit(status) fuzz_exit(status)
#define main zelo_fit_main
#include "zelo_fit.c"
#undef main
#undef exit

static void run(const uint8_t* data, size_t size) {
    int zbench = size > 0 && (data[0] & 1);
    const char* input = fuzz_file(0, "judgments.jsonl", data + (size > 0), size - (size > 0));
    char out[128];
    snprintf(out, sizeof(out), "%s/ratings.jsonl", fuzz_dir);
    char* argv[] = { "zelo_fit", "-o", out, "--max-iter", "200", zbench ? "--zbench-annotated" : (char*)input,
                     zbench ? (char*)input : NULL, NULL };
    int argc = zbench ? 7 : 6;
    int status = zelo_fit_main(argc, argv);
    if (status != 0 && status != 3) { abort(); }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(run, data, size);
    return 0;
}
