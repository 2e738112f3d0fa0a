// A persistent pool of worker threads that run the tasks of one parallel loop, each thread
// claiming the next unclaimed task index (an atomic counter), so no thread holds tasks while
// another idles: a thread that starts late or is descheduled simply claims fewer.
//
// Callers that need results independent of the thread count write task i's result into slot i
// and reduce the slots in index order afterwards (mc.cpp, dupire.cpp do).
//
// The pool is process-wide and created on first use (threads are costly to start per call:
// about 20-50 us each, comparable to a 1e5-path Monte Carlo chunk). One loop runs at a time:
// a call made while another loop holds the pool (another Python thread, or a task that itself
// calls parallel_for) runs its tasks on the calling thread alone, which cannot deadlock. After
// fork() the child starts a fresh pool (the parent's threads do not exist there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace v28::parallel {

// Threads used when the caller asks for 0: std::thread::hardware_concurrency() (at least 1).
unsigned default_threads();

// Runs task(i) for every i in [0, n_tasks) on at most `threads` threads (the caller's included;
// 0 means default_threads()) and returns when all are done. The first exception thrown by a
// task is rethrown here after the loop has finished.
void parallel_for(std::size_t n_tasks, unsigned threads,
                  const std::function<void(std::size_t)>& task);

}  // namespace v28::parallel
