// Merton series on a 300-option strip sharing expiry and parameters (per option).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "v28/merton.hpp"

namespace {

void BM_MertonStrip300(benchmark::State& state) {
    const std::size_t n = 300;
    std::vector<double> spot(n, 100.0), strike(n), t(n, 0.5), rate(n, 0.03), div(n, 0.01),
        vol(n, 0.2), lam(n, 1.0), mu(n, -0.1), delta(n, 0.15), out(n);
    std::vector<std::uint8_t> call(n);
    for (std::size_t i = 0; i < n; ++i) {
        strike[i] = 50.0 + 100.0 * static_cast<double>(i) / n;
        call[i] = strike[i] >= 100.0;
    }
    for (auto _ : state) {
        v28::merton::price(spot, strike, t, rate, div, vol, lam, mu, delta, call, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<long long>(n));
}
BENCHMARK(BM_MertonStrip300)->Unit(benchmark::kMicrosecond);

}  // namespace
