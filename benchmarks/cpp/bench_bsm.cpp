// Black-Scholes-Merton price + 5 Greeks over 1e6 options, per SIMD level (0 = baseline,
// 3 = AVX2+FMA, 4 = AVX-512; v28::simd::Level), and the accuracy of the vectorisable math.
// Inputs drawn once, outside the timed loop.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../../cpp/src/bsm_kernels.hpp"
#include "v28/bsm.hpp"
#include "v28/simd_dispatch.hpp"
#include "v28/vmath.hpp"  // the scalar forms, for the accuracy check

namespace {

struct Book {
    std::vector<double> spot, strike, t, rate, div, vol;
    std::vector<std::uint8_t> call;
    std::vector<double> price, delta, gamma, vega, theta, rho;
    explicit Book(std::size_t n) {
        std::mt19937_64 g(42);
        auto u = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(g); };
        for (std::size_t i = 0; i < n; ++i) {
            spot.push_back(u(50, 150));
            strike.push_back(u(50, 150));
            t.push_back(u(1.0 / 365, 5.0));
            rate.push_back(u(-0.01, 0.08));
            div.push_back(u(0.0, 0.05));
            vol.push_back(u(0.01, 3.0));
            call.push_back(static_cast<std::uint8_t>(g() & 1));
        }
        for (auto* v : {&price, &delta, &gamma, &vega, &theta, &rho}) v->assign(n, 0.0);
    }
};

constexpr std::size_t kN = 1'000'000;

void BM_bsm_greeks_level(benchmark::State& state) {
    static Book b(kN);
    const auto level = static_cast<v28::simd::Level>(state.range(0));
    if (level > v28::simd::cpu_level()) {
        state.SkipWithError("CPU lacks this SIMD level");
        return;
    }
    state.SetLabel(v28::simd::level_name(level));  // the build that runs
    const v28::bsm::detail::Inputs in{b.spot.data(), b.strike.data(), b.t.data(), b.rate.data(),
                                      b.div.data(),  b.vol.data(),    b.call.data(), kN};
    const v28::bsm::detail::Outputs out{b.price.data(), b.delta.data(), b.gamma.data(),
                                        b.vega.data(),  b.theta.data(), b.rho.data()};
    for (auto _ : state) {
        benchmark::DoNotOptimize(v28::bsm::detail::run_at(level, in, out));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kN));
}
BENCHMARK(BM_bsm_greeks_level)->Arg(0)->Arg(3)->Arg(4)->Unit(benchmark::kMillisecond);

// The same loop on 4096 options that stay in L1/L2: the arithmetic alone, without the memory
// traffic of the 1e6-option book.
void BM_bsm_greeks_level_in_cache(benchmark::State& state) {
    constexpr std::size_t n = 4096;
    static Book b(n);
    const auto level = static_cast<v28::simd::Level>(state.range(0));
    if (level > v28::simd::cpu_level()) {
        state.SkipWithError("CPU lacks this SIMD level");
        return;
    }
    state.SetLabel(v28::simd::level_name(level));
    const v28::bsm::detail::Inputs in{b.spot.data(), b.strike.data(), b.t.data(), b.rate.data(),
                                      b.div.data(),  b.vol.data(),    b.call.data(), n};
    const v28::bsm::detail::Outputs out{b.price.data(), b.delta.data(), b.gamma.data(),
                                        b.vega.data(),  b.theta.data(), b.rho.data()};
    for (auto _ : state) {
        benchmark::DoNotOptimize(v28::bsm::detail::run_at(level, in, out));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_bsm_greeks_level_in_cache)->Arg(3)->Arg(4);

void BM_bsm_price_level(benchmark::State& state) {
    static Book b(kN);
    const auto level = static_cast<v28::simd::Level>(state.range(0));
    if (level > v28::simd::cpu_level()) {
        state.SkipWithError("CPU lacks this SIMD level");
        return;
    }
    state.SetLabel(v28::simd::level_name(level));  // the build that runs
    const v28::bsm::detail::Inputs in{b.spot.data(), b.strike.data(), b.t.data(), b.rate.data(),
                                      b.div.data(),  b.vol.data(),    b.call.data(), kN};
    const v28::bsm::detail::Outputs out{b.price.data()};
    for (auto _ : state) {
        benchmark::DoNotOptimize(v28::bsm::detail::run_at(level, in, out));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kN));
}
BENCHMARK(BM_bsm_price_level)->Arg(0)->Arg(3)->Arg(4)->Unit(benchmark::kMillisecond);

// The public vectorised API (validation + dispatch) on the same book.
void BM_bsm_greeks_api(benchmark::State& state) {
    static Book b(kN);
    state.SetLabel(v28::simd::level_name(v28::simd::level()));
    for (auto _ : state) {
        v28::bsm::greeks(b.spot, b.strike, b.t, b.rate, b.div, b.vol, b.call, b.price, b.delta,
                         b.gamma, b.vega, b.theta, b.rho);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kN));
}
BENCHMARK(BM_bsm_greeks_api)->Unit(benchmark::kMillisecond);

}  // namespace

// Accuracy of the vectorisable math against long-double libm (1e6 points each), reported as
// counters: max error in units in the last place of the double result.
namespace {

double ulp_error(double got, long double want) {
    const double w = static_cast<double>(want);
    const double ulp = std::nextafter(std::fabs(w), HUGE_VAL) - std::fabs(w);
    return static_cast<double>(std::fabs(static_cast<long double>(got) - want)) / ulp;
}

void BM_simd_accuracy(benchmark::State& state) {
    double e_exp = 0.0, e_log = 0.0, e_cdf = 0.0;
    for (auto _ : state) {
        std::mt19937_64 g(5);
        std::uniform_real_distribution<double> ux(-700.0, 700.0), ul(-1000.0, 1000.0),
            uc(-37.0, 8.0);
        for (int i = 0; i < 1'000'000; ++i) {
            const double x = ux(g);
            e_exp = std::fmax(e_exp, ulp_error(v28::simd::exp(x), std::exp(static_cast<long double>(x))));
            const double y = std::exp2(ul(g));
            e_log = std::fmax(e_log, ulp_error(v28::simd::log(y), std::log(static_cast<long double>(y))));
            const double z = uc(g);
            const long double cdf = 0.5L * std::erfc(-static_cast<long double>(z) / std::sqrt(2.0L));
            e_cdf = std::fmax(e_cdf, ulp_error(v28::simd::norm_cdf(z), cdf));
        }
    }
    state.counters["exp_max_ulp"] = e_exp;
    state.counters["log_max_ulp"] = e_log;
    state.counters["norm_cdf_max_ulp"] = e_cdf;
}
BENCHMARK(BM_simd_accuracy)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

namespace {

// The wide levels against the baseline build on one book that includes the t = 0 and vol = 0
// limits: max |diff| / (1 + |base|) over price and the five Greeks, per level.
void BM_levels_agree(benchmark::State& state) {
    const std::size_t n = 200'000;
    Book b(n);
    for (std::size_t i = 0; i < n; i += 100) b.t[i] = 0.0;
    for (std::size_t i = 0; i < n; i += 77) b.vol[i] = 0.0;
    const v28::bsm::detail::Inputs in{b.spot.data(), b.strike.data(), b.t.data(), b.rate.data(),
                                      b.div.data(),  b.vol.data(),    b.call.data(), n};
    auto run = [&](v28::simd::Level level) {
        std::vector<std::vector<double>> o(6, std::vector<double>(n));
        v28::bsm::detail::run_at(level, in,
                                 {o[0].data(), o[1].data(), o[2].data(), o[3].data(),
                                  o[4].data(), o[5].data()});
        return o;
    };
    const auto scalar = run(v28::simd::Level::base);
    for (auto _ : state) {
        for (const auto level : {v28::simd::Level::avx2, v28::simd::Level::avx512}) {
            if (level > v28::simd::cpu_level()) continue;
            const auto simd = run(level);
            double worst = 0.0;
            for (std::size_t k = 0; k < 6; ++k) {
                for (std::size_t i = 0; i < n; ++i) {
                    worst = std::fmax(worst, std::fabs(simd[k][i] - scalar[k][i]) /
                                                 (1.0 + std::fabs(scalar[k][i])));
                }
            }
            state.counters[std::string(v28::simd::level_name(level)) + "_max_rel_diff"] = worst;
        }
    }
}
BENCHMARK(BM_levels_agree)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
