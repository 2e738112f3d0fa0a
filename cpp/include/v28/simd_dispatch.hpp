// Run-time choice of the instruction set, for every kernel family of the core (BSM, implied
// vol, Monte Carlo, CRR, the Heston transform). There is one mechanism: a family's hot loop is
// written once (a cpp/src/*.ipp body) and compiled in one translation unit per level, each
// opening with the level's target header (cpp/src/simd_target_avx512.hpp / _avx2.hpp: the one
// `#pragma GCC target` per level; the base unit has none), and the family's entry point switches
// on `level()`. No -march flags: a binary built anywhere runs on any x86-64 CPU.
//
// The environment variable V28_SIMD (avx512, avx2 or base; unset or empty: no cap) caps the
// level, to test the narrower builds on a wide machine. It is read here and nowhere else.
#pragma once

// The wide levels exist on x86-64 with GCC-compatible compilers; elsewhere only `base` is built
// (the wide units compile to nothing and the switches skip them).
#if defined(__x86_64__) && defined(__GNUC__)
#define V28_SIMD_X86 1
#else
#define V28_SIMD_X86 0
#endif

namespace v28::simd {

// The levels, named after the widest vector they use; the values are the x86-64 psABI micro-
// architecture levels whose vector features they need (v3: AVX2 + FMA; v4: AVX-512 F, DQ, VL,
// BW), so that `a < b` reads "narrower".
enum class Level : int { base = 0, avx2 = 3, avx512 = 4 };

// The widest level this CPU (and OS) supports, capped by V28_SIMD, fixed at the first call.
// Throws std::invalid_argument naming V28_SIMD when it holds anything else.
Level level();

// The widest level the CPU supports, ignoring V28_SIMD (for benchmarks that run every level).
Level cpu_level();

// "avx512", "avx2" or "base" (benchmark labels, error messages).
const char* level_name(Level l);

}  // namespace v28::simd
