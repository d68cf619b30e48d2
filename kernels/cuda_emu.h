/*
 * kernels/cuda_emu.h — runs CUDA kernels on the CPU, from the same source, so that tests and
 * CI check every kernel on machines without a GPU.
 *
 * How a .cu file is built with it (the Makefile's "CUDA emulator" block does all of this):
 *   1. each .cu/.cuh is rewritten line for line (a sed in the Makefile, into build/emu/):
 *        k<<<grid, block, smem, stream>>>(args)  ->  k ^ cuda_emu::Config(__FILE__, __LINE__, grid, block, smem, stream)(args)
 *        extern __shared__ T name[];             ->  T* name = cuda_emu::dynamic_smem<T>();
 *      with "#line 1" on top, so diagnostics and __LINE__ name the original file and line;
 *   2. g++ -std=c++17 -x c++ -DCUDA_EMULATOR -include kernels/cuda_emu.h -I$(CUDA)/include.
 * The toolkit's own headers give the types (dim3, float4, cudaError_t, cudaDeviceProp,
 * __nv_bfloat16 and its host conversions); this header gives the kernel-side built-ins and
 * implements the runtime calls listed below on host memory.
 *
 * Execution: a launch runs to completion before it returns (streams and events are ordered
 * trivially). Blocks run on OpenMP threads, one block at a time per thread; within a block each
 * CUDA thread is a fiber (a hand-written x86-64 context switch, ucontext elsewhere) with its own
 * stack (236 KB at least, a guard page below), so __syncthreads is a real barrier and a warp
 * collective waits for exactly the lanes of its mask. The scheduler runs the fibers of a block
 * in order of threadIdx, each until it waits; CUDA_EMU_REVERSE=1 (read at each launch) runs
 * them in the reverse order, so a kernel whose result depends on the order (a race) gives a
 * different result.
 *
 * Kernel code may use: threadIdx, blockIdx, blockDim, gridDim, warpSize; __global__,
 * __device__, __host__, __forceinline__, __restrict__, __launch_bounds__, __align__;
 * __syncthreads (and _count/_and/_or), __syncwarp, __shfl_sync, __shfl_up_sync,
 * __shfl_down_sync, __shfl_xor_sync (values up to 8 bytes, width a power of two up to 32),
 * __ballot_sync, __any_sync, __all_sync; static __shared__ arrays inside functions and one
 * `extern __shared__ T name[];` per kernel; atomicAdd (int, unsigned, unsigned long long,
 * float, double), atomicSub, atomicExch, atomicMax/atomicMin (int, unsigned), atomicCAS (int,
 * unsigned, unsigned long long), __threadfence; __ldg, __ldcs, __stcs; the C math functions
 * and CUDA's intrinsics (__expf, __logf, __fdividef, rsqrtf, __saturatef, __int_as_float, ...),
 * min/max; float4/make_float4 and the other vector types; cuda_bf16.h / cuda_fp16.h.
 * It may not use: inline PTX, mma/wgmma/TMA, cooperative groups, textures, __activemask,
 * warp-synchronous code without the _sync collectives, spin-waits on other threads (a fiber
 * runs until it waits in a barrier or collective), `extern __shared__` at file scope,
 * `static __shared__` (write `__shared__`), __shared__ variables with initialisers or
 * constructors, dynamic parallelism; a template kernel is launched with its template
 * arguments written out (k<float><<<...>>>, not deduced), and `>>>` appears only in launches.
 * Static __shared__ arrays are not poisoned: they hold what the previous block on that OS
 * thread left (dynamic shared memory is poisoned for each block).
 * Rules checked at run time, each stopping the program with a message and exit status 1:
 * a __syncthreads that not every thread of the block reaches (some exited, or wait at another
 * __syncthreads or collective): "N threads wait at <what> (file:line)" per place, also for a
 * collective that a lane of its mask never reaches; a collective whose mask omits the caller,
 * whose width is not a power of two, or whose lanes disagree on the operation. As the guide
 * says, lanes of the mask that exited (or that a partial last warp lacks) take no part; a
 * shuffle reading such a lane, or one outside its mask, gets 0xFF bytes (NaN, or -1).
 * Memory: cudaMalloc'd and dynamic shared memory start as 0xFF bytes (NaN in float), so an
 * output a kernel forgot to write shows. cudaMemcpy checks that each pointer lies inside a
 * cudaMalloc allocation exactly when its kind says device. Kernels can read host pointers
 * here though not on a GPU: that mistake shows only on a GPU.
 * Launch limits (cudaGetLastError reports, the kernel does not run): block dims up to
 * 1024 x 1024 x 64 and 1024 threads, grid up to 2^31-1 x 65535 x 65535 (all nonzero):
 * cudaErrorInvalidConfiguration; dynamic shared memory over 48 KB, or over what
 * cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, n) allowed (n up to
 * 227 KB, as on an H100): cudaErrorInvalidValue.
 * ThreadSanitizer (-fsanitize=thread): blocks then run one by one on the calling thread and
 * each fiber is a TSan fiber; __syncthreads and __syncwarp are happens-before edges, shuffles
 * are not (as on the GPU, they do not order memory), so a missing __syncthreads is reported as
 * a data race. Blocks are ordered after one another for TSan (races between blocks are not
 * reported), because they reuse the same shared memory and stacks.
 * Runtime calls: cudaMalloc/Free, cudaMallocHost/FreeHost, cudaMemcpy(Async), cudaMemset(Async),
 * cudaMemcpyTo/FromSymbol, cudaStream{Create,CreateWithFlags,Destroy,Synchronize,Query,WaitEvent},
 * cudaDeviceReset, cudaEvent{Create,
 * CreateWithFlags,Destroy,Record,Synchronize,Query,ElapsedTime}, cudaDeviceSynchronize,
 * cudaGet/PeekAtLastError, cudaGetErrorString/Name, cudaGetDeviceCount (1), cudaGet/SetDevice,
 * cudaGetDeviceProperties and cudaDeviceGetAttribute (H100 numbers, the name says emulator),
 * cudaFuncSetAttribute, cudaMemGetInfo. No cuBLAS: callers use the project's matmul wrapper.
 */
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <map>
#include <memory> // before __noinline__ is defined: shared_ptr_base.h writes __attribute__((__noinline__))
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#define CUDA_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUDA_EMU_TSAN 1
#endif
#endif
#ifndef CUDA_EMU_TSAN
#define CUDA_EMU_TSAN 0
#endif
// the hand-written switch on x86-64; ucontext elsewhere, or when CUDA_EMU_UCONTEXT is defined
#if defined(__x86_64__) && !defined(CUDA_EMU_UCONTEXT)
#define CUDA_EMU_ASM_SWITCH 1
#else
#define CUDA_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

// ---- keywords: the toolkit's host_defines.h turns them into GCC attributes it ignores ----
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __managed__
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
// one copy per OS thread, which runs one block at a time: per-block storage
#define __shared__ static thread_local
#define __noinline__ __attribute__((noinline))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __align__
#define __align__(n) __attribute__((aligned(n)))
#endif
static constexpr int warpSize = 32;

// emulator internals touch state that fibers share; TSan must see only the kernel's own accesses
#if CUDA_EMU_TSAN
#define CUDA_EMU_INTERNAL __attribute__((no_sanitize_thread, noinline))
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#else
#define CUDA_EMU_INTERNAL
#endif

namespace cuda_emu {

enum { RUNNABLE, WAIT_BAR, WAIT_WARP, EXITED };
enum { OP_SHFL, OP_UP, OP_DOWN, OP_XOR, OP_BALLOT, OP_ANY, OP_ALL, OP_SYNCWARP };
static const char* const op_names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                       "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp"};
static const size_t STACK_BYTES = 256 * 1024;

struct Fiber {
    void* sp;               // saved stack pointer while switched out
    uint3 tid;
    int lane, warp, state;
    // where it waits: for the scheduler and for the report of a stuck block
    const char* file;
    int line, op, arg, width;
    unsigned mask;
    unsigned long long in, out; // a warp collective's operand and result (up to 8 bytes)
    void* tsan;
#if !CUDA_EMU_ASM_SWITCH
    ucontext_t uc;
#endif
};

struct Block {
    Fiber* fibers;
    int n, exited, reverse;
    uint3 idx;
    dim3 dim, grid;
    unsigned char* smem;
    void (*fn)(void*);
    void* ctx;
    const char* launch_file;
    int launch_line;
    // __syncthreads: arrivals of the current generation, where the first one waits
    int arrived, bar_line, bar_mixed, bar_count, bar_result[2];
    unsigned bar_gen;
    const char* bar_file;
    unsigned warp_waiting[32], warp_exited[32]; // per warp: lanes waiting in a collective, lanes exited
    char bar_sync[2], warp_sync[32], done_sync; // TSan happens-before addresses
};

// one per OS thread: the fiber stacks, dynamic shared memory and the scheduler's context
struct Worker {
    char* stacks;
    int nstacks;
    Fiber* fibers;
    unsigned char* smem;
    size_t smem_cap;
    void* sched_sp;
    void* tsan_self;
#if !CUDA_EMU_ASM_SWITCH
    ucontext_t sched_uc;
#endif
};

inline thread_local Worker t_worker;
inline thread_local Block* t_block;
inline thread_local Fiber* t_cur;
inline thread_local cudaError_t t_last_error = cudaSuccess;

inline std::mutex g_mutex; // guards the two maps below
inline std::map<uintptr_t, size_t> g_allocs;        // cudaMalloc'd start -> bytes
inline std::map<const void*, int> g_max_dyn_smem;   // kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize

// a broken rule of CUDA: the message, then exit status 1 (not abort: the tests see a refusal)
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda_emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    _exit(1);
}

// ---- context switch ----
#if CUDA_EMU_ASM_SWITCH
extern "C" void cuda_emu_switch(void** save_sp, void* new_sp);
extern "C" void cuda_emu_fiber_entry(void);
// saves the callee-saved registers on the old stack, stores its pointer, loads the new one and
// pops the registers saved there; a new fiber's stack is laid out so that the first switch
// "returns" into cuda_emu_fiber_entry with the fiber in r12 and its main function in r13.
// Weak symbols: every translation unit that includes this header defines them.
asm(".text\n"
    ".weak cuda_emu_switch\n.type cuda_emu_switch,@function\ncuda_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size cuda_emu_switch,.-cuda_emu_switch\n"
    ".weak cuda_emu_fiber_entry\n.type cuda_emu_fiber_entry,@function\ncuda_emu_fiber_entry:\n"
    "  movq %r12, %rdi\n  callq *%r13\n  ud2\n"
    ".size cuda_emu_fiber_entry,.-cuda_emu_fiber_entry\n");
#endif

// leaves fiber f (waiting or exited) for the next runnable fiber in schedule order, directly:
// one switch per wait instead of two through the scheduler, which gets control back only when
// no fiber can run (the block is done, or stuck)
CUDA_EMU_INTERNAL inline void switch_away(Fiber* f) {
    Block* b = t_block;
    Worker& w = t_worker;
    int n = b->n, j = (int)(f - b->fibers);
    Fiber* next = nullptr;
    for (int k = 0; k < n; k++) {
        j = b->reverse ? (j == 0 ? n - 1 : j - 1) : (j == n - 1 ? 0 : j + 1);
        if (b->fibers[j].state == RUNNABLE) { next = &b->fibers[j]; break; }
    }
    t_cur = next;
#if CUDA_EMU_TSAN
    // no happens-before between fibers: only barriers order them
    __tsan_switch_to_fiber(next ? next->tsan : w.tsan_self, 1);
#endif
#if CUDA_EMU_ASM_SWITCH
    cuda_emu_switch(&f->sp, next ? next->sp : w.sched_sp);
#else
    swapcontext(&f->uc, next ? &next->uc : &w.sched_uc);
#endif
}

// ---- the report of a block that cannot continue ----
[[noreturn]] CUDA_EMU_INTERNAL inline void stuck(Block* b, const char* why) {
    fflush(stdout);
    fprintf(stderr, "cuda_emu: kernel launched at %s:%d, block (%u,%u,%u) of %d threads: %s\n",
            b->launch_file, b->launch_line, b->idx.x, b->idx.y, b->idx.z, b->n, why);
    // one line per place where threads wait, in order of the first thread there
    for (int i = 0; i < b->n; i++) {
        Fiber* f = &b->fibers[i];
        if (f->state == RUNNABLE) { continue; }
        int count = 0, seen_before = 0;
        for (int j = 0; j < b->n; j++) {
            Fiber* g = &b->fibers[j];
            int same = g->state == f->state && (f->state == EXITED ||
                       (g->line == f->line && g->op == f->op && g->mask == f->mask && !strcmp(g->file, f->file)));
            if (same) { count++; if (j < i) { seen_before = 1; } }
        }
        if (seen_before) { continue; }
        const char* threads = count == 1 ? "thread" : "threads";
        if (f->state == EXITED) {
            fprintf(stderr, "  %d %s %s exited (the first: thread %d)\n", count, threads, count == 1 ? "has" : "have", i);
        } else if (f->state == WAIT_BAR) {
            fprintf(stderr, "  %d %s %s at __syncthreads (%s:%d) (the first: thread %d)\n", count, threads,
                    count == 1 ? "waits" : "wait", f->file, f->line, i);
        } else {
            fprintf(stderr, "  %d %s %s at %s(mask 0x%08x) (%s:%d) (the first: thread %d)\n", count, threads,
                    count == 1 ? "waits" : "wait", op_names[f->op], f->mask, f->file, f->line, i);
        }
    }
    _exit(1);
}

// ---- __syncthreads ----
enum { BAR_PLAIN, BAR_COUNT, BAR_AND, BAR_OR };
CUDA_EMU_INTERNAL inline int syncthreads(const char* file, int line, int kind, int pred) {
    Block* b = t_block;
    Fiber* f = t_cur;
    unsigned gen = b->bar_gen;
    (void)gen; // names the happens-before address under TSan
#if CUDA_EMU_TSAN
    __tsan_release(&b->bar_sync[gen & 1]);
#endif
    if (b->arrived == 0) {
        b->bar_file = file;
        b->bar_line = line;
        b->bar_count = 0;
    } else if (line != b->bar_line || (file != b->bar_file && strcmp(file, b->bar_file))) {
        b->bar_mixed = 1;
    }
    b->bar_count += pred != 0;
    f->state = WAIT_BAR;
    f->file = file;
    f->line = line;
    f->op = -1;
    f->mask = 0;
    if (++b->arrived == b->n) {
        if (b->bar_mixed) { stuck(b, "its threads wait at different __syncthreads"); }
        b->bar_result[gen & 1] = b->bar_count;
        b->arrived = 0;
        b->bar_gen++;
        for (int i = 0; i < b->n; i++) { b->fibers[i].state = RUNNABLE; }
    } else {
        switch_away(f);
    }
#if CUDA_EMU_TSAN
    __tsan_acquire(&b->bar_sync[gen & 1]);
#endif
    // the next barrier writes the other slot; the one after this cannot complete before all
    // threads have read this one
    int count = b->bar_result[gen & 1];
    return kind == BAR_COUNT ? count : kind == BAR_AND ? count == b->n : kind == BAR_OR ? count > 0 : 0;
}

// ---- warp collectives ----
// As the programming guide says, the lanes of a mask that have exited (or that a partial last
// warp lacks) take no part: a group completes when every other lane of its mask waits in it,
// and a lane that reads a lane outside the group gets 0xFF bytes (NaN, or -1), as from
// uninitialised memory. The lane that completes a group computes every member's result, so
// that no operand is overwritten before its readers ran.
inline unsigned lanes_of(const Block* b, int warp) {
    int lanes = b->n - 32 * warp;
    return lanes >= 32 ? 0xffffffffu : (1u << lanes) - 1;
}

CUDA_EMU_INTERNAL inline void try_complete(Block* b, int warp, unsigned mask) {
    Fiber* w = b->fibers + 32 * warp;
    unsigned live = mask & lanes_of(b, warp) & ~b->warp_exited[warp];
    if ((b->warp_waiting[warp] & live) != live) { return; }
    int op = -1, first = 0;
    unsigned votes = 0;
    for (int l = 0; l < 32; l++) {
        if (!(live >> l & 1)) { continue; }
        if (w[l].mask != mask) { return; } // waits in another group, with another mask
        if (op < 0) { op = w[l].op; first = l; }
        if (w[l].op != op) {
            fail("lanes of warp %d with mask 0x%08x disagree: lane %d calls %s (%s:%d), lane %d calls %s (%s:%d)", warp, mask,
                 first, op_names[op], w[first].file, w[first].line, l, op_names[w[l].op], w[l].file, w[l].line);
        }
        if (w[l].in) { votes |= 1u << l; }
    }
    for (int l = 0; l < 32; l++) {
        if (!(live >> l & 1)) { continue; }
        Fiber* g = &w[l];
        int wd = g->width, base = l & ~(wd - 1), src = l;
        if (op == OP_SHFL) { src = base + (g->arg & (wd - 1)); }
        if (op == OP_UP && (l & (wd - 1)) >= g->arg) { src = l - g->arg; }
        if (op == OP_DOWN && (l & (wd - 1)) + g->arg < wd) { src = l + g->arg; }
        if (op == OP_XOR && (l ^ g->arg) < base + wd) { src = l ^ g->arg; }
        g->out = op <= OP_XOR ? ((live >> src & 1) ? w[src].in : ~0ull)
               : op == OP_BALLOT ? votes : op == OP_ANY ? votes != 0 : op == OP_ALL ? votes == live : 0;
        g->mask = 0;
        g->state = RUNNABLE;
    }
    b->warp_waiting[warp] &= ~live;
}

CUDA_EMU_INTERNAL inline unsigned long long warp_op(int op, unsigned mask, unsigned long long v, int arg, int width,
                                                    const char* file, int line) {
    Block* b = t_block;
    Fiber* f = t_cur;
    if (!(mask >> f->lane & 1) || width < 1 || width > 32 || (width & (width - 1))) {
        fail("%s(mask 0x%08x, width %d) by thread %d at %s:%d: %s", op_names[op], mask, width, (int)(f - b->fibers), file, line,
             !(mask >> f->lane & 1) ? "the mask must name the calling lane" : "the width must be a power of two up to 32");
    }
    f->state = WAIT_WARP;
    f->file = file;
    f->line = line;
    f->op = op;
    f->mask = mask;
    f->in = v;
    f->arg = arg;
    f->width = width;
#if CUDA_EMU_TSAN
    if (op == OP_SYNCWARP) { __tsan_release(&b->warp_sync[f->warp]); }
#endif
    b->warp_waiting[f->warp] |= 1u << f->lane;
    try_complete(b, f->warp, mask);
    if (f->state != RUNNABLE) { switch_away(f); }
#if CUDA_EMU_TSAN
    if (op == OP_SYNCWARP) { __tsan_acquire(&b->warp_sync[f->warp]); }
#endif
    return f->out;
}

CUDA_EMU_INTERNAL inline void fiber_main(Fiber* f) {
    Block* b = t_block;
    b->fn(b->ctx);
#if CUDA_EMU_TSAN
    __tsan_release(&b->done_sync);
#endif
    f->state = EXITED;
    b->exited++;
    // the lanes of this warp that wait in a collective may have waited only for this one
    b->warp_exited[f->warp] |= 1u << f->lane;
    for (unsigned waiting = b->warp_waiting[f->warp]; waiting; waiting &= waiting - 1) {
        Fiber* g = &b->fibers[32 * f->warp + __builtin_ctz(waiting)];
        if (g->state == WAIT_WARP) { try_complete(b, f->warp, g->mask); }
    }
    switch_away(f);
    __builtin_unreachable();
}

#if !CUDA_EMU_ASM_SWITCH
inline void fiber_main_uc(unsigned lo, unsigned hi) {
    fiber_main((Fiber*)(((uintptr_t)hi << 32) | lo));
}
#endif

template <class T>
inline T shfl(int op, unsigned mask, T v, int arg, int width, const char* file, int line) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled values are up to 8 bytes");
    unsigned long long in = 0, out;
    memcpy(&in, &v, sizeof(T));
    out = warp_op(op, mask, in, arg, width, file, line);
    T r;
    memcpy(&r, &out, sizeof(T));
    return r;
}

// ---- blocks and grids ----
CUDA_EMU_INTERNAL inline void prepare_worker(Worker& w, int n, size_t smem) {
    if (w.nstacks < n) {
        if (w.stacks) { munmap(w.stacks, (size_t)w.nstacks * STACK_BYTES); free(w.fibers); }
        w.stacks = (char*)mmap(nullptr, (size_t)n * STACK_BYTES, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        w.fibers = (Fiber*)calloc((size_t)n, sizeof(Fiber));
        if (w.stacks == MAP_FAILED || !w.fibers) { fail("cannot map %d fiber stacks of %zu bytes", n, STACK_BYTES); }
        // a guard page under each stack turns an overflow into a crash instead of corruption
        for (int i = 0; i < n; i++) { mprotect(w.stacks + (size_t)i * STACK_BYTES, 4096, PROT_NONE); }
        w.nstacks = n;
    }
    if (w.smem_cap < smem) {
        free(w.smem);
        w.smem = (unsigned char*)aligned_alloc(128, (smem + 127) / 128 * 128);
        w.smem_cap = smem;
    }
}

CUDA_EMU_INTERNAL inline void run_block(Block* b, size_t smem) {
    Worker& w = t_worker;
    if (smem) { memset(b->smem, 0xff, smem); }
#if CUDA_EMU_TSAN
    if (!w.tsan_self) { w.tsan_self = __tsan_get_current_fiber(); }
#endif
    for (int i = 0; i < b->n; i++) {
        Fiber* f = &b->fibers[i];
        f->tid = make_uint3(i % b->dim.x, i / b->dim.x % b->dim.y, i / (b->dim.x * b->dim.y));
        f->lane = i & 31;
        f->warp = i >> 5;
        f->state = RUNNABLE;
        f->mask = 0;
        // stack tops staggered by up to 16 KB in cache lines: at one stride they would all fight
        // for one cache set; at least 236 KB remain above the guard page
        char* top = w.stacks + (size_t)(i + 1) * STACK_BYTES - (size_t)(i * 67 % 256) * 64;
#if CUDA_EMU_ASM_SWITCH
        // r15 r14 r13 r12 rbx rbp, return address; 16-byte aligned at the trampoline's call
        void** s = (void**)(top - 24 - 48);
        s[0] = s[1] = s[4] = s[5] = nullptr;
        s[2] = (void*)&fiber_main;
        s[3] = (void*)f;
        s[6] = (void*)&cuda_emu_fiber_entry;
        f->sp = s;
#else
        getcontext(&f->uc);
        f->uc.uc_stack.ss_sp = top - STACK_BYTES + 4096;
        f->uc.uc_stack.ss_size = STACK_BYTES - 4096;
        f->uc.uc_link = nullptr;
        makecontext(&f->uc, (void (*)())fiber_main_uc, 2, (unsigned)(uintptr_t)f, (unsigned)((uintptr_t)f >> 32));
#endif
#if CUDA_EMU_TSAN
        f->tsan = __tsan_create_fiber(0);
#endif
    }
    t_block = b;
    Fiber* first = &b->fibers[b->reverse ? b->n - 1 : 0];
    t_cur = first;
#if CUDA_EMU_TSAN
    __tsan_switch_to_fiber(first->tsan, 1); // creating the fibers ordered them after this thread
#endif
#if CUDA_EMU_ASM_SWITCH
    cuda_emu_switch(&w.sched_sp, first->sp);
#else
    swapcontext(&w.sched_uc, &first->uc);
#endif
    if (b->exited < b->n) {
        stuck(b, b->arrived ? "a __syncthreads that not all its threads reach" : "a warp collective that not all lanes of its mask reach");
    }
#if CUDA_EMU_TSAN
    // the next block reuses this block's shared memory and stacks: order it after this one
    __tsan_acquire(&b->done_sync);
    for (int i = 0; i < b->n; i++) { __tsan_destroy_fiber(b->fibers[i].tsan); }
#endif
    t_block = nullptr;
    t_cur = nullptr;
}

struct Config {
    const char* file;
    int line;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    Config(const char* file_, int line_, dim3 grid_, dim3 block_, size_t smem_ = 0, cudaStream_t stream_ = 0)
        : file(file_), line(line_), grid(grid_), block(block_), smem(smem_), stream(stream_) {}
    template <class... A> struct Pending {
        const Config* cfg;
        std::tuple<std::decay_t<A>...> args;
    };
    template <class... A> Pending<A...> operator()(A&&... a) const { return {this, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)}; }
};

inline cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) { t_last_error = e; }
    return e;
}

inline void run_grid(const Config& c, const void* kernel, void (*fn)(void*), void* ctx) {
    long threads = (long)c.block.x * c.block.y * c.block.z;
    if (!c.grid.x || !c.grid.y || !c.grid.z || !c.block.x || !c.block.y || !c.block.z ||
        c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64 || threads > 1024 ||
        c.grid.x > 2147483647u || c.grid.y > 65535 || c.grid.z > 65535) {
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    int max_smem = 48 * 1024;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        auto it = g_max_dyn_smem.find(kernel);
        if (it != g_max_dyn_smem.end()) { max_smem = it->second; }
    }
    if (c.smem > (size_t)max_smem) {
        set_error(cudaErrorInvalidValue);
        return;
    }
    const char* rev = getenv("CUDA_EMU_REVERSE");
    int reverse = rev && rev[0] == '1';
    long nblocks = (long)c.grid.x * c.grid.y * c.grid.z;
#if CUDA_EMU_TSAN
    int parallel = 0;
#else
    int parallel = nblocks > 1;
#endif
    // chunks of blocks: one block per chunk costs more than a small block's work
    long chunk = nblocks / 64 > 1 ? nblocks / 64 : 1;
#pragma omp parallel for schedule(dynamic, chunk) if (parallel)
    for (long i = 0; i < nblocks; i++) {
        Worker& w = t_worker;
        prepare_worker(w, (int)threads, c.smem);
        Block b{};
        b.fibers = w.fibers;
        b.n = (int)threads;
        b.idx = make_uint3(i % c.grid.x, i / c.grid.x % c.grid.y, i / ((long)c.grid.x * c.grid.y));
        b.dim = c.block;
        b.grid = c.grid;
        b.smem = w.smem;
        b.fn = fn;
        b.ctx = ctx;
        b.launch_file = c.file;
        b.launch_line = c.line;
        b.reverse = reverse;
        run_block(&b, c.smem);
    }
}

template <class... P> struct Args {
    void (*kernel)(P...);
    std::tuple<P...> params;
};
// each thread gets its own copy of the parameters, as on the GPU
template <class... P> void run_thread(void* ctx) {
    Args<P...>* a = (Args<P...>*)ctx;
    std::apply(a->kernel, a->params);
}

template <class... P, class... A>
void operator^(void (*kernel)(P...), Config::Pending<A...>&& p) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    Args<P...> a{kernel, std::apply([](auto&... x) { return std::tuple<P...>(x...); }, p.args)};
    run_grid(*p.cfg, (const void*)kernel, &run_thread<P...>, &a);
}

template <class T> inline T* dynamic_smem() { return (T*)t_block->smem; }

inline double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// is [p, p + n) inside one cudaMalloc allocation?
inline bool is_device(const void* p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_allocs.upper_bound((uintptr_t)p);
    if (it == g_allocs.begin()) { return false; }
    --it;
    return (uintptr_t)p + n <= it->first + it->second;
}

} // namespace cuda_emu

// ---- kernel-side built-ins ----
#define threadIdx (static_cast<const uint3&>(cuda_emu::t_cur->tid))
#define blockIdx (static_cast<const uint3&>(cuda_emu::t_block->idx))
#define blockDim (static_cast<const dim3&>(cuda_emu::t_block->dim))
#define gridDim (static_cast<const dim3&>(cuda_emu::t_block->grid))

#define __syncthreads() ((void)cuda_emu::syncthreads(__FILE__, __LINE__, cuda_emu::BAR_PLAIN, 0))
#define __syncthreads_count(p) cuda_emu::syncthreads(__FILE__, __LINE__, cuda_emu::BAR_COUNT, (p))
#define __syncthreads_and(p) cuda_emu::syncthreads(__FILE__, __LINE__, cuda_emu::BAR_AND, (p))
#define __syncthreads_or(p) cuda_emu::syncthreads(__FILE__, __LINE__, cuda_emu::BAR_OR, (p))
#define __syncwarp(...) ((void)cuda_emu::warp_op(cuda_emu::OP_SYNCWARP, cuda_emu::mask_or_full(__VA_ARGS__), 0, 0, 32, __FILE__, __LINE__))
#define __shfl_sync(m, v, lane, ...) cuda_emu::shfl(cuda_emu::OP_SHFL, (m), (v), (lane), cuda_emu::width_or_32(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(m, v, d, ...) cuda_emu::shfl(cuda_emu::OP_UP, (m), (v), (d), cuda_emu::width_or_32(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(m, v, d, ...) cuda_emu::shfl(cuda_emu::OP_DOWN, (m), (v), (d), cuda_emu::width_or_32(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(m, v, x, ...) cuda_emu::shfl(cuda_emu::OP_XOR, (m), (v), (x), cuda_emu::width_or_32(__VA_ARGS__), __FILE__, __LINE__)
#define __ballot_sync(m, p) ((unsigned)cuda_emu::warp_op(cuda_emu::OP_BALLOT, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(m, p) ((int)cuda_emu::warp_op(cuda_emu::OP_ANY, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(m, p) ((int)cuda_emu::warp_op(cuda_emu::OP_ALL, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
namespace cuda_emu {
inline unsigned mask_or_full() { return 0xffffffffu; }
inline unsigned mask_or_full(unsigned m) { return m; }
inline int width_or_32() { return 32; }
inline int width_or_32(int w) { return w; }
} // namespace cuda_emu

// ---- atomics (relaxed, as CUDA's) ----
#define CUDA_EMU_ATOMIC(name, T, builtin) \
    inline T name(T* a, T v) { return builtin(a, v, __ATOMIC_RELAXED); }
CUDA_EMU_ATOMIC(atomicAdd, int, __atomic_fetch_add)
CUDA_EMU_ATOMIC(atomicAdd, unsigned, __atomic_fetch_add)
CUDA_EMU_ATOMIC(atomicAdd, unsigned long long, __atomic_fetch_add)
CUDA_EMU_ATOMIC(atomicSub, int, __atomic_fetch_sub)
CUDA_EMU_ATOMIC(atomicSub, unsigned, __atomic_fetch_sub)
CUDA_EMU_ATOMIC(atomicExch, int, __atomic_exchange_n)
CUDA_EMU_ATOMIC(atomicExch, unsigned, __atomic_exchange_n)
CUDA_EMU_ATOMIC(atomicAnd, int, __atomic_fetch_and)
CUDA_EMU_ATOMIC(atomicAnd, unsigned, __atomic_fetch_and)
CUDA_EMU_ATOMIC(atomicOr, int, __atomic_fetch_or)
CUDA_EMU_ATOMIC(atomicOr, unsigned, __atomic_fetch_or)
CUDA_EMU_ATOMIC(atomicXor, int, __atomic_fetch_xor)
CUDA_EMU_ATOMIC(atomicXor, unsigned, __atomic_fetch_xor)
#undef CUDA_EMU_ATOMIC
template <class T> inline T atomicCAS(T* a, T compare, T v) {
    __atomic_compare_exchange(a, &compare, &v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare; // the old value either way
}
// read-modify-write through compare-and-swap, for the operations without a builtin
template <class T, class F> inline T atomic_update(T* a, F f) {
    T old, upd;
    __atomic_load(a, &old, __ATOMIC_RELAXED);
    do { upd = f(old); } while (!__atomic_compare_exchange(a, &old, &upd, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
inline float atomicAdd(float* a, float v) { return atomic_update(a, [v](float x) { return x + v; }); }
inline double atomicAdd(double* a, double v) { return atomic_update(a, [v](double x) { return x + v; }); }
inline float atomicExch(float* a, float v) { float old; __atomic_exchange(a, &v, &old, __ATOMIC_RELAXED); return old; }
inline int atomicMax(int* a, int v) { return atomic_update(a, [v](int x) { return x > v ? x : v; }); }
inline int atomicMin(int* a, int v) { return atomic_update(a, [v](int x) { return x < v ? x : v; }); }
inline unsigned atomicMax(unsigned* a, unsigned v) { return atomic_update(a, [v](unsigned x) { return x > v ? x : v; }); }
inline unsigned atomicMin(unsigned* a, unsigned v) { return atomic_update(a, [v](unsigned x) { return x < v ? x : v; }); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- loads, stores and math ----
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
// glibc declares __expf and friends itself, as aliases of expf: macros, not overloads
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __powf(x, y) powf((x), (y))
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : x > 0.0f ? x : 0.0f; }
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float f) { int x; memcpy(&x, &f, 4); return x; }
inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, 4); return x; }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }
// CUDA's min/max take mixed types and convert them as arithmetic does
template <class A, class B> inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B> inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// ---- runtime API: the toolkit declares these extern "C"; here they run on host memory ----
extern "C" {
inline cudaError_t cudaGetLastError(void) { cudaError_t e = cuda_emu::t_last_error; cuda_emu::t_last_error = cudaSuccess; return e; }
inline cudaError_t cudaPeekAtLastError(void) { return cuda_emu::t_last_error; }
inline const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorUnknown";
    }
}
inline const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return "unknown error";
    }
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
    size_t bytes = (n + 255) / 256 * 256 + 256 * (n == 0);
    *p = aligned_alloc(256, bytes);
    if (!*p) { return cuda_emu::set_error(cudaErrorMemoryAllocation); }
    memset(*p, 0xff, bytes);
    std::lock_guard<std::mutex> lock(cuda_emu::g_mutex);
    cuda_emu::g_allocs[(uintptr_t)*p] = n;
    return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
    if (!p) { return cudaSuccess; }
    {
        std::lock_guard<std::mutex> lock(cuda_emu::g_mutex);
        if (!cuda_emu::g_allocs.erase((uintptr_t)p)) { return cuda_emu::set_error(cudaErrorInvalidValue); }
    }
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cuda_emu::set_error(cudaErrorMemoryAllocation);
}
// cuda_runtime.h's cudaMallocHost(T**, size_t) template calls this one
inline cudaError_t cudaHostAlloc(void** p, size_t n, unsigned) { return cudaMallocHost(p, n); }
inline cudaError_t cudaFreeHost(void* p) { free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) { return cuda_emu::set_error(cudaErrorInvalidMemcpyDirection); }
    if (n == 0) { return cudaSuccess; }
    if (kind != cudaMemcpyDefault) {
        bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
        bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
        if (cuda_emu::is_device(dst, n) != dst_dev || cuda_emu::is_device(src, n) != src_dev) {
            return cuda_emu::set_error(cudaErrorInvalidValue);
        }
    }
    memmove(dst, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
    return cudaMemcpy(dst, src, n, kind);
}
inline cudaError_t cudaMemset(void* p, int value, size_t n) {
    if (n && !cuda_emu::is_device(p, n)) { return cuda_emu::set_error(cudaErrorInvalidValue); }
    memset(p, value, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) { return cudaMemset(p, value, n); }
// __device__ and __constant__ variables are plain globals here
inline cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* src, size_t n, size_t offset, cudaMemcpyKind) {
    memcpy((char*)symbol + offset, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const void* symbol, size_t n, size_t offset, cudaMemcpyKind) {
    memcpy(dst, (const char*)symbol + offset, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
    *total = 80ull << 30;
    *free_bytes = *total;
    return cudaSuccess;
}
} // extern "C"

struct CUstream_st { int unused; };
struct CUevent_st { double ms; int recorded; };

extern "C" {
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { *s = new CUstream_st(); return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
inline cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
inline cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
inline cudaError_t cudaDeviceReset(void) { return cudaSuccess; }
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new CUevent_st(); return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
// launches finish before they return, so the moment of the call is the moment on the stream
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { e->ms = cuda_emu::now_ms(); e->recorded = 1; return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (!start || !end || !start->recorded || !end->recorded) { return cuda_emu::set_error(cudaErrorInvalidResourceHandle); }
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cuda_emu::set_error(cudaErrorInvalidDevice); }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
    if (d != 0) { return cuda_emu::set_error(cudaErrorInvalidDevice); }
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "CUDA emulator on the CPU (H100 limits)");
    p->totalGlobalMem = 80ull << 30;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 227 * 1024;
    p->sharedMemPerMultiprocessor = 228 * 1024;
    p->regsPerBlock = p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->totalConstMem = 64 * 1024;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxBlocksPerMultiProcessor = 32;
    p->l2CacheSize = 50 * 1024 * 1024;
    p->memoryBusWidth = 5120;
    p->unifiedAddressing = 1;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) { return cudaErrorInvalidDevice; }
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)p.sharedMemPerBlockOptin; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrWarpSize: *v = p.warpSize; break;
    default: return cuda_emu::set_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
inline cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) { return cudaSuccess; }
    if (value < 0 || value > 227 * 1024) { return cuda_emu::set_error(cudaErrorInvalidValue); }
    std::lock_guard<std::mutex> lock(cuda_emu::g_mutex);
    cuda_emu::g_max_dyn_smem[kernel] = value;
    return cudaSuccess;
}
} // extern "C"

// nvcc's cuda_runtime.h has this overload only for CUDA compilation
template <class T> inline cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void*)kernel, attr, value);
}

#endif // CUDA_EMU_H
