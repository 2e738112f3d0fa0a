// GARCH(1,1) maximum-likelihood fits on simulated daily returns (percent units), the issue's
// sizes n = 2,500 and 10,000; one likelihood pass for scale. Peer timings (arch) live in
// benchmarks/peers/garch.py.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "v28/garch.hpp"

namespace {

// r_t = mu + sqrt(h_t) z_t with h_t = omega + alpha e_{t-1}^2 + beta h_{t-1}; 500 burn-in draws.
std::vector<double> simulate(std::size_t n, bool student_t, unsigned seed) {
    const double mu = 0.05, omega = 0.02, alpha = 0.08, beta = 0.9, nu = 6.0;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    std::student_t_distribution<double> t(nu);
    const double t_scale = std::sqrt((nu - 2.0) / nu);
    std::vector<double> r(n);
    double h = omega / (1.0 - alpha - beta), e = 0.0;
    for (std::size_t i = 0; i < n + 500; ++i) {
        h = omega + alpha * e * e + beta * h;
        const double z = student_t ? t(rng) * t_scale : normal(rng);
        e = std::sqrt(h) * z;
        if (i >= 500) r[i - 500] = mu + e;
    }
    return r;
}

void BM_garch_fit_normal(benchmark::State& state) {
    const auto r = simulate(static_cast<std::size_t>(state.range(0)), false, 42);
    v28::garch::FitOptions opt;
    for (auto _ : state) {
        auto res = v28::garch::fit(r, opt);
        benchmark::DoNotOptimize(res);
    }
    state.SetItemsProcessed(state.iterations());  // items = fits
}

void BM_garch_fit_normal_arch_backcast(benchmark::State& state) {
    const auto r = simulate(static_cast<std::size_t>(state.range(0)), false, 42);
    v28::garch::FitOptions opt;
    opt.presample = v28::garch::Presample::ewma;
    for (auto _ : state) {
        auto res = v28::garch::fit(r, opt);
        benchmark::DoNotOptimize(res);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_garch_fit_student_t(benchmark::State& state) {
    const auto r = simulate(static_cast<std::size_t>(state.range(0)), true, 42);
    v28::garch::FitOptions opt;
    opt.dist = v28::garch::Dist::student_t;
    for (auto _ : state) {
        auto res = v28::garch::fit(r, opt);
        benchmark::DoNotOptimize(res);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_garch_loglik(benchmark::State& state) {
    const auto r = simulate(static_cast<std::size_t>(state.range(0)), false, 42);
    const v28::garch::Params p{0.05, 0.02, 0.08, 0.9, 0.0};
    for (auto _ : state) {
        double ll = v28::garch::loglik(r, p, v28::garch::Dist::normal,
                                       v28::garch::Presample::mean_square, 0.0);
        benchmark::DoNotOptimize(ll);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));  // items = observations
}

}  // namespace

BENCHMARK(BM_garch_fit_normal)->Arg(2500)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_garch_fit_normal_arch_backcast)->Arg(2500)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_garch_fit_student_t)->Arg(2500)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_garch_loglik)->Arg(2500)->Arg(10000)->Unit(benchmark::kMicrosecond);
