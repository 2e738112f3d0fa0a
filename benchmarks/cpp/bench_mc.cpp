// Monte Carlo throughput: GBM Asian paths (1e6 x 252, antithetic + control variate) on 1 and 2
// threads, European one-step (1e6 antithetic paths), and the raw normal generator.
#include <benchmark/benchmark.h>

#include <vector>

#include "v28/mc.hpp"
#include "v28/rng.hpp"

namespace {

const v28::mc::Gbm gbm{100.0, 100.0, 1.0, 0.05, 0.02, 0.2, true};

void BM_GbmAsianPaths(benchmark::State& state) {
    const auto threads = static_cast<unsigned>(state.range(0));
    const v28::mc::Options o{1000000, 42, true, true, threads};
    for (auto _ : state) benchmark::DoNotOptimize(v28::mc::asian(gbm, 252, o));
    state.SetItemsProcessed(state.iterations() * 1000000LL * 252);  // path-steps
}
BENCHMARK(BM_GbmAsianPaths)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EuropeanOneStep(benchmark::State& state) {
    const v28::mc::Options o{1000000, 42, true, false, static_cast<unsigned>(state.range(0))};
    for (auto _ : state) benchmark::DoNotOptimize(v28::mc::european(gbm, o));
    state.SetItemsProcessed(state.iterations() * 1000000LL);  // paths
}
BENCHMARK(BM_EuropeanOneStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Normals(benchmark::State& state) {
    std::vector<double> z(1 << 20);
    for (auto _ : state) {
        v28::rng::normals(7, 0, 0, 0, z);
        benchmark::DoNotOptimize(z.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<long long>(z.size()));
}
BENCHMARK(BM_Normals)->Unit(benchmark::kMillisecond);

}  // namespace
