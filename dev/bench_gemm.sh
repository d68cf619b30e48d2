#!/usr/bin/env bash
# cpu/gemm.c against OpenBLAS's sgemm, one thread each, on the products of a MiniLM-L6 training
# step (dev/bench_gemm.c): with the kernels OpenBLAS picks (or OPENBLAS_CORETYPE names),
# and on a CPU with AVX-512 also with OpenBLAS's AVX-512 kernels (SKYLAKEX).
set -eu
cd "$(dirname "$0")/.."
if ! make -s build/bench_gemm 2>/dev/null; then echo "bench_gemm: needs a build with OpenBLAS (libopenblas-dev)"; exit 0; fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "--- OpenBLAS kernels: ${OPENBLAS_CORETYPE:-chosen by OpenBLAS}"
./build/bench_gemm
if grep -q -w avx512f /proc/cpuinfo && [ "${OPENBLAS_CORETYPE,,}" != skylakex ]; then
    echo "--- OpenBLAS kernels: SKYLAKEX (AVX-512)"
    OPENBLAS_CORETYPE=SKYLAKEX ./build/bench_gemm
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
