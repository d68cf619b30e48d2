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

.PHONY: all test bench clean fuzz fuzz-build
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
FUZZ_SRC_dense = retrieval/dense.c $(SRC_MODEL) $(SRC_TOKENIZER)
FUZZ_SRC_tokenizer_load = $(SRC_TOKENIZER)
FUZZ_SRC_tokenize = $(SRC_TOKENIZER)
FUZZ_SRC_trec = $(SRC_METRICS)
FUZZ_SRC_judgments = $(SRC_ZELO) $(SRC_JSON)                 # includes zelo_fit.c
FUZZ_SRC_judge_file = judges/judge.c retrieval/dense.c judges/judge_cmd.c $(SRC_ZELO) $(SRC_BM25) io/beir.c \
                      io/safetensors.c io/weights.c $(SRC_MODEL) $(SRC_TOKENIZER)
FUZZ_SRC_cmd_answers = $(SRC_JSON)                           # includes judges/judge_cmd.c
FUZZ_SRC_train = $(filter-out train.c,$(SRC_TRAIN))          # includes train.c
.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: dev/fuzz/fuzz_%.c dev/fuzz/fuzz.h dev/fuzz/tiny.h $$(FUZZ_SRC_$$*) $(HEADERS) zelo_fit.c train.c judges/judge_cmd.c
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(sort $(FUZZ_SRC_$*)) -lm
fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/fuzz_$(t))
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) bash dev/fuzz/run.sh $(FUZZ_TARGETS)
# the binary seeds of dev/fuzz/seeds/ (model, optimizer, BM25 index, embeddings, run files)
$(BUILD)/fuzz_make_seeds: dev/fuzz/make_seeds.c dev/fuzz/tiny.h $(SRC_TRAIN) $(HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $@ dev/fuzz/make_seeds.c $(filter-out train.c,$(SRC_TRAIN)) $(LDLIBS)

# a test target builds only the tests whose sources exist yet, so work in progress on
# one module never breaks the others' tests
AVAILABLE_TESTS = $(foreach t,$(TESTS),$(if $(wildcard test/$(t).c),$(BUILD)/$(t)))
test: $(AVAILABLE_TESTS) $(PROGRAMS) $(BUILD)/rerank_checkpoint
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) bash test/run_all.sh $(AVAILABLE_TESTS) test/test_rerank.sh test/test_train.sh dev/fuzz/run.sh

bench:
	@bash dev/bench_all.sh

clean:
	rm -rf $(BUILD) $(PROGRAMS)
