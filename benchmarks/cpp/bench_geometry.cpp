// Geometry: half-plane (Fisher normal) geodesic with 1,000 dense-output points (goal <= 25 us
// at <= 1e-9 error), shooting distance, and height-field Christoffel symbols.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "v28/manifold.hpp"

namespace {

namespace mf = v28::manifold;

void BM_FisherGeodesic1000(benchmark::State& state) {
    const mf::FisherNormal m;
    const std::size_t n = 1000;
    std::vector<double> t(n), x(2 * n), v(2 * n);
    for (auto _ : state) {
        mf::geodesic(m, {0.0, 1.0}, {1.0, 0.5}, 3.0, n, 1e-10, 1e-10, t, x, v);
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FisherGeodesic1000)->Unit(benchmark::kMicrosecond);

void BM_FisherDistance(benchmark::State& state) {
    const mf::FisherNormal m;
    for (auto _ : state) {
        auto r = mf::geodesic_distance(m, {0.0, 1.0}, {3.0, 2.0}, 1e-11);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FisherDistance)->Unit(benchmark::kMicrosecond);

void BM_HeightFieldChristoffel(benchmark::State& state) {
    const int n = 81;
    std::vector<double> g(n), z(n * n);
    for (int i = 0; i < n; ++i) g[i] = -1.2 + 2.4 * i / (n - 1.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) z[i * n + j] = std::sqrt(4.0 - g[i] * g[i] - g[j] * g[j]);
    const mf::HeightField h(g, g, z);
    std::vector<double> pts, out(8 * 1000);
    for (int i = 0; i < 1000; ++i) {
        pts.push_back(-1.0 + 2.0 * std::fmod(0.618034 * i, 1.0));
        pts.push_back(-1.0 + 2.0 * std::fmod(0.754878 * i, 1.0));
    }
    for (auto _ : state) {
        mf::christoffel(h, pts, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_HeightFieldChristoffel)->Unit(benchmark::kMicrosecond);

}  // namespace
