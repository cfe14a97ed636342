// Peer check (built by scripts/peers/check_gguf_export against llama.cpp's ggml, never by the product):
// loads two GGUF files with ggml's own reader and compares, tensor by tensor, the values ggml's own
// dequantization gives. Every tensor of A must exist in B with the same shape.
//   gguf_compare A.gguf B.gguf [--only-type TYPE]   TYPE: compare only tensors that B stores as TYPE
// Prints one line per differing tensor and a summary; exit status 1 when any compared tensor differs.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf.h"

static std::vector<float> values(const ggml_tensor* t) {
    std::vector<float> out(static_cast<size_t>(ggml_nelements(t)));
    if (t->type == GGML_TYPE_F32) {
        std::memcpy(out.data(), t->data, ggml_nbytes(t));
    } else {
        ggml_get_type_traits(t->type)->to_float(t->data, out.data(), ggml_nelements(t));
    }
    return out;
}

int main(int argc, char** argv) {
    if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--only-type")) {
        std::fprintf(stderr, "usage: gguf_compare A.gguf B.gguf [--only-type TYPE]\n");
        return 2;
    }
    const std::string only = argc == 5 ? argv[4] : "";
    ggml_context *ctx_a = nullptr, *ctx_b = nullptr;
    gguf_context* a = gguf_init_from_file(argv[1], {false, &ctx_a});
    gguf_context* b = gguf_init_from_file(argv[2], {false, &ctx_b});
    if (!a || !b) {
        std::fprintf(stderr, "gguf_compare: cannot load %s\n", !a ? argv[1] : argv[2]);
        return 2;
    }
    int compared = 0, differing = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(a); ++i) {
        const char* name = gguf_get_tensor_name(a, i);
        const ggml_tensor* ta = ggml_get_tensor(ctx_a, name);
        const ggml_tensor* tb = ggml_get_tensor(ctx_b, name);
        if (!tb || !ggml_are_same_shape(ta, tb)) {
            std::printf("%s: missing or of another shape in %s\n", name, argv[2]);
            ++differing;
            continue;
        }
        if (!only.empty() && only != ggml_type_name(tb->type)) continue;
        const std::vector<float> va = values(ta), vb = values(tb);
        int64_t diff = 0;
        for (size_t k = 0; k < va.size(); ++k) diff += va[k] != vb[k];
        ++compared;
        if (diff) {
            ++differing;
            std::printf("%s: %lld of %zu values differ (%s vs %s)\n", name, static_cast<long long>(diff),
                        va.size(), ggml_type_name(ta->type), ggml_type_name(tb->type));
        }
    }
    std::printf("%d tensors compared, %d differ\n", compared, differing);
    return differing ? 1 : 0;
}
