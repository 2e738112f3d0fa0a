// SVI surface and Dupire local vol: 100 x 100 (t, K) local-vol grid (goal <= 1 ms), one
// quasi-explicit slice fit, and a small local-vol Monte Carlo.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "v28/dupire.hpp"
#include "v28/surface.hpp"

namespace {

v28::surface::SviSurface make_surface() {
    const std::vector<double> t{0.1, 0.25, 0.5, 1.0, 2.0};
    std::vector<double> params, fwd;
    for (double ti : t) {
        // A typical equity skew growing with maturity.
        params.insert(params.end(), {0.02 * ti + 0.001, 0.08 + 0.02 * ti, -0.6, 0.02, 0.15 + 0.05 * ti});
        fwd.push_back(100.0 * std::exp(0.02 * ti));
    }
    return v28::surface::SviSurface(t, params, fwd, 100.0);
}

void BM_LocalVolGrid100x100(benchmark::State& state) {
    const auto s = make_surface();
    std::vector<double> t, k, out(10000);
    for (int i = 0; i < 100; ++i)
        for (int j = 0; j < 100; ++j) {
            t.push_back(0.05 + 1.95 * i / 99.0);
            k.push_back(60.0 + 80.0 * j / 99.0);
        }
    for (auto _ : state) {
        v28::dupire::local_vol(s, t, k, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_LocalVolGrid100x100)->Unit(benchmark::kMicrosecond);

void BM_SviFitSlice(benchmark::State& state) {
    const v28::surface::Svi p{0.01, 0.1, -0.5, 0.05, 0.2};
    std::vector<double> y, w;
    for (int i = 0; i < state.range(0); ++i) {
        y.push_back(-0.6 + 1.1 * i / (state.range(0) - 1.0));
        w.push_back(p.w(y.back()) * (1.0 + 1e-3 * std::sin(37.0 * i)));
    }
    for (auto _ : state) {
        auto fit = v28::surface::fit_slice(y, w, {});
        benchmark::DoNotOptimize(fit);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SviFitSlice)->Arg(50)->Arg(200)->Unit(benchmark::kMillisecond);

void BM_LocalVolMc(benchmark::State& state) {
    const auto s = make_surface();
    const std::vector<double> t{0.5, 1.0, 1.0}, k{100.0, 90.0, 110.0};
    const std::vector<std::uint8_t> call{1, 0, 1};
    std::vector<double> price(3), err(3);
    v28::dupire::McSettings cfg{static_cast<std::size_t>(state.range(0)), 100, 1, 1};
    for (auto _ : state) {
        v28::dupire::local_vol_mc(s, t, k, call, cfg, price, err);
        benchmark::DoNotOptimize(price.data());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0) * 100);  // path-steps
}
BENCHMARK(BM_LocalVolMc)->Arg(20000)->Unit(benchmark::kMillisecond);

}  // namespace
