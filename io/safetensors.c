/*
 * io/safetensors.c — reader and writer of the safetensors format (see safetensors.h).
 */
#include "io/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

#include "io/json.h"
#include "common/utils.h"

// the data area is read straight into host floats and integers
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; this reader assumes a little-endian host");

static const char* dtype_names[ST_NUM_DTYPES] = {
    "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
    "I32", "U32", "F32", "F64", "I64", "U64",
};
static const size_t dtype_sizes[ST_NUM_DTYPES] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};

// ----------------------------------------------------------------------------
// number formats

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        // infinity (mantissa 0) or NaN; the payload moves up with the mantissa, so a quiet
        // NaN stays quiet
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // a subnormal half (mantissa * 2^-24) is a normal float: shift the mantissa until its
        // leading 1 reaches the implicit-bit position and lower the exponent to match
        int shift = 0;
        while ((mantissa & 0x400) == 0) { mantissa <<= 1; shift++; }
        bits = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

float bfloat16_to_float(uint16_t b) {
    // bfloat16 is the upper half of an fp32: same sign, exponent and special values
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

// ----------------------------------------------------------------------------
// reader

size_t safetensors_numel(const SafeTensorInfo* t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) { n *= t->shape[i]; }
    return n;
}

// a JSON number that must be a non-negative integer (shapes, offsets); 2^53 is the largest
// integer a JSON reader holding doubles keeps exactly
static size_t json_to_size(const JsonValue* v, const char* path, const char* name, const char* what) {
    if (v->type != JSON_NUMBER || v->number < 0 || v->number > 9007199254740992.0 || v->number != (double)(uint64_t)v->number) {
        die("safetensors file '%s', tensor '%s': %s must be a non-negative integer", path, name, what);
    }
    return (size_t)v->number;
}

static void parse_tensor_info(SafeTensorInfo* t, const char* path, const char* name, const JsonValue* v, size_t data_size) {
    if (v->type != JSON_OBJECT) {
        die("safetensors file '%s', tensor '%s': entry is a JSON %s, not an object", path, name, json_type_name(v->type));
    }
    t->name = strdupCheck(name);

    const JsonValue* dtype = json_get(v, "dtype");
    if (dtype == NULL || dtype->type != JSON_STRING) {
        die("safetensors file '%s', tensor '%s': missing or non-string \"dtype\"", path, name);
    }
    int found = -1;
    for (int d = 0; d < ST_NUM_DTYPES; d++) {
        if (strcmp(dtype->str, dtype_names[d]) == 0) { found = d; }
    }
    if (found < 0) { die("safetensors file '%s', tensor '%s': unknown dtype '%s'", path, name, dtype->str); }
    t->dtype = (SafeDtype)found;

    const JsonValue* shape = json_get(v, "shape");
    if (shape == NULL || shape->type != JSON_ARRAY) {
        die("safetensors file '%s', tensor '%s': missing or non-array \"shape\"", path, name);
    }
    if (shape->count > SAFETENSORS_MAX_DIMS) {
        die("safetensors file '%s', tensor '%s': %d dimensions, at most %d supported", path, name, shape->count, SAFETENSORS_MAX_DIMS);
    }
    t->ndim = shape->count;
    size_t nbytes = dtype_sizes[t->dtype];
    for (int i = 0; i < t->ndim; i++) {
        t->shape[i] = json_to_size(&shape->items[i], path, name, "each shape entry");
        if (__builtin_mul_overflow(nbytes, t->shape[i], &nbytes)) {
            die("safetensors file '%s', tensor '%s': shape too large (byte count overflows)", path, name);
        }
    }

    const JsonValue* offsets = json_get(v, "data_offsets");
    if (offsets == NULL || offsets->type != JSON_ARRAY || offsets->count != 2) {
        die("safetensors file '%s', tensor '%s': \"data_offsets\" must be an array [begin, end]", path, name);
    }
    t->begin = json_to_size(&offsets->items[0], path, name, "data_offsets begin");
    t->end = json_to_size(&offsets->items[1], path, name, "data_offsets end");
    if (t->begin > t->end) {
        die("safetensors file '%s', tensor '%s': data_offsets [%zu, %zu] end before they begin", path, name, t->begin, t->end);
    }
    if (t->end > data_size) {
        die("safetensors file '%s', tensor '%s': data_offsets [%zu, %zu] run past the end of the data area (%zu bytes; truncated file?)",
            path, name, t->begin, t->end, data_size);
    }
    if (t->end - t->begin != nbytes) {
        die("safetensors file '%s', tensor '%s': data_offsets [%zu, %zu] hold %zu bytes, but dtype %s x shape needs %zu",
            path, name, t->begin, t->end, t->end - t->begin, dtype_names[t->dtype], nbytes);
    }
}

static int compare_by_offsets(const void* a, const void* b) {
    const SafeTensorInfo* x = (const SafeTensorInfo*)a;
    const SafeTensorInfo* y = (const SafeTensorInfo*)b;
    // ties on begin are broken by end so that empty tensors sort before the one they share
    // an offset with
    if (x->begin != y->begin) { return x->begin < y->begin ? -1 : 1; }
    if (x->end != y->end) { return x->end < y->end ? -1 : 1; }
    return 0;
}

static int compare_names(const void* a, const void* b) {
    return strcmp(*(const char* const*)a, *(const char* const*)b);
}

void safetensors_open(SafeTensors* st, const char* path) {
    st->path = strdupCheck(path);
    st->fp = fopenCheck(path, "rb");
    fseekCheck(st->fp, 0, SEEK_END);
    long file_size = ftell(st->fp);
    if (file_size < 8) {
        die("safetensors file '%s': %ld bytes, too short to hold the 8-byte header length", path, file_size);
    }
    fseekCheck(st->fp, 0, SEEK_SET);
    unsigned char len_bytes[8];
    freadCheck(len_bytes, 1, 8, st->fp);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) { header_len = (header_len << 8) | len_bytes[i]; }
    if (header_len > (uint64_t)file_size - 8) {
        die("safetensors file '%s': header length %llu is larger than the %ld bytes that follow it (truncated, or not a safetensors file)",
            path, (unsigned long long)header_len, file_size - 8);
    }
    char* header = (char*)mallocCheck((size_t)header_len + 1);
    freadCheck(header, 1, (size_t)header_len, st->fp);
    header[header_len] = '\0';
    JsonValue root;
    char err[256];
    if (!json_parse(&root, header, (size_t)header_len, err, sizeof(err))) {
        die("safetensors file '%s': header is not valid JSON: %s", path, err);
    }
    if (root.type != JSON_OBJECT) {
        die("safetensors file '%s': header is a JSON %s, not an object", path, json_type_name(root.type));
    }

    st->data_start = 8 + (size_t)header_len;
    size_t data_size = (size_t)file_size - st->data_start;
    st->tensors = (SafeTensorInfo*)callocCheck((size_t)root.count, sizeof(SafeTensorInfo));
    st->num_tensors = 0;
    for (int i = 0; i < root.count; i++) {
        // free-form string metadata (e.g. {"format": "pt"}); nothing in it changes how the
        // tensors are read
        if (strcmp(root.keys[i], "__metadata__") == 0) { continue; }
        parse_tensor_info(&st->tensors[st->num_tensors], path, root.keys[i], &root.items[i], data_size);
        st->num_tensors++;
    }
    json_free(&root);
    free(header);

    // a repeated name would make the JSON reader keep only one of the two entries silently
    const char** names = (const char**)mallocCheck((size_t)st->num_tensors * sizeof(char*));
    for (int i = 0; i < st->num_tensors; i++) { names[i] = st->tensors[i].name; }
    qsort(names, (size_t)st->num_tensors, sizeof(char*), compare_names);
    for (int i = 1; i < st->num_tensors; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            die("safetensors file '%s', tensor '%s': name appears twice in the header", path, names[i]);
        }
    }
    free(names);

    // the format requires the tensors to tile the data area: an overlap or a gap means the
    // header and the data disagree
    qsort(st->tensors, (size_t)st->num_tensors, sizeof(SafeTensorInfo), compare_by_offsets);
    size_t covered = 0;
    for (int i = 0; i < st->num_tensors; i++) {
        const SafeTensorInfo* t = &st->tensors[i];
        if (t->begin < covered) {
            die("safetensors file '%s', tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s'",
                path, t->name, t->begin, t->end, st->tensors[i - 1].name);
        }
        if (t->begin > covered) {
            die("safetensors file '%s', tensor '%s': data_offsets [%zu, %zu] leave a gap of unused bytes before them",
                path, t->name, t->begin, t->end);
        }
        covered = t->end;
    }
    if (covered != data_size) {
        die("safetensors file '%s': the tensors cover %zu bytes of the %zu-byte data area (trailing bytes belong to no tensor)",
            path, covered, data_size);
    }
}

void safetensors_close(SafeTensors* st) {
    for (int i = 0; i < st->num_tensors; i++) { free(st->tensors[i].name); }
    free(st->tensors);
    fcloseCheck(st->fp);
    free(st->path);
}

const SafeTensorInfo* safetensors_find(const SafeTensors* st, const char* name) {
    for (int i = 0; i < st->num_tensors; i++) {
        if (strcmp(st->tensors[i].name, name) == 0) { return &st->tensors[i]; }
    }
    return NULL;
}

void safetensors_read_f32(float* out, const SafeTensors* st, const SafeTensorInfo* t) {
    size_t n = safetensors_numel(t);
    fseekCheck(st->fp, (long)(st->data_start + t->begin), SEEK_SET);
    if (t->dtype == ST_F32) {
        freadCheck(out, sizeof(float), n, st->fp);
    } else if (t->dtype == ST_F16 || t->dtype == ST_BF16) {
        uint16_t* raw = (uint16_t*)mallocCheck(n * sizeof(uint16_t));
        freadCheck(raw, sizeof(uint16_t), n, st->fp);
        for (size_t i = 0; i < n; i++) {
            out[i] = t->dtype == ST_F16 ? half_to_float(raw[i]) : bfloat16_to_float(raw[i]);
        }
        free(raw);
    } else {
        die("safetensors file '%s', tensor '%s': dtype %s cannot be read as floats (F32, F16 and BF16 can)",
            st->path, t->name, dtype_names[t->dtype]);
    }
}

// ----------------------------------------------------------------------------
// writer

void safetensors_writer_init(SafeTensorsWriter* w) {
    w->num_tensors = 0;
    w->tensors = NULL;
    w->data = NULL;
}

void safetensors_writer_add(SafeTensorsWriter* w, const char* name, const float* data, int ndim, const size_t* shape) {
    if (ndim < 0 || ndim > SAFETENSORS_MAX_DIMS) {
        die("safetensors writer, tensor '%s': %d dimensions, at most %d supported", name, ndim, SAFETENSORS_MAX_DIMS);
    }
    SafeTensorInfo* t = arraddnptr(w->tensors, 1);
    t->name = strdupCheck(name);
    t->dtype = ST_F32;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; }
    t->begin = w->num_tensors == 0 ? 0 : w->tensors[w->num_tensors - 1].end;
    t->end = t->begin + safetensors_numel(t) * sizeof(float);
    arrput(w->data, data);
    w->num_tensors++;
}

void safetensors_writer_write(const SafeTensorsWriter* w, const char* path) {
    char* header = NULL;
    size_t header_len = 0;
    FILE* hp = open_memstream(&header, &header_len);
    if (hp == NULL) { die("safetensors writer: could not open a memory stream for the header of '%s'", path); }
    // transformers refuses a checkpoint whose metadata lacks a known "format"
    fprintf(hp, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < w->num_tensors; i++) {
        const SafeTensorInfo* t = &w->tensors[i];
        fprintf(hp, ",");
        json_write_string(hp, t->name);
        fprintf(hp, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) { fprintf(hp, "%s%zu", d > 0 ? "," : "", t->shape[d]); }
        fprintf(hp, "],\"data_offsets\":[%zu,%zu]}", t->begin, t->end);
    }
    fprintf(hp, "}");
    fcloseCheck(hp);

    // spaces after the JSON (allowed by the format) put the data area on an 8-byte boundary,
    // so a reader that maps the file can use the floats in place
    size_t padded_len = header_len + (8 - (8 + header_len) % 8) % 8;
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) { len_bytes[i] = (unsigned char)((uint64_t)padded_len >> (8 * i)); }
    AtomicFile af;  // a killed export never leaves half a weights file under the final name
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(len_bytes, 1, 8, fp);
    fwriteCheck(header, 1, header_len, fp);
    for (size_t i = header_len; i < padded_len; i++) { fputc(' ', fp); }
    for (int i = 0; i < w->num_tensors; i++) {
        fwriteCheck(w->data[i], sizeof(float), safetensors_numel(&w->tensors[i]), fp);
    }
    atomicCommit(&af);
    free(header);
}

void safetensors_writer_free(SafeTensorsWriter* w) {
    for (int i = 0; i < w->num_tensors; i++) { free(w->tensors[i].name); }
    arrfree(w->tensors);
    arrfree(w->data);
    safetensors_writer_init(w);
}
