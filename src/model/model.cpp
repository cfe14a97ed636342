#include "model/model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>

#include "core/atomic_file.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stage_profile.h"

namespace pbs2p {
namespace {

// Prefill works on groups of whole sequences of at most this many rows (bounds the workspace).
constexpr int64_t kChunkRows = 4096;
// Query rows per attention block: keys beyond the block's last row are never computed.
constexpr int64_t kAttentionBlock = 128;
// Elementwise loops smaller than this run on one thread (a parallel region costs more than the work,
// especially during single-token decoding).
constexpr int64_t kParallelMin = 1 << 15;

void add_in_place(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// Sine/cosine table for positions pos0..pos0+count-1: [count x head_dim/2] each.
struct RopeTable {
    std::vector<float> cos, sin;
    int64_t half = 0;
};

// Fills t in place (no allocation once t has held `count` positions).
void fill_rope_table(const std::vector<float>& inv_freq, int64_t pos0, int64_t count, RopeTable& t) {
    t.half = static_cast<int64_t>(inv_freq.size());
    t.cos.resize(static_cast<size_t>(count * t.half));
    t.sin.resize(t.cos.size());
    for (int64_t p = 0; p < count; ++p) {
        for (int64_t i = 0; i < t.half; ++i) {
            // fp32 angle, as Hugging Face computes it.
            float angle = static_cast<float>(pos0 + p) * inv_freq[static_cast<size_t>(i)];
            t.cos[static_cast<size_t>(p * t.half + i)] = std::cos(angle);
            t.sin[static_cast<size_t>(p * t.half + i)] = std::sin(angle);
        }
    }
}

// Rotates x [rows x heads*head_dim] in place (rotate_half convention: pairs (i, i + head_dim/2)); row r is
// at table position r.
void apply_rope(float* x, int64_t rows, int64_t heads, const RopeTable& t) {
    const int64_t half = t.half, head_dim = 2 * half;
#pragma omp parallel for schedule(static) if (rows * heads * head_dim >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* c = t.cos.data() + r * half;
        const float* s = t.sin.data() + r * half;
        for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (r * heads + h) * head_dim;
            for (int64_t i = 0; i < half; ++i) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

// Floats of attention scores one thread needs for T query rows at positions from pos0.
int64_t attention_scores_per_thread(int64_t T, int64_t pos0) {
    return std::min(kAttentionBlock, T) * (pos0 + T);
}

// Causal attention of T query rows at positions pos0..pos0+T-1 over keys/values at positions
// 0..pos0+T-1. q/out: [T x q_dim]; keys/values: rows with stride kv_dim. Work items are (head, block of
// query rows), spread over OpenMP threads in one parallel region; inside it each item runs two sgemm
// calls (scores = Q K^T, out = P V; OpenBLAS runs single-threaded inside a parallel region, so there
// is no nested oversubscription) around a masked softmax. Keys beyond a block's last row are never
// computed. scores: attention_scores_per_thread(T, pos0) floats per thread of the region.
void causal_attention(const ModelConfig& c, const float* q, int64_t T, const float* keys, const float* values,
                      int64_t pos0, float* out, float* scores) {
    const int64_t qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
    const int64_t group = c.num_heads / c.num_kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t blocks = (T + kAttentionBlock - 1) / kAttentionBlock;
    const int64_t items = c.num_heads * blocks;
    const bool parallel = items > 1 && T * (pos0 + T) * c.num_heads >= kParallelMin;
#pragma omp parallel if (parallel)
    {
        float* s = scores + omp_get_thread_num() * attention_scores_per_thread(T, pos0);
#pragma omp for schedule(dynamic)
        for (int64_t item = 0; item < items; ++item) {
            const int64_t h = item % c.num_heads, kvh = h / group;
            const int64_t i0 = (blocks - 1 - item / c.num_heads) * kAttentionBlock;  // longest blocks first
            const int64_t rows = std::min(kAttentionBlock, T - i0);
            const int64_t keys_seen = pos0 + i0 + rows;
            sgemm(false, true, rows, keys_seen, hd, scale, q + i0 * qd + h * hd, qd, keys + kvh * hd, kvd, 0.0f, s,
                  keys_seen);
            for (int64_t r = 0; r < rows; ++r) {
                float* row = s + r * keys_seen;
                const int64_t visible = pos0 + i0 + r + 1;
                float mx = row[0];
                for (int64_t j = 1; j < visible; ++j) mx = std::max(mx, row[j]);
                float sum = 0.0f;
                for (int64_t j = 0; j < visible; ++j) {
                    row[j] = std::exp(row[j] - mx);
                    sum += row[j];
                }
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
                for (int64_t j = visible; j < keys_seen; ++j) row[j] = 0.0f;
            }
            sgemm(false, false, rows, hd, keys_seen, 1.0f, s, keys_seen, values + kvh * hd, kvd, 0.0f,
                  out + i0 * qd + h * hd, qd);
        }
    }
}

// Stands in for a decoder linear weight that a lazily loaded model has not read yet.
class DeferredWeight final : public LinearKernel {
  public:
    DeferredWeight(std::string name, int64_t out, int64_t in) : name_(std::move(name)), out_(out), in_(in) {}
    void forward(const float*, int64_t, float*) const override {
        fail("{}: weight not loaded (its block is not materialized)", name_);
    }
    int64_t in_features() const override { return in_; }
    int64_t out_features() const override { return out_; }
    int64_t weight_bytes() const override { return 0; }
    std::string format_name() const override { return "deferred"; }

  private:
    std::string name_;
    int64_t out_, in_;
};

bool is_deferred(const Linear& l) {
    return l.weight.empty() && dynamic_cast<const DeferredWeight*>(l.kernel.get()) != nullptr;
}

}  // namespace

// ---- Linear / Norm -----------------------------------------------------------------------------------

void Linear::forward(const float* x, int64_t tokens, float* y) const {
    if (kernel) {
        kernel->forward(x, tokens, y);
    } else {
        PBS2P_CHECK(weight.rows == out_features && weight.cols == in_features, "{}: linear has no weight loaded",
                    name);
        matmul_xwt(x, tokens, in_features, weight.ptr(), out_features, y);
    }
    if (bias.empty()) return;
    const float* b = bias.data();
    const int64_t out = out_features;
#pragma omp parallel for schedule(static) if (tokens * out >= kParallelMin)
    for (int64_t t = 0; t < tokens; ++t) {
        float* row = y + t * out;
        for (int64_t j = 0; j < out; ++j) row[j] += b[j];
    }
}

int64_t Linear::weight_bytes() const {
    int64_t bytes = kernel ? kernel->weight_bytes() : weight.size() * static_cast<int64_t>(sizeof(float));
    return bytes + static_cast<int64_t>(bias.size() * sizeof(float));
}

void Norm::forward(const float* x, int64_t rows, int64_t cols, float* y) const {
    const StageScope stage(Stage::norms);
    const bool rms = kind == NormKind::rms;
    const float* w = weight.empty() ? nullptr : weight.data();
    const float* b = bias.empty() ? nullptr : bias.data();
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* in = x + r * cols;
        float* out = y + r * cols;
        double mean = 0.0;
        if (!rms) {
            for (int64_t j = 0; j < cols; ++j) mean += in[j];
            mean /= static_cast<double>(cols);
        }
        double var = 0.0;
        for (int64_t j = 0; j < cols; ++j) {
            double d = in[j] - mean;
            var += d * d;
        }
        var /= static_cast<double>(cols);
        const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
        const float m = static_cast<float>(mean);
        for (int64_t j = 0; j < cols; ++j) {
            float v = (in[j] - m) * inv;
            if (w) v *= w[j];
            if (b) v += b[j];
            out[j] = v;
        }
    }
}

void Embedding::copy_row(int64_t row, float* out) const {
    if (table)
        table->decode_row(row, out);
    else
        std::memcpy(out, weight.row(row), sizeof(float) * static_cast<size_t>(weight.cols));
}

void Embedding::multiply(const float* x, int64_t tokens, float* y) const {
    const StageScope stage(Stage::head);
    if (table)
        table->forward(x, tokens, y);
    else
        matmul_xwt(x, tokens, weight.cols, weight.ptr(), weight.rows, y);
}

int64_t Embedding::weight_bytes() const {
    return table ? table->weight_bytes() : weight.size() * static_cast<int64_t>(sizeof(float));
}

// ---- loading -----------------------------------------------------------------------------------------

Linear load_linear(const SafetensorsReader& tensors, const std::string& name, int64_t out, int64_t in, bool bias,
                   const LinearSource& source) {
    Linear linear;
    linear.name = name;
    linear.in_features = in;
    linear.out_features = out;
    if (source && source(name, out, in, linear)) {
        PBS2P_CHECK(linear.kernel || (linear.weight.rows == out && linear.weight.cols == in),
                    "{}: linear source provided neither a kernel nor a [{} x {}] weight", name, out, in);
        PBS2P_CHECK(!linear.kernel || (linear.kernel->out_features() == out && linear.kernel->in_features() == in),
                    "{}: kernel shape [{} x {}] does not match the config [{} x {}]", name,
                    linear.kernel->out_features(), linear.kernel->in_features(), out, in);
    } else {
        linear.weight = tensors.load_matrix(name + ".weight", out, in);
    }
    if (bias && linear.bias.empty()) linear.bias = tensors.load_vector(name + ".bias", out);
    return linear;
}

Norm load_norm(const SafetensorsReader& tensors, const std::string& name, NormKind kind, double eps, int64_t dim,
               bool affine) {
    Norm norm;
    norm.name = name;
    norm.kind = kind;
    norm.eps = static_cast<float>(eps);
    if (affine) {
        norm.weight = tensors.load_vector(name + ".weight", dim);
        if (kind == NormKind::layer) norm.bias = tensors.load_vector(name + ".bias", dim);
    }
    return norm;
}

Embedding load_embedding(const SafetensorsReader& tensors, const std::string& name, int64_t rows,
                         int64_t cols, const TableSource& tables) {
    Embedding e;
    e.name = name;
    if (tables) e.table = tables(name, rows, cols);
    if (e.table) {
        PBS2P_CHECK(e.table->rows() == rows && e.table->cols() == cols,
                    "{}: table is [{} x {}], the config needs [{} x {}]", name, e.table->rows(),
                    e.table->cols(), rows, cols);
    } else {
        e.weight = tensors.load_matrix(name, rows, cols);
    }
    return e;
}

std::vector<float> rope_inverse_frequencies(const ModelConfig& c) {
    const int64_t half = c.head_dim / 2;
    std::vector<float> inv(static_cast<size_t>(half));
    const RopeScaling& s = c.rope_scaling;
    for (int64_t i = 0; i < half; ++i) {
        // HF: 1 / theta^(2i/d) computed in fp32.
        float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
        float f = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
        if (s.type == "linear") {
            f = static_cast<float>(f / s.factor);
        } else if (s.type == "llama3") {
            const double old_len = static_cast<double>(s.original_max_position_embeddings);
            const double low_wavelen = old_len / s.low_freq_factor;
            const double high_wavelen = old_len / s.high_freq_factor;
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = static_cast<float>(f / s.factor);
            } else if (wavelen >= high_wavelen) {  // medium band: interpolate
                double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                f = static_cast<float>((1.0 - smooth) * f / s.factor + smooth * f);
            }
        }
        inv[static_cast<size_t>(i)] = f;
    }
    return inv;
}

Model Model::load(const ModelConfig& config, const SafetensorsReader& tensors, const LinearSource& source,
                  const TableSource& tables) {
    Model model;
    model.config_ = config;
    model.parts_ = config.family == ModelFamily::opt ? load_opt_parts(config, tensors, source, tables)
                                                     : load_llama_parts(config, tensors, source, tables);
    if (config.use_rope) model.rope_inv_freq_ = rope_inverse_frequencies(config);
    return model;
}

Model Model::load_lazy(const std::string& dir) {
    const ModelConfig config = load_hf_config(dir);
    auto tensors = std::make_shared<const SafetensorsReader>(SafetensorsReader::open(dir));
    const LinearSource deferred = [&](const std::string& name, int64_t out, int64_t in, Linear& linear) {
        const TensorInfo& t = tensors->tensor(name + ".weight");
        PBS2P_CHECK(t.shape == (std::vector<int64_t>{out, in}) &&
                        (t.dtype == DType::f32 || t.dtype == DType::f16 || t.dtype == DType::bf16),
                    "{}: tensor '{}.weight' must be a floating-point [{} x {}] matrix", t.file, name, out,
                    in);
        linear.kernel = std::make_shared<DeferredWeight>(name, out, in);
        return true;
    };
    Model model = load(config, *tensors, deferred);
    tensors->drop_cached_pages();  // the embeddings and norms were copied out
    model.lazy_tensors_ = std::move(tensors);
    return model;
}

void Model::materialize_block(int l) {
    if (!lazy_tensors_) return;
    for (Linear* linear : block_linears(l)) {
        if (!is_deferred(*linear)) continue;
        linear->weight =
            lazy_tensors_->load_matrix(linear->name + ".weight", linear->out_features, linear->in_features);
        linear->kernel.reset();
    }
    lazy_tensors_->drop_cached_pages();
}

void Model::release_block(int l) {
    if (!lazy_tensors_) return;
    for (Linear* linear : block_linears(l)) {
        if (linear->kernel && !is_deferred(*linear)) continue;  // a kernel of another kind stays
        linear->weight = Matrix();
        linear->kernel =
            std::make_shared<DeferredWeight>(linear->name, linear->out_features, linear->in_features);
    }
}

Model Model::load(const std::string& dir, const LinearSource& source) {
    ModelConfig config = load_hf_config(dir);
    SafetensorsReader tensors = SafetensorsReader::open(dir);
    return load(config, tensors, source);
}

// ---- forward -----------------------------------------------------------------------------------------

namespace {
void fit(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
}
}  // namespace

// Buffers of one block's forward pass; they only grow, so repeated calls of the same size allocate nothing.
struct Model::Workspace {
    std::vector<float> normed, q, k, v, attn, tmp, ff1, ff2, scores;
    RopeTable rope;
    // For `rows` rows attending to at most `keys` positions.
    void reserve(const ModelConfig& c, int64_t rows, int64_t seq, int64_t keys) {
        fit(scores, omp_get_max_threads() * std::min(kAttentionBlock, seq) * std::max(keys, seq));
        fit(normed, rows * c.hidden_size);
        fit(q, rows * c.q_dim());
        fit(k, rows * c.kv_dim());
        fit(v, rows * c.kv_dim());
        fit(attn, rows * c.q_dim());
        fit(tmp, rows * c.hidden_size);
        fit(ff1, rows * c.intermediate_size);
        if (c.gated_mlp) fit(ff2, rows * c.intermediate_size);
    }
};

void Model::embed_into(const int32_t* tokens, int64_t rows, int64_t seq, int64_t pos0, float* hidden,
                       float* embedded) const {
    const StageScope stage(Stage::embedding);
    const ModelConfig& c = config_;
    for (int64_t r = 0; r < rows; ++r) {
        PBS2P_CHECK(tokens[r] >= 0 && tokens[r] < c.vocab_size,
                    "embed: token id {} outside the vocabulary (size {})", tokens[r], c.vocab_size);
    }
    const bool project = parts_.project_in.present();
    float* out = project ? embedded : hidden;
    for (int64_t r = 0; r < rows; ++r) parts_.token_embedding.copy_row(tokens[r], out + r * c.embed_dim);
    if (project) parts_.project_in.forward(embedded, rows, hidden);
    if (!parts_.position_embedding.weight.empty()) {
        const Matrix& pos = parts_.position_embedding.weight;
        PBS2P_CHECK(pos0 + seq + c.position_offset <= pos.rows,
                    "embed: position {} exceeds max_position_embeddings ({})", pos0 + seq - 1,
                    c.max_position_embeddings);
        for (int64_t r = 0; r < rows; ++r) {
            const float* p = pos.row(pos0 + r % seq + c.position_offset);
            float* h = hidden + r * c.hidden_size;
            for (int64_t j = 0; j < c.hidden_size; ++j) h[j] += p[j];
        }
    }
}

Matrix Model::embed_at(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq, int64_t pos0) const {
    const ModelConfig& c = config_;
    const int64_t rows = batch * seq;
    PBS2P_CHECK(static_cast<int64_t>(tokens.size()) == rows, "embed: {} tokens given for batch {} x seq {}",
                tokens.size(), batch, seq);
    Matrix hidden(rows, c.hidden_size);
    Matrix embedded(parts_.project_in.present() ? rows : 0, c.embed_dim);
    embed_into(tokens.data(), rows, seq, pos0, hidden.ptr(), embedded.ptr());
    return hidden;
}

Matrix Model::embed(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq) const {
    return embed_at(tokens, batch, seq, 0);
}

void Model::block_forward(int l, float* x, int64_t batch, int64_t seq, int64_t pos0, KvCache* cache,
                          const LinearObserver& observer, Workspace& ws) const {
    const ModelConfig& c = config_;
    const Block& b = parts_.blocks[static_cast<size_t>(l)];
    const int64_t rows = batch * seq, H = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim();
    const int64_t keys = cache ? pos0 + seq : seq;
    ws.reserve(c, rows, seq, keys);
    // initializer_list: no vector is built unless an observer is set (decoding allocates nothing here).
    auto observe = [&](std::initializer_list<const Linear*> linears, const float* input, int64_t cols) {
        if (observer) observer(std::vector<const Linear*>(linears), input, rows, cols);
    };

    // Attention.
    const float* attn_in = x;
    if (c.pre_norm) {
        b.attn_norm.forward(x, rows, H, ws.normed.data());
        attn_in = ws.normed.data();
    }
    observe({&b.q, &b.k, &b.v}, attn_in, H);
    {
        const StageScope stage(Stage::attn_proj);
        b.q.forward(attn_in, rows, ws.q.data());
        b.k.forward(attn_in, rows, ws.k.data());
        b.v.forward(attn_in, rows, ws.v.data());
    }
    const StageScope attention_stage(Stage::attention);
    RopeTable& rope = ws.rope;
    if (c.use_rope) fill_rope_table(rope_inv_freq_, pos0, seq, rope);
    for (int64_t s = 0; s < batch; ++s) {
        float* q = ws.q.data() + s * seq * qd;
        float* k = ws.k.data() + s * seq * kvd;
        float* v = ws.v.data() + s * seq * kvd;
        if (c.use_rope) {
            apply_rope(q, seq, c.num_heads, rope);
            apply_rope(k, seq, c.num_kv_heads, rope);
        }
        const float* keys = k;
        const float* values = v;
        if (cache) {
            Matrix& ck = cache->keys[static_cast<size_t>(l)];
            Matrix& cv = cache->values[static_cast<size_t>(l)];
            std::memcpy(ck.row(pos0), k, sizeof(float) * seq * kvd);
            std::memcpy(cv.row(pos0), v, sizeof(float) * seq * kvd);
            keys = ck.ptr();
            values = cv.ptr();
        }
        causal_attention(c, q, seq, keys, values, cache ? pos0 : 0, ws.attn.data() + s * seq * qd,
                         ws.scores.data());
    }
    observe({&b.o}, ws.attn.data(), qd);
    {
        const StageScope stage(Stage::attn_proj);
        b.o.forward(ws.attn.data(), rows, ws.tmp.data());
    }
    const StageScope other_stage(Stage::other);
    add_in_place(x, ws.tmp.data(), rows * H);
    if (!c.pre_norm) b.attn_norm.forward(x, rows, H, x);

    // MLP.
    const float* mlp_in = x;
    if (c.pre_norm) {
        b.mlp_norm.forward(x, rows, H, ws.normed.data());
        mlp_in = ws.normed.data();
    }
    const int64_t n = rows * c.intermediate_size;
    float* act = ws.ff1.data();
    StageScope ffn_stage(Stage::ffn);
    if (c.gated_mlp) {
        observe({&b.gate, &b.up}, mlp_in, H);
        b.gate.forward(mlp_in, rows, act);
        b.up.forward(mlp_in, rows, ws.ff2.data());
        const float* up = ws.ff2.data();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
        for (int64_t i = 0; i < n; ++i) {
            float g = act[i];
            act[i] = g / (1.0f + std::exp(-g)) * up[i];
        }
    } else {
        observe({&b.up}, mlp_in, H);
        b.up.forward(mlp_in, rows, act);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
        for (int64_t i = 0; i < n; ++i) act[i] = std::max(act[i], 0.0f);
    }
    observe({&b.down}, act, c.intermediate_size);
    b.down.forward(act, rows, ws.tmp.data());
    const StageScope residual_stage(Stage::other);
    add_in_place(x, ws.tmp.data(), rows * H);
    if (!c.pre_norm) b.mlp_norm.forward(x, rows, H, x);
}

void Model::run_block(int l, Matrix& hidden, int64_t batch, int64_t seq, const LinearObserver& observer) const {
    PBS2P_CHECK(l >= 0 && l < num_blocks(), "run_block: block {} out of range (model has {})", l, num_blocks());
    PBS2P_CHECK(hidden.rows == batch * seq && hidden.cols == config_.hidden_size,
                "run_block: hidden is [{} x {}], expected [{} x {}]", hidden.rows, hidden.cols, batch * seq,
                config_.hidden_size);
    const int64_t per_chunk = std::max<int64_t>(1, kChunkRows / std::max<int64_t>(seq, 1));
    Workspace ws;
    for (int64_t s0 = 0; s0 < batch; s0 += per_chunk) {
        const int64_t n = std::min(per_chunk, batch - s0);
        block_forward(l, hidden.row(s0 * seq), n, seq, 0, nullptr, observer, ws);
    }
}

Matrix Model::forward_hidden(const std::vector<int32_t>& tokens, KvCache* cache) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    PBS2P_CHECK(n > 0, "forward: no tokens");
    const int64_t pos0 = cache ? cache->length : 0;
    if (cache) {
        PBS2P_CHECK(pos0 + n <= cache->capacity(), "forward: KV cache full ({} + {} tokens > capacity {})", pos0, n,
                    cache->capacity());
    }
    if (config_.sliding_window > 0 && pos0 + n > config_.sliding_window) {
        static bool warned = false;
        if (!warned) {
            log_info("warning: context {} exceeds sliding_window {}; attending to the full context", pos0 + n,
                     config_.sliding_window);
            warned = true;
        }
    }
    Matrix hidden = embed_at(tokens, 1, n, pos0);
    Workspace ws;
    for (int l = 0; l < num_blocks(); ++l) block_forward(l, hidden.ptr(), 1, n, pos0, cache, {}, ws);
    if (cache) cache->length += n;
    return hidden;
}

Matrix Model::forward(const std::vector<int32_t>& tokens) const { return final_logits(forward_hidden(tokens, nullptr)); }

Matrix Model::forward(const std::vector<int32_t>& tokens, KvCache& cache) const {
    return final_logits(forward_hidden(tokens, &cache));
}

// ---- single-token decoding ---------------------------------------------------------------------------

struct DecodeSession::State {
    const Model* model = nullptr;
    int64_t capacity = 0;  // also for a model without blocks (no cache rows)
    KvCache cache;
    Model::Workspace ws;
    std::vector<float> hidden, embedded, normed, projected, logits;
};

DecodeSession::DecodeSession(const Model& model, int64_t capacity) : state_(std::make_unique<State>()) {
    const ModelConfig& c = model.config();
    PBS2P_CHECK(capacity > 0, "decode session: capacity must be positive, got {}", capacity);
    State& s = *state_;
    s.model = &model;
    s.capacity = capacity;
    s.cache = model.new_cache(capacity);
    s.ws.reserve(c, 1, 1, capacity);
    if (c.use_rope) fill_rope_table(model.rope_inv_freq_, 0, 1, s.ws.rope);
    s.hidden.resize(static_cast<size_t>(c.hidden_size));
    s.embedded.resize(static_cast<size_t>(c.embed_dim));
    s.normed.resize(static_cast<size_t>(c.hidden_size));
    s.projected.resize(static_cast<size_t>(c.embed_dim));
    s.logits.resize(static_cast<size_t>(c.vocab_size));
}

DecodeSession::~DecodeSession() = default;
DecodeSession::DecodeSession(DecodeSession&&) noexcept = default;
DecodeSession& DecodeSession::operator=(DecodeSession&&) noexcept = default;

const float* DecodeSession::step(int32_t token) {
    State& s = *state_;
    const Model& m = *s.model;
    const int64_t pos = s.cache.length;
    PBS2P_CHECK(pos < s.capacity, "decode session: KV cache full (capacity {})", s.capacity);
    m.embed_into(&token, 1, 1, pos, s.hidden.data(), s.embedded.data());
    static const Model::LinearObserver no_observer;
    for (int l = 0; l < m.num_blocks(); ++l)
        m.block_forward(l, s.hidden.data(), 1, 1, pos, &s.cache, no_observer, s.ws);
    ++s.cache.length;
    m.logits_into(s.hidden.data(), 1, s.logits.data(), s.normed.data(), s.projected.data());
    return s.logits.data();
}

const float* DecodeSession::prefill(const std::vector<int32_t>& tokens) {
    State& s = *state_;
    PBS2P_CHECK(s.cache.length + static_cast<int64_t>(tokens.size()) <= s.capacity,
                "decode session: {} + {} tokens exceed the capacity {}", s.cache.length, tokens.size(),
                s.capacity);
    const Matrix hidden = s.model->forward_hidden(tokens, s.model->num_blocks() > 0 ? &s.cache : nullptr);
    if (s.model->num_blocks() == 0) s.cache.length += static_cast<int64_t>(tokens.size());
    s.model->logits_into(hidden.row(hidden.rows - 1), 1, s.logits.data(), s.normed.data(),
                         s.projected.data());
    return s.logits.data();
}

int64_t DecodeSession::length() const {
    return state_->cache.length;
}
int64_t DecodeSession::capacity() const {
    return state_->capacity;
}
void DecodeSession::reset() {
    state_->cache.clear();
}

KvCache Model::new_cache(int64_t capacity) const {
    KvCache cache;
    for (int l = 0; l < num_blocks(); ++l) {
        cache.keys.emplace_back(capacity, config_.kv_dim());
        cache.values.emplace_back(capacity, config_.kv_dim());
    }
    return cache;
}

const Embedding& Model::lm_head() const {
    return parts_.lm_head.present() ? parts_.lm_head : parts_.token_embedding;
}

void Model::logits_into(const float* x, int64_t rows, float* logits, float* normed, float* projected) const {
    if (parts_.has_final_norm) {
        parts_.final_norm.forward(x, rows, config_.hidden_size, normed);
        x = normed;
    }
    if (parts_.project_out.present()) {
        parts_.project_out.forward(x, rows, projected);
        x = projected;
    }
    lm_head().multiply(x, rows, logits);
}

Matrix Model::final_logits(const Matrix& hidden, int64_t row0, int64_t rows) const {
    const ModelConfig& c = config_;
    PBS2P_CHECK(hidden.cols == c.hidden_size && row0 >= 0 && row0 + rows <= hidden.rows,
                "final_logits: rows [{}, {}) of a [{} x {}] hidden state", row0, row0 + rows, hidden.rows,
                hidden.cols);
    std::vector<float> normed(static_cast<size_t>(parts_.has_final_norm ? rows * c.hidden_size : 0));
    std::vector<float> projected(static_cast<size_t>(parts_.project_out.present() ? rows * c.embed_dim : 0));
    Matrix logits(rows, c.vocab_size);
    logits_into(hidden.row(row0), rows, logits.ptr(), normed.data(), projected.data());
    return logits;
}

Matrix Model::final_logits(const Matrix& hidden) const { return final_logits(hidden, 0, hidden.rows); }

// ---- linears, size, save -----------------------------------------------------------------------------

std::vector<const Linear*> Model::block_linears(int l) const {
    PBS2P_CHECK(l >= 0 && l < num_blocks(), "block_linears: block {} out of range (model has {})", l, num_blocks());
    const Block& b = parts_.blocks[static_cast<size_t>(l)];
    std::vector<const Linear*> out{&b.q, &b.k, &b.v, &b.o};
    if (b.gate.present()) out.push_back(&b.gate);
    out.push_back(&b.up);
    out.push_back(&b.down);
    return out;
}

std::vector<Linear*> Model::block_linears(int l) {
    std::vector<Linear*> out;
    for (const Linear* p : std::as_const(*this).block_linears(l)) out.push_back(const_cast<Linear*>(p));
    return out;
}

std::vector<Linear*> Model::all_linears() {
    std::vector<Linear*> out;
    for (int l = 0; l < num_blocks(); ++l) {
        auto b = block_linears(l);
        out.insert(out.end(), b.begin(), b.end());
    }
    return out;
}

namespace {

// Tensors with their HF names, in no particular order: fn(name, data, shape). Empty ones (weights held
// by a kernel, absent norms) are skipped.
template <typename Fn>
void visit_matrix(const std::string& name, const Matrix& m, Fn&& fn) {
    if (!m.empty()) fn(name, m.ptr(), std::vector<int64_t>{m.rows, m.cols});
}

template <typename Fn>
void visit_vector(const std::string& name, const std::vector<float>& v, Fn&& fn) {
    if (!v.empty()) fn(name, v.data(), std::vector<int64_t>{static_cast<int64_t>(v.size())});
}

template <typename Fn>
void visit_linear(const Linear& l, Fn&& fn) {
    if (!l.present()) return;
    visit_matrix(l.name + ".weight", l.weight, fn);  // skipped when a kernel holds the weight
    visit_vector(l.name + ".bias", l.bias, fn);
}

template <typename Fn>
void visit_norm(const Norm& n, Fn&& fn) {
    visit_vector(n.name + ".weight", n.weight, fn);
    visit_vector(n.name + ".bias", n.bias, fn);
}

template <typename Fn>
void for_each_block_tensor_of(const Block& b, Fn&& fn) {
    visit_norm(b.attn_norm, fn);
    visit_norm(b.mlp_norm, fn);
    for (const Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) visit_linear(*l, fn);
}

template <typename Fn>
void for_each_shared_tensor_of(const Model::Parts& p, Fn&& fn) {
    visit_matrix(p.token_embedding.name, p.token_embedding.weight, fn);
    visit_matrix(p.position_embedding.name, p.position_embedding.weight, fn);
    visit_linear(p.project_in, fn);
    visit_linear(p.project_out, fn);
    if (p.has_final_norm) visit_norm(p.final_norm, fn);
    visit_matrix(p.lm_head.name, p.lm_head.weight, fn);
}

template <typename Fn>
void for_each_tensor(const Model::Parts& p, Fn&& fn) {
    for_each_shared_tensor_of(p, fn);
    for (const Block& b : p.blocks) for_each_block_tensor_of(b, fn);
}

}  // namespace

void Model::save(const std::string& out_dir, const std::string& source_dir, DType dtype,
                 const std::map<std::string, std::string>& metadata) const {
    namespace fs = std::filesystem;
    PBS2P_CHECK(dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16,
                "{}: weights can be saved as F32, F16 or BF16, not {}", out_dir, dtype_name(dtype));
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    PBS2P_CHECK(!ec, "{}: cannot create directory: {}", out_dir, ec.message());
    for (int b = 0; b < num_blocks(); ++b)
    for (const Linear* l : block_linears(b)) {
        PBS2P_CHECK(!l->weight.empty(), "{}: weight is held by a '{}' kernel and cannot be saved as dense", l->name,
                    l->kernel ? l->kernel->format_name() : std::string("?"));
    }
    for (const Embedding* e : {&parts_.token_embedding, &parts_.lm_head}) {
        PBS2P_CHECK(!e->table, "{}: table is held by a '{}' kernel and cannot be saved as dense", e->name,
                    e->table ? e->table->format_name() : std::string("?"));
    }
    std::vector<TensorToWrite> tensors;
    for_each_tensor(parts_, [&](const std::string& name, const float* data, std::vector<int64_t> shape) {
        tensors.push_back(tensor_from_floats(name, data, std::move(shape), dtype));
    });
    std::map<std::string, std::string> meta = metadata;
    meta.emplace("format", "pt");
    write_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors, meta);
    copy_model_side_files(source_dir, out_dir);
}

void copy_model_side_files(const std::string& source_dir, const std::string& out_dir) {
    namespace fs = std::filesystem;
    const char* copied[] = {"config.json",         "generation_config.json", "tokenizer.model", "tokenizer.json",
                            "tokenizer_config.json", "special_tokens_map.json", "vocab.json",      "merges.txt"};
    for (const char* file : copied) {
        fs::path from = fs::path(source_dir) / file;
        if (!fs::exists(from)) continue;
        copy_file_atomically(from.string(), (fs::path(out_dir) / file).string());
    }
}

void Model::for_each_block_tensor(int l, const TensorVisitor& visit) const {
    PBS2P_CHECK(l >= 0 && l < num_blocks(), "block {} out of range (model has {})", l, num_blocks());
    for_each_block_tensor_of(parts_.blocks[static_cast<size_t>(l)], visit);
}

void Model::for_each_shared_tensor(const TensorVisitor& visit) const {
    for_each_shared_tensor_of(parts_, visit);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> Model::block_tensor_shapes(int l) const {
    PBS2P_CHECK(l >= 0 && l < num_blocks(), "block {} out of range (model has {})", l, num_blocks());
    const Block& b = parts_.blocks[static_cast<size_t>(l)];
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    const auto add = [&out](const std::string& name, const float*, const std::vector<int64_t>& shape) {
        out.emplace_back(name, shape);
    };
    visit_norm(b.attn_norm, add);
    visit_norm(b.mlp_norm, add);
    for (const Linear* linear : block_linears(l)) {
        out.emplace_back(linear->name + ".weight",
                         std::vector<int64_t>{linear->out_features, linear->in_features});
        visit_vector(linear->name + ".bias", linear->bias, add);
    }
    return out;
}

int64_t Model::weight_bytes() const {
    int64_t bytes = 0;
    for_each_tensor(parts_, [&](const std::string&, const float*, const std::vector<int64_t>& shape) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        bytes += n * static_cast<int64_t>(sizeof(float));
    });
    for (int b = 0; b < num_blocks(); ++b)
    for (const Linear* l : block_linears(b)) {
        if (l->weight.empty() && l->kernel) bytes += l->kernel->weight_bytes();
    }
    for (const Embedding* e : {&parts_.token_embedding, &parts_.lm_head})
        if (e->table) bytes += e->table->weight_bytes();
    return bytes;
}

}  // namespace pbs2p
