// Runs the kernels of host/cuda/ on the CPU (see shim.h): one C entry point
// that launches a kernel by name with cuLaunchKernel's argument convention
// (an array of pointers to the arguments).
#include "shim.h"

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace lflow_emu {
thread_local dim3 thread_idx, block_idx;
thread_local Block* block = nullptr;
dim3 block_dim, grid_dim;
}  // namespace lflow_emu

#include "../adam.cu"
#include "../attention.cu"
#include "../batch.cu"
#include "../encoder.cu"
#include "../feed_forward.cu"
#include "../latent.cu"
#include "../layer_norm.cu"
#include "../loss.cu"

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
    LFLOW_KERNEL(gather_input),       LFLOW_KERNEL(dropout_masks),       LFLOW_KERNEL(gru_gates_forward),
    LFLOW_KERNEL(gru_gates_backward), LFLOW_KERNEL(add_bias),            LFLOW_KERNEL(column_sums),
    LFLOW_KERNEL(residual_dropout),   LFLOW_KERNEL(relu_dropout),        LFLOW_KERNEL(mul_mask),
    LFLOW_KERNEL(split_latent_grads), LFLOW_KERNEL(potential_taps),      LFLOW_KERNEL(posterior_sample),
    LFLOW_KERNEL(langevin_forward),   LFLOW_KERNEL(assemble_latents),    LFLOW_KERNEL(langevin_backward),
    LFLOW_KERNEL(potential_kernel_grad), LFLOW_KERNEL(posterior_backward), LFLOW_KERNEL(layer_norm_forward),
    LFLOW_KERNEL(layer_norm_backward), LFLOW_KERNEL(layer_norm_param_grads), LFLOW_KERNEL(poisson_kl_loss), LFLOW_KERNEL(assemble_batch),
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

extern "C" {
// Launch `name` over grid x block with `smem` bytes of dynamic shared memory.
// Returns 0, or -1 for an unknown kernel, -2 for a block of 0 or > 1024 threads.
int lflow_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     unsigned long smem, void** args) {
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
    std::barrier<> barrier(threads);
    std::vector<uint64_t> exchange(threads);
    std::vector<unsigned char> dynamic(smem + 16);
    lflow_emu::Block shared{&barrier, exchange.data(), dynamic.data()};
    pool().run(threads, [&](unsigned t) {
        lflow_emu::block = &shared;
        lflow_emu::thread_idx = dim3{t, 0, 0};
        for (unsigned z = 0; z < gz; ++z)
            for (unsigned y = 0; y < gy; ++y)
                for (unsigned x = 0; x < gx; ++x) {
                    lflow_emu::block_idx = dim3{x, y, z};
                    launch(args);
                    // Block boundary: every thread leaves the block before the next starts.
                    barrier.arrive_and_wait();
                }
    });
    return 0;
}
}
