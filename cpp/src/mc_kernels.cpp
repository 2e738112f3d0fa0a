// Run-time choice of the Monte Carlo kernel build (see mc_kernels.hpp).
#include "v28/mc_kernels.hpp"

#include <cstdlib>
#include <cstring>

namespace v28::mc::kernels {

namespace {

const Table& pick() {
    const char* cap = std::getenv("V28_SIMD");
    const bool allow_avx512 = cap == nullptr || *cap == '\0' || std::strcmp(cap, "avx512") == 0;
    const bool allow_avx2 = allow_avx512 || std::strcmp(cap, "avx2") == 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (allow_avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")) {
        return avx512_table;
    }
    if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return avx2_table;
    }
#else
    (void)allow_avx2;
#endif
    return base_table;
}

}  // namespace

const Table& table() {
    static const Table& chosen = pick();
    return chosen;
}

}  // namespace v28::mc::kernels
