/*
 * dev/fuzz/fuzz_cmd_answers.c — the cmd judge's answer parser (judges/judge_cmd.c's
 * take_answers and parse_answer, static, so that file is included here) on any bytes, as
 * a judge program's stdout arriving in pieces. The first byte gives the batch size (1..8)
 * and the second the size of the pieces (1..64 bytes); batches follow one another, each
 * answered by the lines that come, until a bad answer or the end of the input.
 */
#include "judges/judge_cmd.c"  // first: it defines _GNU_SOURCE for its system headers
#include "dev/fuzz/fuzz.h"

static void answer(const uint8_t* data, size_t size) {
    if (size < 2) { return; }
    int n = 1 + data[0] % 8;
    size_t piece = 1 + data[1] % 64;
    data += 2;
    size -= 2;
    CmdJudge j;
    memset(&j, 0, sizeof(j));
    j.pending_cap = size + 1;
    j.pending = (char*)mallocCheck(j.pending_cap);
    long long first_id = 0;
    int answered = 0;
    size_t scanned = 0, fed = 0;
    float p[8];
    char why[QUOTE_BYTES + 512];
    for (;;) {
        if (!take_answers(p, &answered, &scanned, why, sizeof(why), &j, first_id, n)) { break; }
        for (int i = 0; i < answered; i++) {
            if (!(p[i] >= 0.0f && p[i] <= 1.0f)) { abort(); }
        }
        if (answered == n) {  // the next batch
            first_id += n;
            answered = 0;
            continue;
        }
        if (fed == size) { break; }
        size_t k = size - fed < piece ? size - fed : piece;
        memcpy(j.pending + j.pending_len, data + fed, k);
        j.pending_len += k;
        fed += k;
    }
    free(j.pending);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(answer, data, size);
    return 0;
}
