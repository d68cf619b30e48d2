/*
 * common/dist.c — dist.h over MPI (USE_MPI) or as one process. See dist.h.
 */
#include "common/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/utils.h"

#ifdef USE_MPI
#include <mpi.h>
#endif
#ifdef USE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

Dist dist = { 0, 1, 0, 1 };

#ifdef USE_NCCL
#define ncclCheck(call) nccl_check((call), #call, __FILE__, __LINE__)
static void nccl_check(ncclResult_t status, const char* what, const char* file, int line) {
    if (status != ncclSuccess) { die_at(file, line, "%s failed: %s", what, ncclGetErrorString(status)); }
}
#define cudaCheck(call) cuda_check((call), #call, __FILE__, __LINE__)
static void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
    if (status != cudaSuccess) { die_at(file, line, "%s failed: %s", what, cudaGetErrorString(status)); }
}
#endif

#ifdef USE_MPI
#define mpiCheck(call) mpi_check((call), #call, __FILE__, __LINE__)
static void mpi_check(int status, const char* what, const char* file, int line) {
    if (status == MPI_SUCCESS) { return; }
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(status, text, &len);
    die_at(file, line, "%s failed: %s", what, text);
}
static int mpi_started;
#endif
#ifdef USE_NCCL
static ncclComm_t nccl_comm;  // set up by the first dist_allreduce_sum_device
static int nccl_ready;
#endif

// stderr as it was before dist_mute_others (-1: not muted)
static int saved_stderr = -1;

void dist_mute_others(void) {
    if (dist.rank == 0) { return; }
    fflush(stdout);
    fflush(stderr);
    int null_fd = open("/dev/null", O_WRONLY);
    saved_stderr = dup(STDERR_FILENO);
    if (null_fd < 0 || saved_stderr < 0 || dup2(null_fd, STDOUT_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0) {
        die("could not mute rank %d's output: %s", dist.rank, strerror(errno));
    }
    close(null_fd);
}

// common/utils.h's hooks: an error on one rank of several names the rank and ends the job
const char* dist_error_begin(void) {
    static char tag[64];
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        saved_stderr = -1;
    }
    if (dist.size == 1) { return ""; }
    snprintf(tag, sizeof(tag), " (rank %d of %d)", dist.rank, dist.size);
    return tag;
}

void dist_error_exit(void) {
#ifdef USE_MPI
    if (mpi_started && dist.size > 1) {
        fflush(stdout);
        fflush(stderr);
        // ends every rank, those waiting in a collective included; mpirun exits non-zero
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
#endif
}

void dist_init(int* argc, char*** argv) {
#ifdef USE_MPI
    // only the main thread calls MPI; OpenMP threads work between the calls
    int provided = 0;
    mpiCheck(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    mpi_started = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &dist.size));
    MPI_Comm local;
    mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist.rank, MPI_INFO_NULL, &local));
    mpiCheck(MPI_Comm_rank(local, &dist.local_rank));
    mpiCheck(MPI_Comm_size(local, &dist.local_size));
    mpiCheck(MPI_Comm_free(&local));
    // an error returned by a call is ours to report (mpiCheck), by file and line
    mpiCheck(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
#else
    (void)argc;
    (void)argv;
    // mpirun starting N copies of a build without MPI would have N single processes write
    // one run directory at once: the launchers' variables (Open MPI's, then MPICH's) say so
    const char* launched[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE" };
    for (int i = 0; i < 2; i++) {
        const char* n = getenv(launched[i]);
        if (n != NULL && atoi(n) > 1) {
            die("started by mpirun as one of %s processes (%s), but this build has no MPI: each would run "
                "alone in the same run directory. Build with MPI (libopenmpi-dev; see the Makefile) or run "
                "one process", n, launched[i]);
        }
    }
#endif
}

void dist_finalize(void) {
#ifdef USE_NCCL
    if (nccl_ready) {
        ncclCommDestroy(nccl_comm);
        nccl_ready = 0;
    }
#endif
#ifdef USE_MPI
    if (mpi_started) {
        mpiCheck(MPI_Finalize());
        mpi_started = 0;
    }
#endif
}

const char* dist_describe(void) {
#ifdef USE_MPI
    static char description[MPI_MAX_LIBRARY_VERSION_STRING + 8];
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    // the first line of the library's own version text ("Open MPI v4.1.4, package: ...")
    size_t cut = strcspn(version, ",\n");
    snprintf(description, sizeof(description), "MPI (%.*s)", (int)cut, version);
    return description;
#else
    return "none (this build runs as one process)";
#endif
}

void dist_share(int64_t* start, int64_t* end, int64_t n, int rank) {
    *start = n * rank / dist.size;
    *end = n * (rank + 1) / dist.size;
}

void dist_barrier(void) {
#ifdef USE_MPI
    if (dist.size > 1) { mpiCheck(MPI_Barrier(MPI_COMM_WORLD)); }
#endif
}

#ifdef USE_MPI
// MPI counts are int: a large buffer moves in pieces of at most 2^30 items
#define MPI_PIECE ((size_t)1 << 30)
static void reduce_then_broadcast(void* buf, size_t n, size_t item_bytes, MPI_Datatype type) {
    char* bytes = (char*)buf;
    for (size_t at = 0; at < n; at += MPI_PIECE) {
        int k = (int)(n - at < MPI_PIECE ? n - at : MPI_PIECE);
        void* piece = bytes + at * item_bytes;
        mpiCheck(MPI_Reduce(dist.rank == 0 ? MPI_IN_PLACE : piece, piece, k, type, MPI_SUM, 0, MPI_COMM_WORLD));
        mpiCheck(MPI_Bcast(piece, k, type, 0, MPI_COMM_WORLD));
    }
}
#endif

void dist_allreduce_sum_float(float* buf, size_t n) {
#ifdef USE_MPI
    if (dist.size > 1) { reduce_then_broadcast(buf, n, sizeof(float), MPI_FLOAT); }
#else
    (void)buf;
    (void)n;
#endif
}

void dist_allreduce_sum_double(double* buf, size_t n) {
#ifdef USE_MPI
    if (dist.size > 1) { reduce_then_broadcast(buf, n, sizeof(double), MPI_DOUBLE); }
#else
    (void)buf;
    (void)n;
#endif
}

void dist_broadcast(void* buf, size_t bytes, int root) {
#ifdef USE_MPI
    if (dist.size == 1) { return; }
    for (size_t at = 0; at < bytes; at += MPI_PIECE) {
        int k = (int)(bytes - at < MPI_PIECE ? bytes - at : MPI_PIECE);
        mpiCheck(MPI_Bcast((char*)buf + at, k, MPI_BYTE, root, MPI_COMM_WORLD));
    }
#else
    (void)buf;
    (void)bytes;
    (void)root;
#endif
}

void dist_allgather_int64(int64_t* out, int64_t mine) {
#ifdef USE_MPI
    if (dist.size > 1) {
        mpiCheck(MPI_Allgather(&mine, 1, MPI_INT64_T, out, 1, MPI_INT64_T, MPI_COMM_WORLD));
        return;
    }
#endif
    out[0] = mine;
}

void dist_gatherv(void* buf, const int64_t* displs, const int64_t* counts, size_t item_bytes, int root) {
#ifdef USE_MPI
    if (dist.size == 1) { return; }
    // counted in items of item_bytes, so that only the item count must fit in an int
    MPI_Datatype item;
    mpiCheck(MPI_Type_contiguous((int)item_bytes, MPI_BYTE, &item));
    mpiCheck(MPI_Type_commit(&item));
    int* c = (int*)mallocCheck((size_t)dist.size * sizeof(int));
    int* d = (int*)mallocCheck((size_t)dist.size * sizeof(int));
    for (int r = 0; r < dist.size; r++) {
        if (counts[r] < 0 || displs[r] < 0 || displs[r] + counts[r] > INT_MAX) {
            die("dist_gatherv: rank %d's block (%lld items from %lld) is beyond what one MPI call moves", r,
                (long long)counts[r], (long long)displs[r]);
        }
        c[r] = (int)counts[r];
        d[r] = (int)displs[r];
    }
    char* mine = (char*)buf + (size_t)displs[dist.rank] * item_bytes;
    if (root < 0) {
        mpiCheck(MPI_Allgatherv(MPI_IN_PLACE, 0, item, buf, c, d, item, MPI_COMM_WORLD));
    } else {
        mpiCheck(MPI_Gatherv(dist.rank == root ? MPI_IN_PLACE : mine, c[dist.rank], item, buf, c, d, item, root,
                             MPI_COMM_WORLD));
    }
    free(c);
    free(d);
    mpiCheck(MPI_Type_free(&item));
#else
    (void)buf;
    (void)displs;
    (void)counts;
    (void)item_bytes;
    (void)root;
#endif
}

void dist_gather_blocks(void* out, const void* mine, int64_t n, size_t item_bytes) {
    int64_t start, end;
    dist_share(&start, &end, n, dist.rank);
    if (dist.rank == 0) { memcpy((char*)out + (size_t)start * item_bytes, mine, (size_t)(end - start) * item_bytes); }
#ifdef USE_MPI
    if (dist.size == 1) { return; }
    // rank 0 receives each other rank's block in turn, counted in items so that only the
    // item count must fit in an int
    MPI_Datatype item;
    mpiCheck(MPI_Type_contiguous((int)item_bytes, MPI_BYTE, &item));
    mpiCheck(MPI_Type_commit(&item));
    if (dist.rank == 0) {
        for (int r = 1; r < dist.size; r++) {
            dist_share(&start, &end, n, r);
            if (end - start > INT_MAX) { die("dist_gather_blocks: rank %d's block of %lld items is beyond one MPI call", r, (long long)(end - start)); }
            mpiCheck(MPI_Recv((char*)out + (size_t)start * item_bytes, (int)(end - start), item, r, 0, MPI_COMM_WORLD,
                              MPI_STATUS_IGNORE));
        }
    } else {
        if (end - start > INT_MAX) { die("dist_gather_blocks: a block of %lld items is beyond one MPI call", (long long)(end - start)); }
        mpiCheck(MPI_Send(mine, (int)(end - start), item, 0, 0, MPI_COMM_WORLD));
    }
    mpiCheck(MPI_Type_free(&item));
#endif
}

void dist_allgather_blocks(void* buf, int64_t n, size_t item_bytes) {
    if (dist.size == 1) { return; }
    int64_t* displs = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    int64_t* counts = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    for (int r = 0; r < dist.size; r++) {
        int64_t end;
        dist_share(&displs[r], &end, n, r);
        counts[r] = end - displs[r];
    }
    dist_gatherv(buf, displs, counts, item_bytes, -1);
    free(displs);
    free(counts);
}


int dist_has_nccl(void) {
#ifdef USE_NCCL
    return 1;
#else
    return 0;
#endif
}

int dist_bind_gpu(void) {
#ifdef USE_NCCL
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // no driver: no GPU, an answer rather than an error
        return 0;
    }
    if (dist.local_size > n) { return 0; }
    cudaCheck(cudaSetDevice(dist.local_rank));
    return 1;
#else
    return 0;
#endif
}

void dist_allreduce_sum_device(float* buf, size_t n, void* stream) {
    if (dist.size == 1) { return; }
#ifdef USE_NCCL
    if (!nccl_ready) {
        ncclUniqueId id;
        if (dist.rank == 0) { ncclCheck(ncclGetUniqueId(&id)); }
        dist_broadcast(&id, sizeof(id), 0);
        ncclCheck(ncclCommInitRank(&nccl_comm, dist.size, id, dist.rank));
        nccl_ready = 1;
    }
    // NCCL's ring reduces each chunk once and copies it to every rank: the same bits everywhere
    ncclCheck(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, nccl_comm, (cudaStream_t)stream));
#else
    (void)buf;
    (void)n;
    (void)stream;
    die("gradients on GPUs across %d processes need NCCL, which this build lacks", dist.size);
#endif
}
