"""
Writes the fixtures of test/test_biencoder.c into test/fixtures/biencoder/, from PyTorch
(float64) and sentence-transformers, independently of the C code under test:

tiny/              a random BertModel (V = 64, C = 16, L = 2, 2 heads, I = 32, P = 32) saved by
                   transformers' save_pretrained, with its vocab.txt (the special tokens,
                   the letters, ##letters and a few words: any lower-case ASCII text tokenizes)
                   and tokenizer_config.json; weights N(0, 0.3^2), LayerNorm weights 1 + N(0, 0.1^2),
                   biases N(0, 0.1^2), so that nothing is trivial
loss.json          cases of the listwise loss of retrieval/biencoder.h on random embeddings
                   (float32 values): {"G", "C", "doc_start", "ratings", "emb", "tau", "T",
                   "in_batch", "loss", "demb"}; loss and demb = d loss / d emb from autograd
step.json          one training step's batch for tiny/: {"seqs": token ids per sequence (G
                   queries, then the documents), "G", "doc_start", "ratings", "tau", "T",
                   "in_batch", "loss"}; the embedding is the mean of the last hidden states
                   over every token, as sentence-transformers' mean pooling
step_grads.safetensors  d loss / d parameter for every tensor of tiny/, under its Hugging
                   Face name (F32 of the float64 gradients)
st_export/         the small files of the sentence-transformers folder that build/test_biencoder
                   exports from tiny/ (`build/test_biencoder export DIR`), which
                   sentence-transformers loaded below (the test holds its export to them byte
                   for byte), and st_embeddings.json: {"max_seq_length", "texts",
                   "embeddings"} = SentenceTransformer(DIR).encode(texts) (float32, as a user
                   gets them; normalised)

Run from the repository root:  python dev/gen_biencoder_fixture.py
"""
import json
import os
import shutil
import string
import subprocess
import tempfile

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

OUT = "test/fixtures/biencoder"
torch.manual_seed(14)


def listwise_loss(emb, G, doc_start, ratings, tau, T, in_batch):
    """The loss of retrieval/biencoder.h, written from its definition."""
    u = torch.nn.functional.normalize(emb, dim=1, eps=1e-12)
    q, d = u[:G], u[G:]
    total = 0.0
    for g in range(G):
        lo, hi = doc_start[g], doc_start[g + 1]
        cols = range(d.shape[0]) if in_batch else range(lo, hi)
        cols = list(cols)
        logits = (d[cols] @ q[g]) / tau
        target = torch.zeros(len(cols), dtype=emb.dtype)
        own = torch.softmax(ratings[lo:hi] / T, dim=0)
        for k, j in enumerate(cols):
            if lo <= j < hi:
                target[k] = own[j - lo]
        total = total + -(target * torch.log_softmax(logits, dim=0)).sum()
    return total / G


def loss_cases():
    cases = []
    for G, sizes, C, tau, T, in_batch in [
        (3, [2, 3, 4], 6, 0.05, 0.4155, 0),
        (3, [2, 3, 4], 6, 0.05, 0.4155, 1),
        (2, [5, 1], 8, 1.0, 1.0, 1),
        (1, [6], 5, 0.2, 0.7, 0),
    ]:
        doc_start = [0]
        for s in sizes:
            doc_start.append(doc_start[-1] + s)
        n = doc_start[-1]
        emb = torch.randn(G + n, C).float().double().requires_grad_(True)
        ratings = torch.randn(n).float().double()
        loss = listwise_loss(emb, G, doc_start, ratings, tau, T, in_batch)
        loss.backward()
        cases.append({"G": G, "C": C, "doc_start": doc_start, "ratings": ratings.tolist(),
                      "emb": emb.detach().flatten().tolist(), "tau": tau, "T": T, "in_batch": in_batch,
                      "loss": loss.item(), "demb": emb.grad.flatten().tolist()})
    return cases


def tiny_model(path):
    words = ["wing", "flow", "heat", "shock", "layer", "boundary", "the", "of", "pressure", "mach"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase) + \
        ["##" + c for c in string.ascii_lowercase] + words + [".", ","]
    vocab = vocab[:64]
    cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, type_vocab_size=2)
    model = BertModel(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 32}, f)
    return model, vocab


def step_case(model):
    model = model.double()
    model.eval()  # no dropout: the C model has none
    G, sizes = 2, [3, 4]
    doc_start = [0, 3, 7]
    n = doc_start[-1]
    # [CLS] (=2) tokens [SEP] (=3), lengths 3..12, ids from the ordinary tokens 5..63
    seqs = []
    for length in [4, 6] + [3 + (5 * k) % 10 for k in range(n)]:
        seqs.append([2] + torch.randint(5, 64, (length - 2,)).tolist() + [3])
    ratings = torch.randn(n).float().double()
    tau, T, in_batch = 0.05, 0.4155, 1
    model.zero_grad()
    emb = torch.stack([model(input_ids=torch.tensor([s])).last_hidden_state[0].mean(dim=0) for s in seqs])
    loss = listwise_loss(emb, G, doc_start, ratings, tau, T, in_batch)
    loss.backward()
    # the pooler takes no part in the loss: autograd leaves it None, its gradient is 0
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().float().contiguous()
             for name, p in model.named_parameters()}
    meta = {"seqs": seqs, "G": G, "doc_start": doc_start, "ratings": ratings.tolist(), "tau": tau, "T": T,
            "in_batch": in_batch, "loss": loss.item()}
    return meta, grads


def st_export():
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel
    subprocess.run(["make", "NO_CUDA=1", "build/test_biencoder"], check=True)
    tmp = tempfile.mkdtemp()
    export = os.path.join(tmp, "st")
    subprocess.run(["build/test_biencoder", "export", export], check=True)
    _, info = AutoModel.from_pretrained(export, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"transformers loads the export with problems: {problems}")
    st = SentenceTransformer(export, device="cpu")
    texts = ["the boundary layer of a wing", "Shock, heat and PRESSURE.", "mach", "flow of the flow of the flow",
             "xylophone quartz", "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h"]
    emb = st.encode(texts, convert_to_tensor=True, normalize_embeddings=False)
    norms = emb.norm(dim=1)
    if not torch.allclose(norms, torch.ones_like(norms), atol=1e-5):
        raise SystemExit(f"the export's embeddings are not normalised: norms {norms.tolist()}")
    dst = os.path.join(OUT, "st_export")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "1_Pooling"))
    for name in ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "config.json",
                 "tokenizer_config.json", "special_tokens_map.json", "1_Pooling/config.json"]:
        shutil.copy(os.path.join(export, name), os.path.join(dst, name))
    with open(os.path.join(dst, "st_embeddings.json"), "w") as f:
        json.dump({"max_seq_length": st.max_seq_length, "texts": texts, "embeddings": emb.tolist()}, f)
    shutil.rmtree(tmp)
    print(f"sentence-transformers: {st}, max_seq_length {st.max_seq_length}")


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "loss.json"), "w") as f:
        json.dump(loss_cases(), f)
    model, _ = tiny_model(os.path.join(OUT, "tiny"))
    meta, grads = step_case(model)
    with open(os.path.join(OUT, "step.json"), "w") as f:
        json.dump(meta, f)
    save_file(grads, os.path.join(OUT, "step_grads.safetensors"))
    st_export()


if __name__ == "__main__":
    main()
