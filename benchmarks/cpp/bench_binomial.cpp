// CRR binomial tree, one option per call: American put at N = 1000 and 5000 (the goals are
// <= 0.3 ms and <= 8 ms), European put at N = 1000 for comparison.
#include <benchmark/benchmark.h>

#include "v28/binomial.hpp"

namespace {

void BM_crr_american_put(benchmark::State& state) {
    const auto steps = static_cast<long long>(state.range(0));
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            v28::binomial::crr_price(100.0, 100.0, 1.0, 0.05, 0.02, 0.25, false, true, steps));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_crr_american_put)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);

void BM_crr_european_put(benchmark::State& state) {
    const auto steps = static_cast<long long>(state.range(0));
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            v28::binomial::crr_price(100.0, 100.0, 1.0, 0.05, 0.02, 0.25, false, false, steps));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_crr_european_put)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_crr_american_greeks(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            v28::binomial::crr_greeks(100.0, 100.0, 1.0, 0.05, 0.02, 0.25, false, true, 1000));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_crr_american_greeks)->Unit(benchmark::kMillisecond);

}  // namespace
