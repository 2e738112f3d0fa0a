// Internal: the Heston transform's inner sum (heston.cpp), compiled once per level from
// heston_kernels.ipp by heston_kernels_<level>.cpp and picked by v28::simd::level().
#pragma once

#include <cstddef>

namespace v28::heston::detail {

// sum_k re_k cos(u_k x) - im_k sin(u_k x) over k < n. The per-level builds (call the wide ones
// only when the CPU supports them).
double lewis_sum_avx512(const double* u, const double* re, const double* im, std::size_t n,
                        double x);
double lewis_sum_avx2(const double* u, const double* re, const double* im, std::size_t n,
                      double x);
double lewis_sum_base(const double* u, const double* re, const double* im, std::size_t n,
                      double x);

}  // namespace v28::heston::detail
