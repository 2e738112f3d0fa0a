// Internal: the vectorised BSM loops behind v28::bsm::price / greeks. The loop body is
// bsm_kernels.ipp, compiled once per level (bsm_kernels_avx512.cpp, bsm_kernels_avx2.cpp,
// bsm_kernels_base.cpp: one formulation, the same tolerances everywhere); bsm_kernels.cpp picks
// one by v28::simd::level().
#pragma once

#include <cstddef>
#include <cstdint>

#include "v28/normal.hpp"
#include "v28/simd_dispatch.hpp"

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

// `run` on a chosen level (capped at what the CPU supports), for benchmarks and accuracy checks.
bool run_at(simd::Level level, const Inputs& in, const Outputs& out);

// The per-level builds (call the wide ones only when the CPU supports them).
bool run_avx512(const Inputs& in, const Outputs& out);
bool run_avx2(const Inputs& in, const Outputs& out);
bool run_base(const Inputs& in, const Outputs& out);

}  // namespace v28::bsm::detail
