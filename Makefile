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
# stb_ds's functions (Debian libstb-dev), which every program and test links
SRC_DS = common/stb_ds.c
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

.PHONY: all test test-san bench clean
all: $(PROGRAMS)

SRC_TRAIN = train.c io/beir.c retrieval/bm25.c retrieval/analyzer.c retrieval/dense.c judges/distill.c judges/judge.c judges/judge_cmd.c io/metrics.c retrieval/score.c io/synth.c \
            zelo_loss.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
# each program builds at the root, or into $(BUILD) for the sanitizer pass (make test-san)
train_zelo $(BUILD)/train_zelo: $(SRC_TRAIN) $(SRC_DS) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(SRC_TRAIN) $(SRC_DS) $(LDLIBS)

zelo_fit $(BUILD)/zelo_fit: zelo_fit.c $(SRC_ZELO) $(SRC_JSON) $(SRC_DS) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ zelo_fit.c $(SRC_ZELO) $(SRC_JSON) $(SRC_DS) $(LDLIBS)

SRC_RERANK = rerank.c retrieval/score.c io/beir.c io/metrics.c tokenizer/wordpiece.c $(SRC_WEIGHTS)
rerank $(BUILD)/rerank: $(SRC_RERANK) $(SRC_DS) $(HEADERS)
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
$(BUILD)/test_model: test/test_model.c $(SRC_MODEL) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_model.c $(SRC_MODEL) $(SRC_DS) $(LDLIBS)
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
$(BUILD)/test_synth: test/test_synth.c io/synth.c $(SRC_DATA) $(SRC_BM25) $(SRC_METRICS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_synth.c io/synth.c io/beir.c retrieval/bm25.c retrieval/analyzer.c io/metrics.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_judge_cmd: test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge_cmd.c judges/judge_cmd.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_judge: test/test_judge.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_judge.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)
$(BUILD)/test_distill: test/test_distill.c judges/distill.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) $(SRC_DATA) $(SRC_WEIGHTS) $(SRC_TOKENIZER) $(SRC_DS) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ test/test_distill.c judges/distill.c judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c io/safetensors.c io/weights.c model.c cpu/gemm.c tokenizer/wordpiece.c $(SRC_JSON) $(SRC_DS) $(LDLIBS)

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

# a test target builds only the tests whose sources exist yet, so work in progress on
# one module never breaks the others' tests
AVAILABLE_TESTS = $(foreach t,$(TESTS),$(if $(wildcard test/$(t).c),$(BUILD)/$(t)))
test: $(AVAILABLE_TESTS) $(PROGRAMS) $(BUILD)/rerank_checkpoint
	@status=0; bash test/run_all.sh $(AVAILABLE_TESTS) test/test_rerank.sh test/test_train.sh || status=1; \
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
