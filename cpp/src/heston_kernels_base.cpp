// The Heston transform's inner sum built for the baseline target; chosen at run time by
// heston.cpp when nothing wider is available.
#include "heston_kernels.hpp"

#include "heston_kernels.ipp"

namespace v28::heston::detail {
double lewis_sum_base(const double* u, const double* re, const double* im, std::size_t n,
                      double x) {
    return base::lewis_sum(u, re, im, n, x);
}
}  // namespace v28::heston::detail
