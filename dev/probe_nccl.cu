// compiled, linked and run by the Makefile to find out whether NCCL is usable here (gradients
// summed across GPUs, common/dist.c); ncclGetVersion needs no GPU
#include <nccl.h>
int main(void) {
    int version = 0;
    return ncclGetVersion(&version) == ncclSuccess && version > 0 ? 0 : 1;
}
