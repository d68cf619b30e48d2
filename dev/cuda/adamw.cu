/*
 * dev/cuda/adamw.cu — kernels/adamw.cuh's AdamW step over a flat buffer of BERT-base's
 * parameter tensors (per tensor, weight decay where parameter_tensor_decays says) against
 * model.c bert_adamw_update on a model of the same config, then timed.
 */
#include "model.h"
#include "kernels/adamw.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    BertConfig config;
    memset(&config, 0, sizeof(config));
    config.vocab_size = 30522; config.max_position = 512; config.type_vocab_size = 2; config.num_layers = 12;
    if (small_shapes()) {  // the emulator steps 110M parameters slowly: a smaller model, the same tensors
        config.num_layers = 1;
        config.vocab_size = 1000;
    }
    config.hidden_size = 768; config.num_heads = 12; config.intermediate_size = 3072;
    config.num_labels = 1; config.layer_norm_eps = 1e-12f;
    BertModel model;
    bert_build(&model, &config);
    bert_init_random(&model, 42);
    size_t n = model.num_parameters;
    printf("adamw %zu parameters (%d layers, C=768)\n", n, config.num_layers);
    int decays[NUM_PARAMETER_TENSORS];
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { decays[i] = parameter_tensor_decays(i); }
    // a first step on the CPU from random gradients gives m and v their state; the second,
    // from new random gradients, runs on both sides from the same values
    model.grads_memory = malloc_and_point_parameters(&model.grads, model.param_sizes);
    for (size_t i = 0; i < n; i++) { model.grads_memory[i] = 0.01f * rand_uniform(); }
    bert_adamw_update(&model, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    for (size_t i = 0; i < n; i++) { model.grads_memory[i] = 0.01f * rand_uniform(); }
    float* d_params = (float*)to_device(model.params_memory, n * sizeof(float));
    float* d_grads = (float*)to_device(model.grads_memory, n * sizeof(float));
    float* d_m = (float*)to_device(model.m_memory, n * sizeof(float));
    float* d_v = (float*)to_device(model.v_memory, n * sizeof(float));
    const int step = 2;
    bert_adamw_update(&model, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    adamw_update_cuda(d_params, d_m, d_v, d_grads, model.param_sizes, decays, NUM_PARAMETER_TENSORS, 1e-4f, 0.9f,
                      0.999f, 1e-8f, 0.01f, step, 0);
    cudaCheck(cudaDeviceSynchronize());
    // K = 1: the same expressions in the same order
    validate_result(d_m, model.m_memory, n, "m", tolerance(1));
    validate_result(d_v, model.v_memory, n, "v", tolerance(1));
    validate_result(d_params, model.params_memory, n, "params", tolerance(1));

    float ms = benchmark(20, [&] {
        adamw_update_cuda(d_params, d_m, d_v, d_grads, model.param_sizes, decays, NUM_PARAMETER_TENSORS, 1e-4f, 0.9f,
                          0.999f, 1e-8f, 0.01f, step, 0);
    });
    // params, m, v read and written, grads read
    report_time("adamw_update_cuda", ms, 7.0 * n * sizeof(float), 0, bandwidth, tflops);
    cudaCheck(cudaFree(d_params)); cudaCheck(cudaFree(d_grads)); cudaCheck(cudaFree(d_m)); cudaCheck(cudaFree(d_v));
    bert_free(&model);
    printf("adamw: all results match\n");
    return 0;
}
