// Monte Carlo throughput: GBM Asian paths (1e6 x 252, antithetic + control variate) on 1 and 2
// threads, European one-step (1e6 antithetic paths) on 1 and 2 threads, the raw normal generator,
// and the Asian kernel of each instruction-set build (AVX-512, AVX2 + FMA, baseline).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "v28/mc.hpp"
#include "v28/mc_kernels.hpp"
#include "v28/rng.hpp"

namespace {

const v28::mc::Gbm gbm{100.0, 100.0, 1.0, 0.05, 0.02, 0.2, true};

void BM_GbmAsianPaths(benchmark::State& state) {
    const auto threads = static_cast<unsigned>(state.range(0));
    const v28::mc::Options o{1000000, 42, true, true, threads};
    for (auto _ : state) benchmark::DoNotOptimize(v28::mc::asian(gbm, 252, o));
    state.SetItemsProcessed(state.iterations() * 1000000LL * 252);  // path-steps
}
// Thread scaling: CPU is the whole process's CPU time, so CPU(1) / (CPU(2) / 2) is the speed-up
// two free cores give (wall time on a shared machine only shows how busy it is).
BENCHMARK(BM_GbmAsianPaths)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_EuropeanOneStep(benchmark::State& state) {
    const v28::mc::Options o{1000000, 42, true, false, static_cast<unsigned>(state.range(0))};
    for (auto _ : state) benchmark::DoNotOptimize(v28::mc::european(gbm, o));
    state.SetItemsProcessed(state.iterations() * 1000000LL);  // paths
}
BENCHMARK(BM_EuropeanOneStep)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_Normals(benchmark::State& state) {
    std::vector<double> z(1 << 20);
    for (auto _ : state) {
        v28::rng::normals(7, 0, 0, 0, z);
        benchmark::DoNotOptimize(z.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<long long>(z.size()));
}
BENCHMARK(BM_Normals)->Unit(benchmark::kMillisecond);

// The Asian kernel of each instruction-set build on one thread (the dispatcher picks the widest).
bool cpu_has(const std::string& isa) {
    __builtin_cpu_init();
    if (isa == "avx512") {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    }
    if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return true;
}

void BM_GbmAsianKernel(benchmark::State& state, const v28::mc::kernels::Table& table) {
    if (!cpu_has(table.name)) {
        state.SkipWithError("CPU lacks this instruction set");
        return;
    }
    const int steps = 252;
    const double dt = gbm.t / steps, mu = (gbm.rate - gbm.div - 0.5 * gbm.vol * gbm.vol) * dt;
    const v28::mc::kernels::AsParams p{gbm.spot, gbm.strike, std::exp(mu),
                                       gbm.spot * std::exp(0.5 * mu * (steps + 1)),
                                       gbm.vol * std::sqrt(dt), std::exp(-gbm.rate * gbm.t), 1.0,
                                       steps, true};
    const std::uint64_t units = 100000;  // antithetic pairs: 2e5 paths
    for (auto _ : state) benchmark::DoNotOptimize(table.asian(p, 42, 0, units));
    state.SetItemsProcessed(state.iterations() * static_cast<long long>(2 * units * steps));
}
BENCHMARK_CAPTURE(BM_GbmAsianKernel, avx512, v28::mc::kernels::avx512_table)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_GbmAsianKernel, avx2, v28::mc::kernels::avx2_table)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_GbmAsianKernel, base, v28::mc::kernels::base_table)
    ->Unit(benchmark::kMillisecond);

}  // namespace
