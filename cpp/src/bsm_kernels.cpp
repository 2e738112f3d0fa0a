// Run-time choice of the BSM loop build (see bsm_kernels.hpp).
#include "bsm_kernels.hpp"

namespace v28::bsm::detail {

bool run_at(simd::Level level, const Inputs& in, const Outputs& out) {
    level = level < simd::cpu_level() ? level : simd::cpu_level();
    switch (level) {
#if V28_SIMD_X86
        case simd::Level::avx512:
            return run_avx512(in, out);
        case simd::Level::avx2:
            return run_avx2(in, out);
#endif
        default:
            return run_base(in, out);
    }
}

bool run(const Inputs& in, const Outputs& out) { return run_at(simd::level(), in, out); }

}  // namespace v28::bsm::detail
