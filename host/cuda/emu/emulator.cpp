// Runs the kernels of host/cuda/ on the CPU (see shim.h): one C entry point
// that launches a kernel by name with cuLaunchKernel's argument convention
// (an array of pointers to the arguments).
#include "shim.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace lflow_emu {
thread_local dim3 thread_idx, block_idx;
thread_local Block* block = nullptr;
thread_local std::size_t static_cursor = 0;
dim3 block_dim, grid_dim;
std::atomic<const char*> failure{nullptr};
void fail(const char* what) {
    const char* none = nullptr;
    failure.compare_exchange_strong(none, what);
}

// The launch's kernel name, for failure reports.
const char* running_kernel = "";

// The last access of one 4-byte word of shared memory, for the race check.
struct Word {
    uint32_t w_epoch = 0, w_warp_epoch = 0, r_epoch = 0, r_warp_epoch = 0;
    int32_t writer = -1, reader = -1;
    bool many_readers = false;
    bool readers_in_warps = false;  // several readers, of more than one warp
};

// The access record of one block slot's shared memory.
struct Shadow {
    std::mutex m;
    std::vector<Word> static_words, dynamic_words;
};

namespace {
char failure_text[512];
std::atomic<bool> failure_taken{false};

void race(const char* region, std::size_t byte, int first, const char* first_did, unsigned second,
          const char* second_does) {
    if (failure_taken.exchange(true)) return;
    std::snprintf(failure_text, sizeof failure_text,
                  "shared-memory race in %s at %s byte %zu: thread %d %s it and thread %u %s it with no "
                  "__syncthreads between",
                  running_kernel, region, byte, first, first_did, second, second_does);
    fail(failure_text);
}
}  // namespace

bool check_shared(const void* p, std::size_t bytes, bool write) {
    Block* b = block;
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto st = reinterpret_cast<std::uintptr_t>(b->static_smem);
    const auto dy = reinterpret_cast<std::uintptr_t>(b->dynamic_smem);
    std::vector<Word>* words;
    std::uintptr_t base;
    const char* region;
    if (a >= st && a + bytes <= st + STATIC_SMEM) {
        words = &b->shadow->static_words, base = st, region = "static";
    } else if (a >= dy && a + bytes <= dy + b->dynamic_bytes) {
        words = &b->shadow->dynamic_words, base = dy, region = "dynamic";
    } else {
        fail("an access through a shared-memory pointer outside the block's shared memory");
        return false;
    }
    const unsigned tid = threadIdx.x, warp = tid / 32;
    const uint32_t epoch = b->phases->completed.load(std::memory_order_relaxed);
    const uint32_t warp_epoch = b->warp_phases[warp].completed.load(std::memory_order_relaxed);
    // Ordered: another barrier phase, or the same warp after its own barrier (__syncwarp, a shuffle).
    auto unordered = [&](int32_t other, uint32_t e, uint32_t we) {
        return other >= 0 && unsigned(other) != tid && e == epoch && !(unsigned(other) / 32 == warp && we != warp_epoch);
    };
    std::lock_guard<std::mutex> lock(b->shadow->m);
    for (std::size_t i = (a - base) / 4; i <= (a - base + bytes - 1) / 4; ++i) {
        Word& w = (*words)[i];
        if (write) {
            if (unordered(w.writer, w.w_epoch, w.w_warp_epoch))
                race(region, i * 4, w.writer, "wrote", tid, "writes");
            else if (w.reader >= 0 && w.r_epoch == epoch &&
                     (w.readers_in_warps || (w.many_readers && unsigned(w.reader) / 32 != warp) ||
                      (w.many_readers && w.r_warp_epoch == warp_epoch) ||
                      unordered(w.reader, w.r_epoch, w.r_warp_epoch)))
                race(region, i * 4, w.reader, "read", tid, "writes");
            w.writer = int32_t(tid), w.w_epoch = epoch, w.w_warp_epoch = warp_epoch;
            w.reader = -1, w.many_readers = false, w.readers_in_warps = false;
        } else {
            if (unordered(w.writer, w.w_epoch, w.w_warp_epoch)) race(region, i * 4, w.writer, "wrote", tid, "reads");
            if (w.reader < 0 || w.r_epoch != epoch) {
                w.reader = int32_t(tid), w.r_epoch = epoch, w.r_warp_epoch = warp_epoch;
                w.many_readers = false, w.readers_in_warps = false;
            } else if (unsigned(w.reader) != tid) {
                // Several readers: a later write of this phase is ordered only
                // after all of them in one warp and a `__syncwarp` of that warp.
                if (unsigned(w.reader) / 32 != warp) w.readers_in_warps = true;
                if (w.r_warp_epoch != warp_epoch) w.readers_in_warps = true;
                w.many_readers = true;
            }
        }
    }
    return true;
}
}  // namespace lflow_emu

#include "../adam.cu"
#include "../attention.cu"
#include "../batch.cu"
#include "../encoder.cu"
#include "../feed_forward.cu"
#include "../latent.cu"
#include "../layer_norm.cu"
#include "../loss.cu"
#include "faulty.cu"

namespace {
template <typename... A, std::size_t... I>
void call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <typename... A>
void call(void (*kernel)(A...), void** args) {
    call(kernel, args, std::index_sequence_for<A...>{});
}

using Launcher = void (*)(void**);
struct Entry {
    const char* name;
    Launcher launch;
};

#define LFLOW_KERNEL(k) Entry{#k, [](void** a) { call(k, a); }}
const Entry KERNELS[] = {
    LFLOW_KERNEL(adam_step),          LFLOW_KERNEL(attention_forward),   LFLOW_KERNEL(attention_backward),
    LFLOW_KERNEL(gather_input),       LFLOW_KERNEL(dropout_masks),       LFLOW_KERNEL(gru_forward),
    LFLOW_KERNEL(gru_backward), LFLOW_KERNEL(add_bias),            LFLOW_KERNEL(column_sums),
    LFLOW_KERNEL(residual_dropout),   LFLOW_KERNEL(relu_dropout),        LFLOW_KERNEL(mul_mask),
    LFLOW_KERNEL(split_latent_grads), LFLOW_KERNEL(potential_taps),      LFLOW_KERNEL(posterior_sample),
    LFLOW_KERNEL(langevin_forward),   LFLOW_KERNEL(assemble_latents),    LFLOW_KERNEL(langevin_backward),
    LFLOW_KERNEL(potential_kernel_grad), LFLOW_KERNEL(posterior_backward), LFLOW_KERNEL(layer_norm_forward),
    LFLOW_KERNEL(layer_norm_backward), LFLOW_KERNEL(layer_norm_param_grads), LFLOW_KERNEL(poisson_kl_loss), LFLOW_KERNEL(assemble_batch),
    // Deliberately broken kernels (faulty.cu): the emulator's tests.
    LFLOW_KERNEL(faulty_block_chain), LFLOW_KERNEL(faulty_block_broadcast), LFLOW_KERNEL(faulty_out_of_bounds),
    LFLOW_KERNEL(faulty_missing_sync), LFLOW_KERNEL(faulty_shuffle_as_barrier), LFLOW_KERNEL(faulty_divergent_barrier),
};

// OS threads kept across launches: a launch of N threads wakes the first N
// workers of the pool (spawning more when needed) and waits until all finish.
class Pool {
  public:
    void run(unsigned n, const std::function<void(unsigned)>& f) {
        std::unique_lock<std::mutex> lock(m_);
        while (workers_.size() < n) {
            const unsigned id = workers_.size();
            workers_.emplace_back([this, id] { loop(id); });
            workers_.back().detach();
        }
        job_ = &f;
        active_ = n;
        remaining_ = n;
        ++generation_;
        start_.notify_all();
        done_.wait(lock, [this] { return remaining_ == 0; });
        job_ = nullptr;
    }

  private:
    void loop(unsigned id) {
        uint64_t seen = 0;
        for (;;) {
            const std::function<void(unsigned)>* job = nullptr;
            {
                std::unique_lock<std::mutex> lock(m_);
                start_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                if (id >= active_) continue;
                job = job_;
            }
            (*job)(id);
            std::lock_guard<std::mutex> lock(m_);
            if (--remaining_ == 0) done_.notify_all();
        }
    }

    std::mutex m_;
    std::condition_variable start_, done_;
    std::vector<std::thread> workers_;
    const std::function<void(unsigned)>* job_ = nullptr;
    unsigned active_ = 0, remaining_ = 0;
    uint64_t generation_ = 0;
};

// Never destroyed: its detached workers wait for work until the process ends.
Pool& pool() {
    static Pool* p = new Pool;
    return *p;
}
}  // namespace

// Blocks of one launch running at once (each with all its threads).
constexpr unsigned CONCURRENT_BLOCKS = 3;

// The shared state of one block slot: a block runs on it, then the next.
struct Slot {
    explicit Slot(unsigned threads, unsigned long smem)
        : threads(threads),
          warps((threads + 31) / 32),
          boundary(threads),
          warp_phases(new lflow_emu::Phases[(threads + 31) / 32]),
          shuffle_phases(new lflow_emu::Phases[(threads + 31) / 32]),
          warp_barriers(warps),
          shuffle_barriers(warps),
          exchange(threads),
          dynamic(smem + 16),
          static_smem(lflow_emu::STATIC_SMEM) {
        phases.divergent = "__syncthreads reached by threads of a block whose other threads had returned";
        for (unsigned w = 0; w < warps; ++w) {
            warp_phases[w].divergent = "__syncwarp reached by lanes of a warp whose other lanes had returned";
            shuffle_phases[w].divergent = "a shuffle reached by lanes of a warp whose other lanes had returned";
        }
        rebuild();
        for (unsigned w = 0; w < warps; ++w) {
            warp_ptrs.push_back(&*warp_barriers[w]);
            shuffle_ptrs.push_back(&*shuffle_barriers[w]);
        }
        shadow.static_words.resize(lflow_emu::STATIC_SMEM / 4);
        shadow.dynamic_words.resize((smem + 3) / 4 + 1);
        block = lflow_emu::Block{&*barrier,          warp_ptrs.data(),      shuffle_ptrs.data(),
                                 &phases,            warp_phases.get(),     shuffle_phases.get(),
                                 exchange.data(),    dynamic.data(),        smem,
                                 static_smem.data(), &shadow};
    }

    // Fresh barriers for the next block (those of the last lost the threads
    // that returned); the phase counts go on, so the race check's epochs too.
    void rebuild() {
        barrier.emplace(threads, lflow_emu::Tick{&phases});
        phases.waiting = 0, phases.exited = 0;
        for (unsigned w = 0; w < warps; ++w) {
            const unsigned lanes = std::min(32u, threads - 32 * w);
            warp_barriers[w].emplace(lanes, lflow_emu::Tick{&warp_phases[w]});
            shuffle_barriers[w].emplace(lanes, lflow_emu::Tick{&shuffle_phases[w]});
            warp_phases[w].waiting = 0, warp_phases[w].exited = 0;
            shuffle_phases[w].waiting = 0, shuffle_phases[w].exited = 0;
        }
    }

    // Thread `t` has returned from the kernel: it leaves its block's barriers.
    void leave(unsigned t) {
        const unsigned w = t / 32;
        phases.exited.fetch_add(1);
        barrier->arrive_and_drop();
        warp_phases[w].exited.fetch_add(1);
        warp_barriers[w]->arrive_and_drop();
        shuffle_phases[w].exited.fetch_add(1);
        shuffle_barriers[w]->arrive_and_drop();
    }

    const unsigned threads, warps;
    std::barrier<> boundary;  // between blocks, apart from the kernel's own barriers
    lflow_emu::Phases phases;
    std::unique_ptr<lflow_emu::Phases[]> warp_phases, shuffle_phases;
    std::optional<lflow_emu::Barrier> barrier;
    std::vector<std::optional<lflow_emu::Barrier>> warp_barriers, shuffle_barriers;
    std::vector<lflow_emu::Barrier*> warp_ptrs, shuffle_ptrs;
    std::vector<uint64_t> exchange;
    std::vector<unsigned char> dynamic, static_smem;
    lflow_emu::Shadow shadow;
    lflow_emu::Block block{};
    unsigned current = 0;
    std::size_t static_used = lflow_emu::STATIC_SMEM;  // bytes of static shared memory the last block declared
};

// The order blocks are taken in: a permutation seeded by the kernel's name,
// the grid and $LFLOW_EMU_SEED, the same for every run of a launch.
std::vector<unsigned> block_order(const char* name, unsigned blocks, unsigned bx) {
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ blocks ^ (uint64_t(bx) << 32);
    for (const char* c = name; *c; ++c) seed = (seed ^ (unsigned char)*c) * 0x100000001B3ull;
    if (const char* env = std::getenv("LFLOW_EMU_SEED")) seed ^= std::strtoull(env, nullptr, 10);
    std::vector<unsigned> order(blocks);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    return order;
}

extern "C" {
// Launch `name` over grid x block with `smem` bytes of dynamic shared memory.
// Returns 0, or -1 for an unknown kernel, -2 for a block of 0 or > 1024
// threads, -3 when the kernel broke a rule (written into `broke`).
int lflow_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     unsigned long smem, void** args, char* broke, unsigned long broke_len) {
    Launcher launch = nullptr;
    for (const Entry& e : KERNELS)
        if (std::string(e.name) == name) launch = e.launch;
    if (!launch) return -1;
    // One launch at a time: `__shared__` statics and the launch shape are process-wide.
    static std::mutex one_at_a_time;
    std::lock_guard<std::mutex> guard(one_at_a_time);
    const unsigned threads = bx * by * bz;
    if (threads == 0 || threads > 1024 || by != 1 || bz != 1) return -2;
    lflow_emu::grid_dim = dim3{gx, gy, gz};
    lflow_emu::block_dim = dim3{bx, by, bz};
    lflow_emu::failure = nullptr;
    lflow_emu::failure_taken = false;
    lflow_emu::running_kernel = name;
    const unsigned blocks = gx * gy * gz;
    if (blocks == 0) return 0;
    const std::vector<unsigned> order = block_order(name, blocks, bx);
    const unsigned slots = std::min(blocks, CONCURRENT_BLOCKS);
    std::vector<std::unique_ptr<Slot>> slot(slots);
    for (auto& s : slot) s = std::make_unique<Slot>(threads, smem);
    std::atomic<unsigned> next{0};
    pool().run(threads * slots, [&](unsigned w) {
        Slot& s = *slot[w / threads];
        const unsigned t = w % threads;
        lflow_emu::block = &s.block;
        lflow_emu::thread_idx = dim3{t, 0, 0};
        for (;;) {
            if (t == 0) {
                s.rebuild();
                s.current = next.fetch_add(1);
                // Shared memory holds garbage on a GPU: NaN bytes here.
                std::fill(s.dynamic.begin(), s.dynamic.end(), 0xFF);
                std::fill(s.static_smem.begin(), s.static_smem.begin() + s.static_used, 0xFF);
            }
            s.boundary.arrive_and_wait();
            const unsigned i = s.current;
            if (i >= blocks) break;
            const unsigned b = order[i];
            lflow_emu::block_idx = dim3{b % gx, (b / gx) % gy, b / (gx * gy)};
            lflow_emu::static_cursor = 0;
            launch(args);
            if (t == 0) s.static_used = lflow_emu::static_cursor;
            s.leave(t);
            // Block boundary: every thread leaves the block before the next starts on this slot.
            s.boundary.arrive_and_wait();
        }
    });
    if (const char* f = lflow_emu::failure.load()) {
        std::snprintf(broke, broke_len, "%s", f);
        return -3;
    }
    return 0;
}

}  // extern "C"
