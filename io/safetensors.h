/*
 * io/safetensors.h — the Hugging Face safetensors format: reading (F32, F16 and BF16 tensors
 * converted to fp32) and writing (F32).
 *
 * A file is: 8 bytes, the little-endian uint64 length N of a JSON header; N bytes of JSON
 * {"name": {"dtype": "F16", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {string: string}}; then the data area, in which each tensor owns the
 * bytes [begin, end) in row-major order, little-endian. The tensors must tile the data
 * area exactly: no overlap, no gap.
 *
 * Every check is done when the file is opened, so a bad file stops the program before any
 * weight is used, with a message that names the file and the tensor.
 */
#ifndef ZELO_SAFETENSORS_H
#define ZELO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SAFETENSORS_MAX_DIMS 8

// every dtype of the format that has a whole number of bytes per element; a file may hold
// any of them (e.g. the I64 position_ids buffer of BERT checkpoints), only the float ones
// can be read as fp32
typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_NUM_DTYPES
} SafeDtype;

typedef struct {
    char* name;
    SafeDtype dtype;
    int ndim;
    size_t shape[SAFETENSORS_MAX_DIMS];  // (ndim,)
    size_t begin, end;                   // byte range inside the data area
} SafeTensorInfo;

typedef struct {
    char* path;
    FILE* fp;                 // kept open: tensors are read one at a time, on demand
    size_t data_start;        // file offset of the data area (8 + header length)
    int num_tensors;
    SafeTensorInfo* tensors;  // (num_tensors,) sorted by begin
} SafeTensors;

// opens and validates a whole file; dies with a message naming the file (and tensor) if
// anything is wrong
void safetensors_open(SafeTensors* st, const char* path);
void safetensors_close(SafeTensors* st);
// the tensor of that name, or NULL
const SafeTensorInfo* safetensors_find(const SafeTensors* st, const char* name);
size_t safetensors_numel(const SafeTensorInfo* t);
// reads one F32/F16/BF16 tensor into out (numel floats); dies for any other dtype
void safetensors_read_f32(float* out, const SafeTensors* st, const SafeTensorInfo* t);

// exact conversions of IEEE binary16 and bfloat16 bit patterns to fp32 (both fit in fp32
// without rounding, subnormals, infinities, signed zeros and NaN payloads included)
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

// collects F32 tensors, then writes them in the order they were added
typedef struct {
    int num_tensors;
    SafeTensorInfo* tensors;  // stb_ds array (num_tensors,): offsets assigned as tensors are added
    const float** data;       // stb_ds array (num_tensors,): borrowed: must stay valid until the write
} SafeTensorsWriter;

void safetensors_writer_init(SafeTensorsWriter* w);
void safetensors_writer_add(SafeTensorsWriter* w, const char* name, const float* data, int ndim, const size_t* shape);
void safetensors_writer_write(const SafeTensorsWriter* w, const char* path);
void safetensors_writer_free(SafeTensorsWriter* w);

#endif // ZELO_SAFETENSORS_H
