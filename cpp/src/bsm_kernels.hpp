// Internal: the vectorised BSM loops behind v28::bsm::price / greeks. The loop body is
// bsm_kernels.ipp, compiled once per instruction set (bsm_kernels_avx512.cpp,
// bsm_kernels_avx2.cpp); bsm_kernels.cpp picks one at run time, or the scalar <cmath> formula.
#pragma once

#include <cstddef>
#include <cstdint>

namespace v28::bsm::detail {

struct Inputs {
    const double* spot;
    const double* strike;
    const double* t;
    const double* rate;
    const double* div;
    const double* vol;
    const std::uint8_t* call;
    std::size_t n;
};

// Null pointers for the Greeks ask for the price only.
struct Outputs {
    double* price;
    double* delta = nullptr;
    double* gamma = nullptr;
    double* vega = nullptr;
    double* theta = nullptr;
    double* rho = nullptr;
};

// Computes every element and returns false if any input is invalid (NaN, spot or strike <= 0,
// t or vol < 0, infinite values); the caller then reports the first bad one.
bool run(const Inputs& in, const Outputs& out);

// The CPU's level: 4 = x86-64-v4 (AVX-512), 3 = x86-64-v3 (AVX2+FMA), 0 = scalar <cmath>.
// The environment variable V28_SIMD=avx2 or V28_SIMD=base caps it, as for Monte Carlo.
int cpu_level();
// The name of a level's build ("avx512", "avx2", "scalar"), for benchmark labels.
const char* level_name(int level);
// `run` on a chosen level (capped at cpu_level()), for benchmarks and accuracy checks.
bool run_at(int level, const Inputs& in, const Outputs& out);

// The per-ISA builds (call only when cpu_level() allows).
bool run_avx512(const Inputs& in, const Outputs& out);
bool run_avx2(const Inputs& in, const Outputs& out);

}  // namespace v28::bsm::detail
