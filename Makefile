# zelo.c — build. `make` builds the programs, `make test` builds and runs every test,
# `make bench` runs the benchmarks (figures side by side with their peers).
CC ?= gcc
CFLAGS ?= -O3 -march=native
# SAN=1 (make test-san sets it): AddressSanitizer + UndefinedBehaviorSanitizer, every UB report
# fatal, built by clang (whose UBSan also catches NULL + 0 pointer arithmetic, gcc's does not)
ifneq ($(SAN),)
  CC = clang
  CFLAGS = -O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -Wno-pass-failed
endif
CFLAGS += -std=gnu11 -Wall -Wextra -fopenmp -I.
# stb_ds comes from Debian's libstb-dev (/usr/include/stb); STB_INCLUDE=DIR names a folder holding
# stb/stb_ds.h instead, on a machine without the package (dev/gpu_check.sh)
CFLAGS += $(if $(STB_INCLUDE),-I$(STB_INCLUDE))
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

# The GPU backend (kernels/model_cuda.cu, model.h's bert_to_device) is built into train_zelo
# when nvcc compiles and links a program calling the CUDA runtime, cuBLAS and cuBLASLt here,
# and that program starts (finds the shared libraries) (dev/probe_cuda.cu; no GPU needed). NO_CUDA=1
# turns it off; the sanitizer pass leaves it out. nvcc is found on the PATH, or named by NVCC.
ifeq ($(origin NVCC),undefined)
  NVCC := $(shell command -v nvcc 2>/dev/null)
endif
ifeq ($(NO_CUDA)$(SAN),)
  ifneq ($(NVCC),)
    CUDA_PROBE := $(shell mkdir -p $(BUILD) && $(NVCC) dev/probe_cuda.cu -lcublas -lcublasLt -o $(BUILD)/probe_cuda 2>/dev/null \
                    && $(BUILD)/probe_cuda && echo yes)
  endif
endif

# MPI (common/dist.c): train_zelo runs as several processes (mpirun -np N ./train_zelo) when a
# program calling MPI compiles and links here with the flags the MPI compiler wrapper reports
# (Open MPI's mpicc --showme), or pkg-config's (ompi-c, mpich, mpi). NO_MPI=1 leaves it out, and
# so does the sanitizer pass (the library's own allocations would count as leaks); without it
# train_zelo is one process. NCCL (gradients summed across GPUs) joins when the GPU backend is
# built too and nvcc links and runs a program calling it (dev/probe_nccl.cu).
ifeq ($(NO_MPI)$(SAN),)
  MPI_FLAGS := $(shell (mpicc --showme:compile && mpicc --showme:link) 2>/dev/null || pkg-config --cflags --libs ompi-c 2>/dev/null \
                 || pkg-config --cflags --libs mpich 2>/dev/null || pkg-config --cflags --libs mpi 2>/dev/null)
  MPI_CFLAGS := $(filter -I% -D% -pthread,$(MPI_FLAGS))
  MPI_LIBS := $(filter-out -I% -D%,$(MPI_FLAGS))
  MPI_PROBE := $(shell $(CC) $(MPI_CFLAGS) dev/probe_mpi.c $(MPI_LIBS) -o /dev/null 2>/dev/null && echo yes)
endif
# DIST_*: common/dist.c with MPI; DIST_GPU_*: with NCCL too, for train_zelo with the GPU backend
ifeq ($(MPI_PROBE),yes)
  DIST_CFLAGS = -DUSE_MPI $(MPI_CFLAGS)
  DIST_LIBS = $(MPI_LIBS)
  DIST_GPU_CFLAGS = $(DIST_CFLAGS)
  DIST_GPU_LIBS = $(DIST_LIBS)
  ifeq ($(CUDA_PROBE),yes)
    NCCL_PROBE := $(shell $(NVCC) dev/probe_nccl.cu -lnccl -o $(BUILD)/probe_nccl 2>/dev/null && $(BUILD)/probe_nccl && echo yes)
  endif
  ifeq ($(NCCL_PROBE),yes)
    DIST_GPU_CFLAGS += -DUSE_NCCL -isystem $(abspath $(dir $(NVCC))..)/include
    DIST_GPU_LIBS += -lnccl
  endif
endif

# ---- sources of each module (headers beside them) ----
# stb_ds's functions (Debian libstb-dev), which every program and test links
SRC_DS = common/stb_ds.c
SRC_JSON = io/json.c
SRC_TOKENIZER = tokenizer/wordpiece.c $(SRC_JSON)
SRC_MODEL = model.c cpu/gemm.c
SRC_WEIGHTS = io/safetensors.c io/weights.c $(SRC_MODEL) $(SRC_JSON)
SRC_ZELO = zelo_loss.c
# dense retrieval and the fusion of ranked lists (the hybrid candidates)
SRC_DENSE = retrieval/dense.c retrieval/fusion.c
SRC_BM25 = retrieval/bm25.c retrieval/analyzer.c
SRC_DATA = io/beir.c $(SRC_JSON)
SRC_METRICS = io/metrics.c
# The build's configuration: what the probes found and the compiler's flags, kept in
# $(BUILD)/config.txt (rewritten only when it changes). Every object and program depends on it
# through HEADERS, so that switching (`make NO_CUDA=1` after `make`, NO_BLAS, NO_MPI) rebuilds
# them instead of keeping the other configuration's files.
BUILD_CONFIG = cuda=$(CUDA_PROBE) blas=$(BLAS_PROBE) mpi=$(MPI_PROBE) nccl=$(NCCL_PROBE) cc=$(CC) cflags=$(CFLAGS)
CONFIG_STAMP = $(BUILD)/config.txt
$(shell mkdir -p $(BUILD) && (echo '$(BUILD_CONFIG)' | cmp -s - $(CONFIG_STAMP) || echo '$(BUILD_CONFIG)' > $(CONFIG_STAMP)))
HEADERS = $(wildcard *.h */*.h) $(CONFIG_STAMP)

PROGRAMS = train_zelo zelo_fit rerank
TESTS = test_json test_tokenizer test_gemm test_model test_weights test_zelo test_bm25 test_beir test_metrics test_judge_cmd test_synth test_judge test_distill test_fusion test_biencoder

.PHONY: all test test-san bench clean fuzz fuzz-build
all: $(PROGRAMS)

SRC_TRAIN = train.c common/dist.c io/beir.c retrieval/bm25.c retrieval/analyzer.c $(SRC_DENSE) retrieval/biencoder.c io/sentence_transformers.c judges/distill.c judges/judge.c judges/judge_cmd.c io/metrics.c retrieval/score.c io/synth.c \
            zelo_loss.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
# each program builds at the root, or into $(BUILD) for the sanitizer pass (make test-san);
# train_zelo, rerank and zelo_fit with the GPU backend are built in the CUDA block below
$(if $(CUDA_PROBE),,train_zelo) $(BUILD)/train_zelo: $(SRC_TRAIN) $(SRC_DS) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DIST_CFLAGS) -o $@ $(SRC_TRAIN) $(SRC_DS) $(LDLIBS) $(DIST_LIBS)

# zelo_fit links the model for model.h's device_select (its --device), and the GPU backend in
# the CUDA block below, as train_zelo
SRC_ZELO_FIT = zelo_fit.c $(SRC_ZELO) $(SRC_MODEL) $(SRC_JSON)
$(if $(CUDA_PROBE),,zelo_fit) $(BUILD)/zelo_fit: $(SRC_ZELO_FIT) $(SRC_DS) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(SRC_ZELO_FIT) $(SRC_DS) $(LDLIBS)

SRC_RERANK = rerank.c retrieval/fusion.c retrieval/score.c io/beir.c io/metrics.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
$(if $(CUDA_PROBE),,rerank) $(BUILD)/rerank: $(SRC_RERANK) $(SRC_DS) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(SRC_RERANK) $(SRC_DS) $(LDLIBS)

$(BUILD)/test_json: test/test_json.c $(SRC_JSON) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_json.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_tokenizer: test/test_tokenizer.c $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_tokenizer.c $(SRC_TOKENIZER) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_gemm: test/test_gemm.c cpu/gemm.c $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_gemm.c cpu/gemm.c $(SRC_DS) $(LDLIBS)
$(BUILD)/test_model: test/test_model.c test/model_fixture.c $(SRC_MODEL) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_model.c test/model_fixture.c $(SRC_MODEL) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_weights: test/test_weights.c $(SRC_WEIGHTS) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_weights.c $(SRC_WEIGHTS) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_zelo: test/test_zelo.c $(SRC_ZELO) $(SRC_JSON) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_zelo.c $(SRC_ZELO) $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_bm25: test/test_bm25.c $(SRC_BM25) $(SRC_DATA) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_bm25.c $(SRC_BM25) $(SRC_DATA) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_beir: test/test_beir.c $(SRC_DATA) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_beir.c $(SRC_DATA) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_metrics: test/test_metrics.c $(SRC_METRICS) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_metrics.c $(SRC_METRICS) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_fusion: test/test_fusion.c $(SRC_DENSE) $(SRC_MODEL) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_fusion.c $(SRC_DENSE) $(SRC_MODEL) tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_synth: test/test_synth.c io/synth.c $(SRC_DATA) $(SRC_BM25) $(SRC_METRICS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_synth.c io/synth.c io/beir.c retrieval/bm25.c retrieval/analyzer.c io/metrics.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_judge_cmd: test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_judge: test/test_judge.c judges/judge.c $(SRC_DENSE) judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge.c judges/judge.c $(SRC_DENSE) judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_distill: test/test_distill.c judges/distill.c judges/judge.c $(SRC_DENSE) judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_distill.c judges/distill.c judges/judge.c $(SRC_DENSE) judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)

SRC_BIENCODER = retrieval/biencoder.c $(SRC_DENSE) io/sentence_transformers.c $(SRC_ZELO) $(SRC_WEIGHTS) $(SRC_TOKENIZER)
$(BUILD)/test_biencoder: test/test_biencoder.c $(SRC_BIENCODER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_biencoder.c retrieval/biencoder.c $(SRC_DENSE) io/sentence_transformers.c $(SRC_ZELO) io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)

$(BUILD)/rerank_checkpoint: test/rerank_checkpoint.c $(SRC_WEIGHTS) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/rerank_checkpoint.c $(SRC_WEIGHTS) $(SRC_DS) $(LDLIBS)

$(BUILD)/bench_bm25: dev/bench_bm25.c $(SRC_BM25) $(SRC_DATA) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_bm25.c $(SRC_BM25) $(SRC_DATA) $(SRC_DS) $(LDLIBS)
$(BUILD)/bench_strtab: dev/bench_strtab.c retrieval/analyzer.c $(SRC_DATA) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_strtab.c retrieval/analyzer.c $(SRC_DATA) $(SRC_DS) $(LDLIBS)
$(BUILD)/bench_zelo: dev/bench_zelo.c $(SRC_ZELO) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_zelo.c $(SRC_ZELO) $(SRC_DS) $(LDLIBS)
$(BUILD)/bench_gemm: dev/bench_gemm.c cpu/gemm.c $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_gemm.c cpu/gemm.c $(SRC_DS) $(LDLIBS)
$(BUILD)/bench_model: dev/bench_model.c $(SRC_MODEL) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/bench_model.c $(SRC_MODEL) $(SRC_DS) $(LDLIBS)

# ---- CUDA emulator (kernels/cuda_emu.h): .cu tests built by the host C++ compiler, their ----
# kernels run on the CPU, so that CI checks them without a GPU. The toolkit is found from nvcc
# on the PATH (or CUDA_HOME); without its headers the emulated tests are left out. Each .cu and
# kernels/*.cuh is first rewritten line for line into $(BUILD)/emu_src/ (launches and
# `extern __shared__`, see the header), so diagnostics keep the original file and line.
CUDA_HOME ?= $(if $(NVCC),$(abspath $(dir $(NVCC))..))
HAVE_CUDA_HEADERS := $(if $(wildcard $(CUDA_HOME)/include/cuda_runtime.h),yes)
EMU_OPT ?= -O2 -g
EMU_CXXFLAGS = $(EMU_OPT) -std=c++17 -Wall -Wextra -fopenmp -DCUDA_EMULATOR -include kernels/cuda_emu.h \
                -I$(BUILD)/emu_src -I. -isystem $(CUDA_HOME)/include
EMU_REWRITE = sed -E -e 's/<<</ ^ cuda_emu::Config(__FILE__, __LINE__, /g' -e 's/>>>/)/g' \
  -e 's/extern[[:space:]]+__shared__[[:space:]]+(__align__\([0-9]+\)[[:space:]]+)?([A-Za-z_]([A-Za-z0-9_: ]*[A-Za-z0-9_])?)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\[[[:space:]]*\][[:space:]]*;/\2* \4 = cuda_emu::dynamic_smem<\2>();/'
$(BUILD)/emu_src/%.cu: %.cu Makefile
	@mkdir -p $(dir $@)
	{ echo '#line 1 "$<"'; $(EMU_REWRITE) $<; } > $@
$(BUILD)/emu_src/%.cuh: %.cuh Makefile
	@mkdir -p $(dir $@)
	{ echo '#line 1 "$<"'; $(EMU_REWRITE) $<; } > $@
EMU_KERNELS = $(patsubst %,$(BUILD)/emu_src/%,$(wildcard kernels/*.cuh))
# C sources a CUDA test links (CUDA_C_SRC_<test> = model.c cpu/gemm.c ...), compiled by $(CC)
# as the C programs are; the .cu includes their headers inside extern "C" { }. CUDA_OBJS_<test>
# names other objects it links (model.c built with USE_CUDA, below)
cuda_c_objs = $(patsubst %.c,$(BUILD)/c_obj/%.o,$(1))
$(BUILD)/c_obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# every test/<name>.cu -> $(BUILD)/<name> (emulated, run by `make test`) and, with nvcc,
# $(BUILD)/gpu/<name> (for a GPU: NVCC_FLAGS picks the architecture)
CUDA_TESTS = $(basename $(notdir $(wildcard test/*.cu)))
.SECONDEXPANSION:
$(addprefix $(BUILD)/,$(CUDA_TESTS)): $(BUILD)/%: $(BUILD)/emu_src/test/%.cu $$(call cuda_c_objs,$$(CUDA_C_SRC_$$*)) $$(CUDA_OBJS_$$*) $(EMU_KERNELS) kernels/cuda_emu.h $(HEADERS)
	$(CXX) $(EMU_CXXFLAGS) -o $@ -x c++ $< -x none $(call cuda_c_objs,$(CUDA_C_SRC_$*)) $(CUDA_OBJS_$*) $(LDLIBS)
# the emulator's test under ThreadSanitizer, which test/test_cuda_emu_tsan.sh expects to report a race
$(BUILD)/test_cuda_emu_tsan: $(BUILD)/emu_src/test/test_cuda_emu.cu kernels/cuda_emu.h $(HEADERS)
	$(CXX) $(EMU_CXXFLAGS) -fsanitize=thread -o $@ -x c++ $< -x none $(LDLIBS)
# what the emulator costs per barrier, per shuffle and per LayerNorm (README, "The CUDA emulator")
$(BUILD)/bench_cuda_emu: $(BUILD)/emu_src/dev/bench_cuda_emu.cu kernels/cuda_emu.h
	$(CXX) $(EMU_CXXFLAGS) -o $@ -x c++ $< -x none $(LDLIBS)
NVCC_FLAGS ?= -O3 -arch=sm_90
NVCC_WARN = -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror
$(addprefix $(BUILD)/gpu/,$(CUDA_TESTS)): $(BUILD)/gpu/%: test/%.cu $$(call cuda_c_objs,$$(CUDA_C_SRC_$$*)) $$(CUDA_OBJS_$$*) $(wildcard kernels/*.cuh) $(HEADERS)
	@test -n "$(NVCC)" || { echo "nvcc not found: put it on the PATH or set NVCC"; exit 1; }
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_WARN) -I. -o $@ $< $(call cuda_c_objs,$(CUDA_C_SRC_$*)) $(CUDA_OBJS_$*) -Xcompiler -fopenmp $(LDLIBS)
# what CI runs without a GPU (make test runs it first when nvcc is found): nvcc compiles every
# .cu for sm_90 and sm_80, warnings as errors
# (not dev/probe_nccl.cu: NCCL is optional, outside the toolkit, and the Makefile probes for it)
NVCC_CHECK_SOURCES = $(filter-out dev/probe_nccl.cu,$(wildcard test/*.cu dev/*.cu dev/cuda/*.cu))
.PHONY: nvcc_check
nvcc_check:
	@test -n "$(NVCC)" || { echo "nvcc not found: put it on the PATH or set NVCC"; exit 1; }
	@mkdir -p $(BUILD)/gpu
	@for arch in sm_90 sm_80; do for f in $(NVCC_CHECK_SOURCES); do \
	    echo "nvcc -arch=$$arch $$f"; \
	    $(NVCC) -O3 -arch=$$arch $(NVCC_WARN) -I. -c -o $(BUILD)/gpu/$$(basename $$f .cu).$$arch.o $$f || exit 1; \
	done; done
CUDA_EMU_TESTS = $(if $(HAVE_CUDA_HEADERS),$(addprefix $(BUILD)/,$(CUDA_TESTS)))
CUDA_EMU_SCRIPTS = $(if $(HAVE_CUDA_HEADERS),test/test_cuda_emu_tsan.sh test/test_device.sh)
CUDA_EMU_SCRIPT_DEPS = $(if $(HAVE_CUDA_HEADERS),$(BUILD)/test_cuda_emu_tsan $(BUILD)/train_zelo_emu $(BUILD)/rerank_emu $(BUILD)/zelo_fit_emu)
# test/test_cuda.cu holds every kernel of kernels/*.cuh, and kernels/model_cuda.cu (which it
# includes), against model.c; its nvcc build reaches cuBLAS and cuBLASLt through
# kernels/matmul.cuh (the emulated one, cpu/gemm.c and matmul.cuh's own kernel). It trains
# real models through model.h's API too: model.c built with USE_CUDA (its bert_* dispatch to
# the device), the tiny BERT fixture, all-MiniLM-L6-v2's weights (io/weights.c)
CUDA_C_SRC_test_cuda = cpu/gemm.c io/safetensors.c io/weights.c $(SRC_JSON) $(SRC_DS) test/model_fixture.c $(SRC_ZELO)
CUDA_OBJS_test_cuda = $(BUILD)/c_obj_cuda/model.o
$(BUILD)/gpu/test_cuda: LDLIBS += -lcublas -lcublasLt
# (the emulated build includes the emulator's rewrite of it, which must be remade first)
$(BUILD)/test_cuda: $(BUILD)/emu_src/kernels/model_cuda.cu
$(BUILD)/gpu/test_cuda: kernels/model_cuda.cu
# test/test_cuda_bf16_model.cu trains the tiny BERT fixture and all-MiniLM-L6-v2 at PRECISION_BF16
# through model.h's API against the CPU's fp32, as test_cuda does at fp32 (the same links)
CUDA_C_SRC_test_cuda_bf16_model = $(CUDA_C_SRC_test_cuda)
CUDA_OBJS_test_cuda_bf16_model = $(CUDA_OBJS_test_cuda)
$(BUILD)/gpu/test_cuda_bf16_model: LDLIBS += -lcublas -lcublasLt
$(BUILD)/test_cuda_bf16_model: $(BUILD)/emu_src/kernels/model_cuda.cu
$(BUILD)/gpu/test_cuda_bf16_model: kernels/model_cuda.cu
# test/test_zelo_cuda.cu holds the rating-fit kernel (kernels/zelo_fit.cuh) against zelo_loss.c
CUDA_C_SRC_test_zelo_cuda = $(SRC_ZELO)
# test/test_cuda_bf16.cu holds the bf16 kernels against model.c's layers (and AdamW) fed the
# same bf16-rounded inputs, and against the fp32 kernels, and the fused attention
# (kernels/flash_attention.cuh) through its plain products here, its tensor cores too in the
# nvcc build (sm_80 and later); kernels/matmul.cuh's bf16 products run on cuBLASLt on a GPU
CUDA_C_SRC_test_cuda_bf16 = model.c cpu/gemm.c $(SRC_ZELO)
$(BUILD)/gpu/test_cuda_bf16: LDLIBS += -lcublas -lcublasLt
# dev/cuda/<kernel>.cu: a program per kernel that checks it against model.c, then times it
# on a GPU ($(BUILD)/gpu/dev_<kernel>, nvcc) or only checks it ($(BUILD)/dev_<kernel>,
# emulated); `make dev-cuda` builds and runs the emulated ones
DEV_CUDA = $(basename $(notdir $(wildcard dev/cuda/*.cu)))
DEV_CUDA_C_OBJS = $(call cuda_c_objs,model.c cpu/gemm.c $(SRC_ZELO))
$(addprefix $(BUILD)/dev_,$(DEV_CUDA)): $(BUILD)/dev_%: $(BUILD)/emu_src/dev/cuda/%.cu $(DEV_CUDA_C_OBJS) $(EMU_KERNELS) kernels/cuda_emu.h $(BUILD)/emu_src/kernels/model_cuda.cu $(wildcard dev/cuda/*.h) $(HEADERS)
	$(CXX) $(EMU_CXXFLAGS) -o $@ -x c++ $< -x none $(DEV_CUDA_C_OBJS) $(LDLIBS)
$(addprefix $(BUILD)/gpu/dev_,$(DEV_CUDA)): $(BUILD)/gpu/dev_%: dev/cuda/%.cu $(DEV_CUDA_C_OBJS) $(wildcard kernels/*.cuh) kernels/model_cuda.cu $(wildcard dev/cuda/*.h) $(HEADERS)
	@test -n "$(NVCC)" || { echo "nvcc not found: put it on the PATH or set NVCC"; exit 1; }
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_WARN) -I. -o $@ $< $(DEV_CUDA_C_OBJS) -Xcompiler -fopenmp $(LDLIBS) -lcublas -lcublasLt
.PHONY: dev-cuda dev-cuda-gpu
dev-cuda: $(addprefix $(BUILD)/dev_,$(DEV_CUDA))
	@for p in $^; do echo "== $$p"; $$p || exit 1; done
dev-cuda-gpu: $(addprefix $(BUILD)/gpu/dev_,$(DEV_CUDA))

# ---- train_zelo, rerank and zelo_fit with the GPU backend: model.c built with USE_CUDA (bert_* dispatch
# to the device), kernels/model_cuda.cu as the one translation unit that includes
# kernels/*.cuh. With nvcc and the libraries (CUDA_PROBE above) they are the programs
# themselves (NVCC_FLAGS picks the architecture); $(BUILD)/<program>_emu is the same program
# with model_cuda.cu built through the emulator, so that CI runs --device cuda on the CPU
# (test/test_device.sh).
TRAIN_CUDA_C_OBJS = $(call cuda_c_objs,$(filter-out model.c,$(SRC_TRAIN)) $(SRC_DS)) $(BUILD)/c_obj_cuda/model.o
RERANK_CUDA_C_OBJS = $(call cuda_c_objs,$(filter-out model.c,$(SRC_RERANK)) $(SRC_ZELO) $(SRC_DS)) $(BUILD)/c_obj_cuda/model.o
ZELO_FIT_CUDA_C_OBJS = $(call cuda_c_objs,$(filter-out model.c,$(SRC_ZELO_FIT)) $(SRC_DS)) $(BUILD)/c_obj_cuda/model.o
$(BUILD)/c_obj_cuda/model.o: model.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DUSE_CUDA -c -o $@ model.c
$(BUILD)/gpu/model_cuda.o: kernels/model_cuda.cu $(wildcard kernels/*.cuh) $(HEADERS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_WARN) -I. -c -o $@ $<
# common/dist.c alone calls MPI (and NCCL): with NCCL for the GPU build, without it for the
# emulated one (whose "device" memory is the host's, and which has no CUDA runtime to link)
$(BUILD)/c_obj/common/dist.o: CFLAGS += $(DIST_GPU_CFLAGS)
$(BUILD)/c_obj_emu/common/dist.o: common/dist.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DIST_CFLAGS) -c -o $@ common/dist.c
TRAIN_EMU_C_OBJS = $(filter-out $(BUILD)/c_obj/common/dist.o,$(TRAIN_CUDA_C_OBJS)) $(BUILD)/c_obj_emu/common/dist.o
ifeq ($(CUDA_PROBE),yes)
train_zelo: $(TRAIN_CUDA_C_OBJS) $(BUILD)/gpu/model_cuda.o
	$(NVCC) -o $@ $^ -Xcompiler -fopenmp -lcublas -lcublasLt $(LDLIBS) $(DIST_GPU_LIBS)
rerank: $(RERANK_CUDA_C_OBJS) $(BUILD)/gpu/model_cuda.o
	$(NVCC) -o $@ $^ -Xcompiler -fopenmp -lcublas -lcublasLt $(LDLIBS)
zelo_fit: $(ZELO_FIT_CUDA_C_OBJS) $(BUILD)/gpu/model_cuda.o
	$(NVCC) -o $@ $^ -Xcompiler -fopenmp -lcublas -lcublasLt $(LDLIBS)
endif
$(BUILD)/emu_obj/model_cuda.o: $(BUILD)/emu_src/kernels/model_cuda.cu $(EMU_KERNELS) kernels/cuda_emu.h $(HEADERS)
	@mkdir -p $(@D)
	$(CXX) $(EMU_CXXFLAGS) -c -o $@ -x c++ $<
$(BUILD)/train_zelo_emu: $(TRAIN_EMU_C_OBJS) $(BUILD)/emu_obj/model_cuda.o
	$(CXX) -fopenmp -o $@ $^ $(LDLIBS) $(DIST_LIBS)
$(BUILD)/rerank_emu: $(RERANK_CUDA_C_OBJS) $(BUILD)/emu_obj/model_cuda.o
	$(CXX) -fopenmp -o $@ $^ $(LDLIBS)
$(BUILD)/zelo_fit_emu: $(ZELO_FIT_CUDA_C_OBJS) $(BUILD)/emu_obj/model_cuda.o
	$(CXX) -fopenmp -o $@ $^ $(LDLIBS)
# ---- end of the CUDA emulator block ----

# ---- fuzz targets (dev/fuzz/, README "Fuzzing"): every reader of outside bytes under
# libFuzzer with ASan and UBSan, built by clang. `make fuzz` runs each for FUZZ_SECONDS;
# dev/fuzz/run.sh checks first that clang can build a fuzzer here and skips them if not;
# `make test` runs it too, FUZZ_SECONDS each.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# OpenMP through libgomp (gcc's, always there): clang then runs the pragmas serially
FUZZ_FLAGS = $(FUZZ_CFLAGS) -std=gnu11 -Wall -Wextra -fopenmp=libgomp -I. -DZELO_FUZZING
FUZZ_TARGETS = json beir_texts qrels safetensors hf_config model optimizer bm25 dense tokenizer_load tokenize \
               trec judgments judge_file cmd_answers train
FUZZ_SRC_json = $(SRC_JSON)
FUZZ_SRC_beir_texts = $(SRC_DATA)
FUZZ_SRC_qrels = $(SRC_DATA)
FUZZ_SRC_safetensors = io/safetensors.c $(SRC_JSON)
FUZZ_SRC_hf_config = $(SRC_WEIGHTS)
FUZZ_SRC_model = $(SRC_MODEL)
FUZZ_SRC_optimizer = $(SRC_MODEL)
FUZZ_SRC_bm25 = $(SRC_BM25)
FUZZ_SRC_dense = $(SRC_DENSE) $(SRC_MODEL) $(SRC_TOKENIZER)
FUZZ_SRC_tokenizer_load = $(SRC_TOKENIZER)
FUZZ_SRC_tokenize = $(SRC_TOKENIZER)
FUZZ_SRC_trec = $(SRC_METRICS)
FUZZ_SRC_judgments = $(SRC_ZELO) $(SRC_MODEL) $(SRC_JSON)    # includes zelo_fit.c
FUZZ_SRC_judge_file = judges/judge.c $(SRC_DENSE) judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c \
                      io/safetensors.c io/weights.c $(SRC_MODEL) $(SRC_TOKENIZER)
FUZZ_SRC_cmd_answers = $(SRC_JSON)                           # includes judges/judge_cmd.c
FUZZ_SRC_train = $(filter-out train.c,$(SRC_TRAIN))          # includes train.c
.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: dev/fuzz/fuzz_%.c dev/fuzz/fuzz.h dev/fuzz/tiny.h $$(FUZZ_SRC_$$*) $(SRC_DS) $(HEADERS) zelo_fit.c train.c judges/judge_cmd.c
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(sort $(FUZZ_SRC_$*)) $(SRC_DS) -lm
fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/fuzz_$(t))
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) bash dev/fuzz/run.sh $(FUZZ_TARGETS)
# the binary seeds of dev/fuzz/seeds/ (model, optimizer, BM25 index, embeddings, run files)
$(BUILD)/fuzz_make_seeds: dev/fuzz/make_seeds.c dev/fuzz/tiny.h $(SRC_TRAIN) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/fuzz/make_seeds.c $(filter-out train.c,$(SRC_TRAIN)) $(SRC_DS) $(LDLIBS)

# a test target builds only the tests whose sources exist yet, so work in progress on
# one module never breaks the others' tests
AVAILABLE_TESTS = $(foreach t,$(TESTS),$(if $(wildcard test/$(t).c),$(BUILD)/$(t)))
test: $(AVAILABLE_TESTS) $(CUDA_EMU_TESTS) $(CUDA_EMU_SCRIPT_DEPS) $(PROGRAMS) $(BUILD)/rerank_checkpoint
	@export FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC); status=0; $(if $(NVCC),$(MAKE) --no-print-directory nvcc_check || status=1;) \
	bash test/run_all.sh $(AVAILABLE_TESTS) $(CUDA_EMU_TESTS) test/test_rerank.sh test/test_train.sh test/test_mpi.sh $(CUDA_EMU_SCRIPTS) \
	    dev/fuzz/run.sh || status=1; \
	$(MAKE) --no-print-directory test-san || status=1; exit $$status

# The sanitizer pass: every C test, and a short run of each program (test/test_programs_san.sh),
# built by clang with AddressSanitizer and UndefinedBehaviorSanitizer into $(BUILD)/san. Every
# report is fatal, leaks at exit included, with exit status 86, which no refusal (1) shares.
# OpenMP is clang's libomp here; it reports no leak, so nothing is suppressed.
SAN_TESTS = $(AVAILABLE_TESTS:$(BUILD)/%=$(BUILD)/san/%)
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:exitcode=86 \
          ZELO_FIT=$(BUILD)/san/zelo_fit SAN_BIN=$(BUILD)/san
test-san:
	@$(MAKE) --no-print-directory SAN=1 BUILD=$(BUILD)/san $(SAN_TESTS) $(PROGRAMS:%=$(BUILD)/san/%)
	@echo "=== sanitizer pass ($(BUILD)/san: ASan + UBSan, leak checking on)"
	@$(SAN_ENV) bash test/run_all.sh $(SAN_TESTS) test/test_programs_san.sh

bench:
	@bash dev/bench_all.sh

clean:
	rm -rf $(BUILD) $(PROGRAMS)
