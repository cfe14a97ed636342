// Time per stage of a forward pass (embedding, projections, attention, ...), for `pbs2p bench --profile`.
//
// A StageProfile is made active on one thread with ProfileSession; code marks what it is doing with
// StageScope, which charges the time since the last switch (wall clock, and CPU time of the recording
// thread: with one thread that is all the work, and steady on a machine shared with other jobs) to the
// stage that was running and restores it on exit (a stage nested in another, such as activation quantization
// inside a projection, is charged to itself only). Only the thread that activated the profile records: OpenMP
// worker threads see no active profile, so scopes inside parallel regions cost one thread-local load and
// record nothing. With no active profile a scope reads no clock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace pbs2p {

enum class Stage : int {
    other,      // anything not marked below (residual adds, copies, loop overhead)
    embedding,  // token (and position) embedding lookup
    attn_proj,  // q, k, v, o projections
    attention,  // rotary embedding, KV cache append, scores, softmax, weighted values
    norms,      // every norm, the final one included
    ffn,        // MLP projections and activation function
    act_quant,  // quantizing activations inside kernels (charged apart from the product they serve)
    head,       // LM head product
    count
};

inline constexpr std::array<const char*, static_cast<int>(Stage::count)> kStageNames = {
    "other", "embedding", "attn_proj", "attention", "norms", "ffn", "act_quant", "head"};

struct StageProfile {
    using PerStage = std::array<double, static_cast<int>(Stage::count)>;
    PerStage seconds{};      // wall clock
    PerStage cpu_seconds{};  // CPU time of the recording thread
    static double sum(const PerStage& v) {
        double s = 0;
        for (double x : v) s += x;
        return s;
    }
    double total() const { return sum(seconds); }
    double cpu_total() const { return sum(cpu_seconds); }
};

namespace detail {
struct StageClock {
    StageProfile* profile = nullptr;
    Stage current = Stage::other;
    double wall = 0.0, cpu = 0.0;  // at the last switch
};
inline thread_local StageClock stage_clock;

inline double wall_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
inline double thread_cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Charges the time since the last switch to the running stage and makes `next` the running one.
inline Stage switch_stage(Stage next) {
    StageClock& c = stage_clock;
    const double wall = wall_now(), cpu = thread_cpu_now();
    c.profile->seconds[static_cast<int>(c.current)] += wall - c.wall;
    c.profile->cpu_seconds[static_cast<int>(c.current)] += cpu - c.cpu;
    c.wall = wall;
    c.cpu = cpu;
    const Stage previous = c.current;
    c.current = next;
    return previous;
}
}  // namespace detail

// Records into `profile` on this thread for the scope's lifetime (not nestable).
class ProfileSession {
  public:
    explicit ProfileSession(StageProfile& profile) {
        detail::stage_clock = {&profile, Stage::other, detail::wall_now(), detail::thread_cpu_now()};
    }
    ~ProfileSession() {
        detail::switch_stage(Stage::other);
        detail::stage_clock.profile = nullptr;
    }
    ProfileSession(const ProfileSession&) = delete;
    ProfileSession& operator=(const ProfileSession&) = delete;
};

class StageScope {
  public:
    explicit StageScope(Stage stage) {
        if (detail::stage_clock.profile) {
            active_ = true;
            previous_ = detail::switch_stage(stage);
        }
    }
    ~StageScope() {
        if (active_ && detail::stage_clock.profile) detail::switch_stage(previous_);
    }
    StageScope(const StageScope&) = delete;
    StageScope& operator=(const StageScope&) = delete;

  private:
    bool active_ = false;
    Stage previous_ = Stage::other;
};

}  // namespace pbs2p
