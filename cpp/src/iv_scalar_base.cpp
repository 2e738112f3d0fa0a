// The scalar implied-vol solver built for the baseline target; chosen at run time by iv.cpp
// when the CPU lacks AVX2 + FMA.
#include <cfloat>
#include <cmath>
#include <limits>

#include "iv_kernels.hpp"

#include "iv_scalar.ipp"

namespace v28::bsm::detail {
extern const IvScalar iv_scalar_base = base::iv_scalar_table;
}  // namespace v28::bsm::detail
