#include "v28/parallel.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace v28::parallel {

namespace {

// Cap on pool size: more threads than this are never useful for these loops.
constexpr unsigned max_threads = 256;

class Pool {
public:
    ~Pool() {
        if (getpid() != owner_pid_) {
            // A forked child's copy: its threads do not exist here; neither join nor destroy.
            new std::vector<std::thread>(std::move(workers_));
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
    }

    // False when another loop holds the pool (the caller then runs its tasks alone).
    bool run(std::size_t n_tasks, unsigned threads, const std::function<void(std::size_t)>& task) {
        std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        const unsigned helpers = std::min<unsigned>(
            threads - 1, static_cast<unsigned>(std::min<std::size_t>(n_tasks - 1, max_threads)));
        {
            std::lock_guard<std::mutex> lock(mutex_);
            while (workers_.size() < helpers) {
                const auto index = static_cast<unsigned>(workers_.size());
                workers_.emplace_back([this, index] { work(index); });
            }
            task_ = &task;
            n_tasks_ = n_tasks;
            next_.store(0, std::memory_order_relaxed);
            helpers_ = helpers;
            pending_ = helpers;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();
        claim();
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        task_ = nullptr;
        if (error_) std::rethrow_exception(error_);
        return true;
    }

private:
    // Claims task indices until none are left; records the first exception.
    void claim() {
        for (std::size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_tasks_;) {
            try {
                (*task_)(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!error_) error_ = std::current_exception();
                next_.store(n_tasks_, std::memory_order_relaxed);  // stop handing out tasks
            }
        }
    }

    void work(unsigned index) {
        std::uint64_t seen = 0;
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (index >= helpers_) continue;  // not needed for this loop
            lock.unlock();
            claim();
            lock.lock();
            if (--pending_ == 0) done_.notify_one();
        }
    }

    std::mutex run_mutex_;  // one loop at a time
    std::mutex mutex_;      // guards everything below but next_
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    const std::function<void(std::size_t)>* task_ = nullptr;
    std::size_t n_tasks_ = 0;
    std::atomic<std::size_t> next_{0};
    unsigned helpers_ = 0, pending_ = 0;
    std::uint64_t generation_ = 0;
    std::exception_ptr error_;
    bool stop_ = false;
    const pid_t owner_pid_ = getpid();
};

// The process's pool, recreated in a forked child: the parent's worker threads do not exist
// there, and its mutexes may have been copied locked, so the old pool is abandoned untouched.
Pool& pool() {
    static std::mutex create;
    static Pool* current = nullptr;
    static pid_t owner = 0;
    std::lock_guard<std::mutex> lock(create);
    const pid_t pid = getpid();
    if (current == nullptr || owner != pid) {
        if (current == nullptr) {
            static std::unique_ptr<Pool> keeper;  // joins the workers at exit
            keeper = std::make_unique<Pool>();
            current = keeper.get();
        } else {
            current = new Pool();  // after fork: the parent's pool is leaked on purpose
        }
        owner = pid;
    }
    return *current;
}

}  // namespace

unsigned default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

void parallel_for(std::size_t n_tasks, unsigned threads,
                  const std::function<void(std::size_t)>& task) {
    if (n_tasks == 0) return;
    const unsigned t = threads == 0 ? default_threads() : threads;
    if (t > 1 && n_tasks > 1 && pool().run(n_tasks, t, task)) return;
    for (std::size_t i = 0; i < n_tasks; ++i) task(i);
}

}  // namespace v28::parallel
