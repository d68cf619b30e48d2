// compiled and linked by nvcc in the Makefile to find out whether the CUDA runtime and cuBLAS
// are usable here (no GPU needed: it is never run)
#include <cuda_runtime.h>
#include <cublas_v2.h>
int main(void) {
    int n = 0;
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) { return 1; }
    cublasDestroy(handle);
    return cudaGetDeviceCount(&n) == cudaSuccess ? 0 : 1;
}
