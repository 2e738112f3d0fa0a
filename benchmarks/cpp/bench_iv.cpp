// Implied volatility ("Let's Be Rational") over 1e5 out-of-the-money options: moneyness
// K/F 0.5-2, T 1 day-5 years, vol 1 %-300 %. Prices are made outside the timed loop; the
// max |vol error| (where price / forward >= 1e-12) is reported as a counter.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "v28/bsm.hpp"
#include "v28/iv.hpp"

namespace {

struct Quotes {
    std::vector<double> price, forward, strike, t, discount, vol;
    std::vector<std::uint8_t> call;
    explicit Quotes(std::size_t n) {
        std::mt19937_64 g(7);
        auto logu = [&](double a, double b) {
            return std::exp(std::uniform_real_distribution<double>(std::log(a), std::log(b))(g));
        };
        for (std::size_t i = 0; i < n; ++i) {
            const double f = 100.0, k = f * logu(0.5, 2.0), t = logu(1.0 / 365, 5.0);
            const double v = logu(0.01, 3.0);
            const bool c = k >= f;
            forward.push_back(f);
            strike.push_back(k);
            this->t.push_back(t);
            vol.push_back(v);
            call.push_back(c ? 1 : 0);
            discount.push_back(1.0);
            price.push_back(v28::bsm::price(f, k, t, 0.0, 0.0, v, c));
        }
    }
};

void BM_black_implied_vol(benchmark::State& state) {
    const std::size_t n = 100'000;
    static Quotes q(n);
    std::vector<double> out(n);
    for (auto _ : state) {
        v28::bsm::black_implied_vol(q.price, q.forward, q.strike, q.t, q.call, q.discount, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    double max_err = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        if (q.price[i] / q.forward[i] >= 1e-12) max_err = std::fmax(max_err, std::fabs(out[i] - q.vol[i]));
    }
    state.counters["max_vol_err"] = max_err;
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_black_implied_vol)->Unit(benchmark::kMillisecond);

// The scalar entry other models call (validation per call, NaN outside the bounds).
void BM_bsm_implied_vol_scalar(benchmark::State& state) {
    static Quotes q(100'000);
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(v28::bsm::implied_vol(q.price[i], q.forward[i], q.strike[i],
                                                       q.t[i], 0.0, 0.0, q.call[i] != 0));
        i = (i + 1) % q.price.size();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_bsm_implied_vol_scalar);

}  // namespace
