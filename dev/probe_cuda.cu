// compiled, linked and run by the Makefile to find out whether the CUDA runtime, cuBLAS and
// cuBLASLt are usable here: that the libraries link, and that the program then finds them when
// it starts. No call needs a GPU; whether one is visible is train_zelo's --device question.
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cublasLt.h>
int main(void) {
    int runtime = 0, major = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) { return 1; }
    if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS || major <= 0) { return 1; }
    return cublasLtGetVersion() > 0 ? 0 : 1;
}
