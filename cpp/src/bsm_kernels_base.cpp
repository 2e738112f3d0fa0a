// The BSM loop built for the baseline target (no pragma: SSE2 on x86-64, plain vector code
// elsewhere); chosen at run time by bsm_kernels.cpp when nothing wider is available.
#include "bsm_kernels.hpp"

#include "bsm_kernels.ipp"

namespace v28::bsm::detail {
bool run_base(const Inputs& in, const Outputs& out) { return base::run_simd(in, out); }
}  // namespace v28::bsm::detail
