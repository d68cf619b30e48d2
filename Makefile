# zelo.c — build. `make` builds the programs, `make test` builds and runs every test,
# `make bench` runs the benchmarks (figures side by side with their peers).
CC ?= gcc
CFLAGS ?= -O3 -march=native
CFLAGS += -std=gnu11 -Wall -Wextra -fopenmp -I.
LDLIBS += -lm
BUILD = build

# The matrix products run on cpu/gemm.c's own kernels. OpenBLAS is linked too when a program
# that calls it compiles and links here (NO_BLAS=1 turns it off), so that the tests and
# dev/bench_model.sh can hold the two against each other (model.h, matmul_path).
ifeq ($(NO_BLAS),)
  BLAS_PROBE := $(shell $(CC) dev/probe_blas.c -lopenblas -o /dev/null 2>/dev/null && echo yes)
  ifeq ($(BLAS_PROBE),yes)
    CFLAGS += -DUSE_BLAS
    LDLIBS += -lopenblas
  endif
endif

# ---- sources of each module (headers beside them) ----
SRC_JSON = io/json.c
SRC_TOKENIZER = tokenizer/wordpiece.c $(SRC_JSON)
SRC_MODEL = model.c cpu/gemm.c
SRC_WEIGHTS = io/safetensors.c io/weights.c $(SRC_MODEL) $(SRC_JSON)
SRC_ZELO = zelo_loss.c
SRC_BM25 = retrieval/bm25.c retrieval/analyzer.c
SRC_DATA = io/beir.c $(SRC_JSON)
SRC_METRICS = io/metrics.c
HEADERS = $(wildcard *.h */*.h)

PROGRAMS = train_zelo zelo_fit rerank
TESTS = test_json test_tokenizer test_gemm test_model test_weights test_zelo test_bm25 test_beir test_metrics test_judge_cmd test_synth test_judge test_distill

.PHONY: all test bench clean
all: $(PROGRAMS)

SRC_TRAIN = train.c io/beir.c retrieval/bm25.c retrieval/analyzer.c retrieval/dense.c judges/distill.c judges/judge.c judges/judge_cmd.c io/metrics.c retrieval/score.c io/synth.c \
            zelo_loss.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
train_zelo: $(SRC_TRAIN) $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $(SRC_TRAIN) $(LDLIBS)

zelo_fit: zelo_fit.c $(SRC_ZELO) $(SRC_JSON) $(HEADERS)
	$(CC) $(CFLAGS) -o $@ zelo_fit.c $(SRC_ZELO) $(SRC_JSON) $(LDLIBS)

SRC_RERANK = rerank.c retrieval/score.c io/beir.c io/metrics.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
rerank: $(SRC_RERANK) $(HEADERS)
	$(CC) $(CFLAGS) -o $@ $(SRC_RERANK) $(LDLIBS)

$(BUILD)/test_json: test/test_json.c $(SRC_JSON) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_json.c $(SRC_JSON) $(LDLIBS)
$(BUILD)/test_tokenizer: test/test_tokenizer.c $(SRC_TOKENIZER) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_tokenizer.c $(SRC_TOKENIZER) $(LDLIBS)
$(BUILD)/test_gemm: test/test_gemm.c cpu/gemm.c $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_gemm.c cpu/gemm.c $(LDLIBS)
$(BUILD)/test_model: test/test_model.c $(SRC_MODEL) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_model.c $(SRC_MODEL) $(LDLIBS)
$(BUILD)/test_weights: test/test_weights.c $(SRC_WEIGHTS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_weights.c $(SRC_WEIGHTS) $(LDLIBS)
$(BUILD)/test_zelo: test/test_zelo.c $(SRC_ZELO) $(SRC_JSON) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_zelo.c $(SRC_ZELO) $(SRC_JSON) $(LDLIBS)
$(BUILD)/test_bm25: test/test_bm25.c $(SRC_BM25) $(SRC_DATA) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_bm25.c $(SRC_BM25) $(SRC_DATA) $(LDLIBS)
$(BUILD)/test_beir: test/test_beir.c $(SRC_DATA) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_beir.c $(SRC_DATA) $(LDLIBS)
$(BUILD)/test_metrics: test/test_metrics.c $(SRC_METRICS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_metrics.c $(SRC_METRICS) $(LDLIBS)
$(BUILD)/test_synth: test/test_synth.c io/synth.c $(SRC_DATA) $(SRC_BM25) $(SRC_METRICS) $(SRC_TOKENIZER) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_synth.c io/synth.c io/beir.c retrieval/bm25.c retrieval/analyzer.c io/metrics.c tokenizer/wordpiece.c $(SRC_JSON) $(LDLIBS)
$(BUILD)/test_judge_cmd: test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(LDLIBS)
$(BUILD)/test_judge: test/test_judge.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(LDLIBS)
$(BUILD)/test_distill: test/test_distill.c judges/distill.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_distill.c judges/distill.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(LDLIBS)

$(BUILD)/rerank_checkpoint: test/rerank_checkpoint.c $(SRC_WEIGHTS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/rerank_checkpoint.c $(SRC_WEIGHTS) $(LDLIBS)

$(BUILD)/bench_bm25: dev/bench_bm25.c $(SRC_BM25) $(SRC_DATA) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_bm25.c $(SRC_BM25) $(SRC_DATA) $(LDLIBS)
$(BUILD)/bench_zelo: dev/bench_zelo.c $(SRC_ZELO) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_zelo.c $(SRC_ZELO) $(LDLIBS)
$(BUILD)/bench_gemm: dev/bench_gemm.c cpu/gemm.c $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_gemm.c cpu/gemm.c $(LDLIBS)
$(BUILD)/bench_model: dev/bench_model.c $(SRC_MODEL) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_model.c $(SRC_MODEL) $(LDLIBS)

# ---- CUDA kernels (kernels/*.cuh) and their test ----
# build/test_cuda runs every kernel on the CPU through the project's emulator: g++ compiles
# the same .cu with kernels/cuda_emu.h force-included and CUDA_EMULATOR defined (no GPU,
# no toolkit libraries). build/test_cuda_nvcc is the same test built by nvcc for a real GPU
# (sm_90 and sm_80, warnings as errors), made by `make cuda` only where nvcc is found.
CUDA_HEADERS = $(wildcard kernels/*.cuh kernels/*.h)
EMU_CXXFLAGS = -O2 -std=c++17 -Wall -Wextra -fopenmp -I. -DCUDA_EMULATOR -include kernels/cuda_emu.h
$(BUILD)/test_cuda: test/test_cuda.cu $(SRC_MODEL) $(CUDA_HEADERS) $(HEADERS)
	@mkdir -p $(BUILD)/emu
	$(CC) $(CFLAGS) -c model.c -o $(BUILD)/emu/model.o
	$(CC) $(CFLAGS) -c cpu/gemm.c -o $(BUILD)/emu/gemm.o
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c test/test_cuda.cu -o $(BUILD)/emu/test_cuda.o
	$(CXX) -fopenmp -o $@ $(BUILD)/emu/test_cuda.o $(BUILD)/emu/model.o $(BUILD)/emu/gemm.o $(LDLIBS)

NVCC := $(shell command -v nvcc 2>/dev/null)
NVCC_FLAGS = -O3 -std=c++17 -I. -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
             -Xcompiler -Wall,-Wextra,-fopenmp -Werror all-warnings
.PHONY: cuda
ifneq ($(NVCC),)
cuda: $(BUILD)/test_cuda_nvcc
$(BUILD)/test_cuda_nvcc: test/test_cuda.cu $(SRC_MODEL) $(CUDA_HEADERS) $(HEADERS)
	@mkdir -p $(BUILD)/nvcc
	$(CC) $(CFLAGS) -c model.c -o $(BUILD)/nvcc/model.o
	$(CC) $(CFLAGS) -c cpu/gemm.c -o $(BUILD)/nvcc/gemm.o
	$(NVCC) $(NVCC_FLAGS) -o $@ test/test_cuda.cu $(BUILD)/nvcc/model.o $(BUILD)/nvcc/gemm.o -lcublas $(LDLIBS)
else
cuda:
	@echo "make cuda: no nvcc on the PATH, nothing to build"
endif

# a test target builds only the tests whose sources exist yet, so work in progress on
# one module never breaks the others' tests
AVAILABLE_TESTS = $(foreach t,$(TESTS),$(if $(wildcard test/$(t).c),$(BUILD)/$(t)))
test: $(AVAILABLE_TESTS) $(PROGRAMS) $(BUILD)/rerank_checkpoint
	@bash test/run_all.sh $(AVAILABLE_TESTS) test/test_rerank.sh test/test_train.sh

bench:
	@bash dev/bench_all.sh

clean:
	rm -rf $(BUILD) $(PROGRAMS)
