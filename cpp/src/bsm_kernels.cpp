// Run-time choice of the BSM loop build (see bsm_kernels.hpp); the scalar <cmath> formula for
// CPUs without AVX2 + FMA.
#include "bsm_kernels.hpp"

#include <cstdlib>
#include <cstring>

#include "v28/bsm.hpp"

namespace v28::bsm::detail {

namespace {

bool run_scalar(const Inputs& in, const Outputs& out) {
    for (std::size_t i = 0; i < in.n; ++i) {
        check_inputs(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i], in.vol[i], i);
    }
    for (std::size_t i = 0; i < in.n; ++i) {
        const bool c = in.call[i] != 0;
        if (out.delta == nullptr) {
            out.price[i] = price(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i],
                                 in.vol[i], c);
            continue;
        }
        Greeks g;
        out.price[i] = price_greeks(in.spot[i], in.strike[i], in.t[i], in.rate[i], in.div[i],
                                    in.vol[i], c, g);
        out.delta[i] = g.delta;
        out.gamma[i] = g.gamma;
        out.vega[i] = g.vega;
        out.theta[i] = g.theta;
        out.rho[i] = g.rho;
    }
    return true;
}

int detect() {
#if defined(__x86_64__) && defined(__GNUC__)
    const char* cap = std::getenv("V28_SIMD");
    const bool allow4 = cap == nullptr || *cap == '\0' || std::strcmp(cap, "avx512") == 0;
    const bool allow3 = allow4 || std::strcmp(cap, "avx2") == 0;
    __builtin_cpu_init();
    if (allow4 && __builtin_cpu_supports("x86-64-v4")) return 4;
    if (allow3 && __builtin_cpu_supports("x86-64-v3")) return 3;
#endif
    return 0;
}

}  // namespace

int cpu_level() {
    static const int level = detect();
    return level;
}

const char* level_name(int level) {
    return level >= 4 ? "avx512" : (level == 3 ? "avx2" : "scalar");
}

bool run_at(int level, const Inputs& in, const Outputs& out) {
#if defined(__x86_64__) && defined(__GNUC__)
    level = level < cpu_level() ? level : cpu_level();
    if (level == 4) return run_avx512(in, out);
    if (level == 3) return run_avx2(in, out);
#else
    (void)level;
#endif
    return run_scalar(in, out);
}

bool run(const Inputs& in, const Outputs& out) { return run_at(cpu_level(), in, out); }

}  // namespace v28::bsm::detail
