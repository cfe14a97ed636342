// DecodeSession: same logits as incremental Model::forward, a full cache is an error, no operator new
// per step once the session exists, and a profiled decode accounts for the whole step by stage.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>

#include "core/error.h"
#include "core/stage_profile.h"
#include "eval/bench.h"

// Counts every operator new of this test binary (replacing the global one is allowed once per program).
namespace {
std::atomic<int64_t> g_news{0};
}
void* operator new(std::size_t n) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    return operator new(n);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

namespace pbs2p {
namespace {

SyntheticModelSpec tiny_packed(TableType tables) {
    SyntheticModelSpec spec;
    spec.shape = "tiny";
    spec.weights = SyntheticWeights::packed;
    spec.embedding_type = spec.head_type = tables;
    return spec;
}

TEST(DecodeSession, MatchesIncrementalForward) {
    for (TableType tables : {TableType::f32, TableType::q8}) {
        const Model model = make_synthetic_model(tiny_packed(tables));
        const std::vector<int32_t> prompt = {4, 80, 7}, tokens = {1, 17, 200, 3, 3, 99, 255, 0};
        DecodeSession session(model, 16);
        KvCache cache = model.new_cache(16);
        const float* first = session.prefill(prompt);
        const Matrix prompt_logits = model.forward(prompt, cache);
        for (int64_t v = 0; v < model.config().vocab_size; ++v)
            ASSERT_NEAR(first[v], prompt_logits(2, v), 1e-5f * (1.0f + std::fabs(prompt_logits(2, v))));
        for (int32_t id : tokens) {
            const float* logits = session.step(id);
            const Matrix expected = model.forward({id}, cache);
            for (int64_t v = 0; v < model.config().vocab_size; ++v)
                ASSERT_EQ(logits[v], expected(0, v)) << table_type_name(tables) << " vocab " << v;
        }
        EXPECT_EQ(session.length(), static_cast<int64_t>(prompt.size() + tokens.size()));
        session.reset();
        EXPECT_EQ(session.length(), 0);
    }
}

TEST(DecodeSession, FullCacheAndBadTokenAreErrors) {
    const Model model = make_synthetic_model(tiny_packed(TableType::q4));
    DecodeSession session(model, 2);
    EXPECT_THROW(session.step(model.config().vocab_size), Error);
    session.step(1);
    session.step(2);
    EXPECT_THROW(session.step(3), Error);
}

TEST(DecodeSession, StepsAllocateNothing) {
    for (TableType tables : {TableType::f32, TableType::f16, TableType::q8, TableType::q4}) {
        const Model model = make_synthetic_model(tiny_packed(tables));
        DecodeSession session(model, 64);
        session.step(5);  // first step: thread-local kernel scratch of every width is sized here
        session.step(6);
        const int64_t before = g_news.load();
        for (int32_t i = 0; i < 40; ++i) session.step(i % 256);
        EXPECT_EQ(g_news.load() - before, 0) << table_type_name(tables);
    }
}

TEST(DecodeSession, ProfileChargesEveryStage) {
    const Model model = make_synthetic_model(tiny_packed(TableType::q8));
    DecodeSession session(model, 32);
    StageProfile profile;
    {
        const ProfileSession recording(profile);
        for (int32_t i = 0; i < 20; ++i) session.step(i);
    }
    for (Stage s : {Stage::embedding, Stage::attn_proj, Stage::attention, Stage::norms, Stage::ffn,
                    Stage::act_quant, Stage::head})
        EXPECT_GT(profile.seconds[static_cast<int>(s)], 0.0) << kStageNames[static_cast<int>(s)];
    EXPECT_GT(profile.cpu_total(), 0.0);
    // Outside a session nothing is recorded.
    StageProfile untouched;
    session.reset();
    session.step(1);
    EXPECT_EQ(untouched.total(), 0.0);
}

}  // namespace
}  // namespace pbs2p
