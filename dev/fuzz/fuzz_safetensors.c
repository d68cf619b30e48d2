/*
 * dev/fuzz/fuzz_safetensors.c — io/safetensors.c's reader on any bytes: the header (JSON),
 * then every tensor of a float dtype read as fp32.
 */
#include "dev/fuzz/fuzz.h"
#include "io/safetensors.h"

static void load(const uint8_t* data, size_t size) {
    SafeTensors st;
    safetensors_open(&st, fuzz_file(0, "model.safetensors", data, size));
    for (int i = 0; i < st.num_tensors; i++) {
        const SafeTensorInfo* t = &st.tensors[i];
        if (safetensors_find(&st, t->name) == NULL) { abort(); }
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) { continue; }
        float* out = (float*)mallocCheck(sizeof(float) * safetensors_numel(t));
        safetensors_read_f32(out, &st, t);
        free(out);
    }
    safetensors_close(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
