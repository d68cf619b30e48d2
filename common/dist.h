/*
 * common/dist.h — the processes of one run (`mpirun -np N ./train_zelo`): who am I, how many
 * are we, and the few collective operations the stages need. Built on MPI when the Makefile
 * finds it (USE_MPI), else as one process with the same API (size 1, every collective a copy
 * or nothing), so that a build without MPI runs exactly as before.
 *
 * Work is shared out by contiguous blocks (dist_share): rank r takes items
 * [n·r/size, n·(r+1)/size). Every result that must not depend on the number of ranks is
 * computed per item from the item alone (per-battle seeds, per-query fits), then gathered
 * in item order, so N ranks give one process's bytes.
 *
 * Gradients on a GPU are summed by NCCL (USE_NCCL: a build with both MPI and NCCL), its
 * unique id broadcast through MPI; each rank takes the GPU of its local rank.
 *
 * An error on any rank (die(), common/utils.h) names the rank and ends the whole job through
 * MPI_Abort: one rank's bad input never leaves the others waiting in a collective.
 */
#ifndef ZELO_DIST_H
#define ZELO_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank;        // 0..size-1; rank 0 alone prints and writes files
    int size;        // processes of the run
    int local_rank;  // rank among the processes of this machine (picks the GPU)
    int local_size;  // processes on this machine
} Dist;

// the one Dist of the process, set by dist_init (rank 0 of 1 before it)
extern Dist dist;

// starts MPI (when built with it) and fills `dist`; call first in main
void dist_init(int* argc, char*** argv);
// ranks other than 0 write their stdout and stderr nowhere from now on (rank 0 alone prints);
// an error (die) still reaches stderr, naming the rank
void dist_mute_others(void);
// ends MPI; call before a successful exit (an error exits through die, which aborts the job)
void dist_finalize(void);
// "MPI (Open MPI v4.1.4)" or "none (one process)": what the build has
const char* dist_describe(void);

// the block of n items rank r takes: [*start, *end)
void dist_share(int64_t* start, int64_t* end, int64_t n, int rank);
void dist_barrier(void);
// buf (n floats / doubles) becomes the sum over ranks of every rank's buf, on every rank.
// Reduced to rank 0 and broadcast from there, so that every rank holds the same bits (an
// allreduce may associate the sum differently on different ranks, and the ranks' weights,
// updated from it, must stay equal)
void dist_allreduce_sum_float(float* buf, size_t n);
void dist_allreduce_sum_double(double* buf, size_t n);
// bytes of buf on root copied to every rank
void dist_broadcast(void* buf, size_t bytes, int root);
// out (size,) gets every rank's value, on every rank
void dist_allgather_int64(int64_t* out, int64_t mine);
// buf holds (total,) items of item_bytes; rank r has filled counts[r] items from displs[r]
// (displs and counts: (size,), the same on every rank). Afterwards root holds every rank's
// items at their places (root < 0: every rank does). Items outside the ranks' ranges are
// left as they were.
void dist_gatherv(void* buf, const int64_t* displs, const int64_t* counts, size_t item_bytes, int root);
// rank 0's out (n items) gets every rank's block of dist_share (mine: this rank's block alone);
// out is not touched on other ranks (NULL there is fine)
void dist_gather_blocks(void* out, const void* mine, int64_t n, size_t item_bytes);
// dist_gatherv of dist_share's blocks of n items, to every rank
void dist_allgather_blocks(void* buf, int64_t n, size_t item_bytes);

// a GPU build's gradient sum: buf (n floats) on this rank's GPU summed in place over the ranks
// by NCCL on the CUDA stream given (cudaStream_t); sets up the communicator on first use.
// Dies in a build without NCCL when size > 1 (train_zelo refuses that set-up first).
void dist_allreduce_sum_device(float* buf, size_t n, void* stream);
// a multi-process GPU run: this process takes the GPU of its local rank (before the model moves
// there) and returns 1; returns 0, taking none, when its machine has fewer GPUs than processes
// or the build has no NCCL
int dist_bind_gpu(void);
// whether this build can sum gradients on GPUs (USE_NCCL)
int dist_has_nccl(void);

#endif // ZELO_DIST_H
