/*
 * io/sentence_transformers.c — the sentence-transformers folder of a bi-encoder (see the header).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "io/sentence_transformers.h"
#include "io/weights.h"
#include "common/utils.h"

static void write_text(const char* dir, const char* name, const char* text) {
    char path[4096];
    joinPathCheck(path, sizeof(path), dir, name);
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fputs(text, fp);
    atomicCommit(&af);
}

static void make_dir(const char* path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { die("could not create directory '%s': %s", path, strerror(errno)); }
}

void bert_export_sentence_transformers(const BertModel* model, const char* dir, const char* vocab_path,
                                       int do_lower_case, int max_length) {
    // the transformer first: it checks the vocabulary and max_length before writing anything
    bert_export_hf_encoder(model, dir, vocab_path, do_lower_case, max_length);
    char text[1024], sub[4096];
    snprintf(text, sizeof(text), "{\n  \"max_seq_length\": %d,\n  \"do_lower_case\": false\n}\n", max_length);
    write_text(dir, "sentence_bert_config.json", text);
    write_text(dir, "modules.json",
        "[\n"
        "  {\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},\n"
        "  {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},\n"
        "  {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}\n"
        "]\n");
    write_text(dir, "config_sentence_transformers.json", "{\n  \"similarity_fn_name\": \"cosine\"\n}\n");
    joinPathCheck(sub, sizeof(sub), dir, "1_Pooling");
    make_dir(sub);
    snprintf(text, sizeof(text),
        "{\n"
        "  \"word_embedding_dimension\": %d,\n"
        "  \"pooling_mode_cls_token\": false,\n"
        "  \"pooling_mode_mean_tokens\": true,\n"
        "  \"pooling_mode_max_tokens\": false,\n"
        "  \"pooling_mode_mean_sqrt_len_tokens\": false,\n"
        "  \"pooling_mode_weightedmean_tokens\": false,\n"
        "  \"pooling_mode_lasttoken\": false,\n"
        "  \"include_prompt\": true\n"
        "}\n", model->config.hidden_size);
    write_text(sub, "config.json", text);
    joinPathCheck(sub, sizeof(sub), dir, "2_Normalize");
    make_dir(sub);
}
