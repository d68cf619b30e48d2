/*
 * dev/cuda/bert_common.h — what the programs that run whole training steps of
 * kernels/model_cuda.cu share (bert_step.cu, profile_step.cu): a BERT-shaped config, a packed
 * batch of random ids, and a model built on both sides with the same random parameters.
 * Include after kernels/model_cuda.cu and dev/cuda/common.h.
 */
#ifndef ZELO_DEV_CUDA_BERT_COMMON_H
#define ZELO_DEV_CUDA_BERT_COMMON_H

static BertConfig bert_config(int L, int C, int V) {
    BertConfig config;
    memset(&config, 0, sizeof(config));
    config.vocab_size = V; config.hidden_size = C; config.num_layers = L; config.num_heads = 12;
    config.intermediate_size = 4 * C; config.max_position = 512; config.type_vocab_size = 2;
    config.num_labels = 1; config.layer_norm_eps = 1e-12f;
    return config;
}

// a packed batch of random ids: [CLS]-like first token of each sequence, types 0 then 1
static void random_batch(int* ids, int* types, const int* seq_starts, int S, int V) {
    for (int s = 0; s < S; s++) {
        int start = seq_starts[s], T = seq_starts[s + 1] - start;
        for (int t = 0; t < T; t++) {
            ids[start + t] = t == 0 ? 101 % V : (int)(0.5f * (rand_uniform() + 1.0f) * (V - 1));
            types[start + t] = t >= T / 2;
        }
    }
}

// a model of the config on both sides, randomly initialised on the CPU, the same parameters
// uploaded to the device, whose layers compute at the given precision
static void build_pair(BertModel* cpu, BertModelCuda* gpu, const BertConfig* config, Precision precision) {
    bert_build(cpu, config);
    bert_init_random(cpu, 7);
    bert_cuda_build(gpu, config, PACKING_JOINT, precision);
    bert_cuda_upload_parameters(gpu, cpu->params_memory);
}

#endif // ZELO_DEV_CUDA_BERT_COMMON_H
