// compiled and linked by the Makefile to find out whether OpenBLAS is usable here
#include <cblas.h>
int main(void) {
    float a = 1.0f, b = 1.0f, c = 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return c == 1.0f ? 0 : 1;
}
