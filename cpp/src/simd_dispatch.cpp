#include "v28/simd_dispatch.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace v28::simd {

namespace {

// The features each level's target header enables (simd_target_*.hpp), checked one by one;
// libgcc's CPU model also checks that the OS saves the wide registers (XGETBV).
Level detect() {
#if V28_SIMD_X86
    __builtin_cpu_init();
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512bw");
    if (v4) return Level::avx512;
    if (v3) return Level::avx2;
#endif
    return Level::base;
}

Level capped() {
    const Level cpu = cpu_level();
    const char* env = std::getenv("V28_SIMD");
    const std::string_view cap = env == nullptr ? std::string_view{} : std::string_view{env};
    Level limit;
    if (cap.empty() || cap == "avx512") {
        limit = Level::avx512;
    } else if (cap == "avx2") {
        limit = Level::avx2;
    } else if (cap == "base") {
        limit = Level::base;
    } else {
        throw std::invalid_argument("V28_SIMD must be avx512, avx2, base or unset (got '" +
                                    std::string(cap) + "')");
    }
    return limit < cpu ? limit : cpu;
}

}  // namespace

Level cpu_level() {
    static const Level l = detect();
    return l;
}

Level level() {
    static const Level l = capped();
    return l;
}

const char* level_name(Level l) {
    switch (l) {
        case Level::avx512:
            return "avx512";
        case Level::avx2:
            return "avx2";
        case Level::base:
            break;
    }
    return "base";
}

}  // namespace v28::simd
