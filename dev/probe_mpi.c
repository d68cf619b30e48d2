// compiled and linked by the Makefile to find out whether MPI is usable here (common/dist.c
// needs MPI_Comm_split_type, MPI-3); not run: starting MPI is mpirun's business
#include <mpi.h>
int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    return MPI_Finalize();
}
