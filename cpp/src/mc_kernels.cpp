// Run-time choice of the Monte Carlo kernel build (see mc_kernels.hpp).
#include "v28/mc_kernels.hpp"

#include "v28/simd_dispatch.hpp"

namespace v28::mc::kernels {

const Table& table() {
    switch (simd::level()) {
#if V28_SIMD_X86
        case simd::Level::avx512:
            return avx512_table;
        case simd::Level::avx2:
            return avx2_table;
#endif
        default:
            return base_table;
    }
}

}  // namespace v28::mc::kernels
