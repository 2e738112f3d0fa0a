// Heston pricing of a 100-strike x 4-expiry strip (per option) and a 60-quote calibration.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "v28/heston.hpp"

namespace {

const v28::heston::Params truth{0.04, 1.5, 0.04, 0.5, -0.7};

void BM_HestonStrip(benchmark::State& state) {
    const double expiries[] = {0.25, 0.5, 1.0, 2.0};
    std::vector<double> strikes(100);
    std::vector<std::uint8_t> calls(100);
    for (int i = 0; i < 100; ++i) {
        strikes[i] = 60.0 + 0.8 * i;
        calls[i] = strikes[i] >= 100.0;
    }
    std::vector<double> out(100);
    for (auto _ : state) {
        for (double t : expiries) {
            v28::heston::price_expiry(100.0, t, 0.03, 0.01, truth, strikes, calls, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    state.SetItemsProcessed(state.iterations() * 400);  // options
}
BENCHMARK(BM_HestonStrip)->Unit(benchmark::kMicrosecond);

void BM_HestonCalibration60(benchmark::State& state) {
    std::vector<double> k, t, r, q, price;
    std::vector<std::uint8_t> call;
    for (double tt : {0.25, 0.5, 1.0, 2.0}) {
        std::vector<double> ks;
        std::vector<std::uint8_t> cs;
        for (int i = 0; i < 15; ++i) {
            ks.push_back(75.0 + 55.0 * i / 14.0);
            cs.push_back(ks.back() >= 100.0);
        }
        std::vector<double> ps(15);
        v28::heston::price_expiry(100.0, tt, 0.02, 0.01, {0.045, 1.8, 0.06, 0.55, -0.65}, ks, cs,
                                  ps);
        for (int i = 0; i < 15; ++i) {
            k.push_back(ks[i]);
            call.push_back(cs[i]);
            price.push_back(ps[i]);
            t.push_back(tt);
            r.push_back(0.02);
            q.push_back(0.01);
        }
    }
    const v28::heston::Params start{0.04, 2.0, 0.04, 0.5, -0.5};
    for (auto _ : state) {
        benchmark::DoNotOptimize(v28::heston::calibrate(100.0, k, t, r, q, call, price, {}, start));
    }
    state.SetItemsProcessed(state.iterations());  // calibrations
}
BENCHMARK(BM_HestonCalibration60)->Unit(benchmark::kMillisecond);

}  // namespace
