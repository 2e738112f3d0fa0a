// The AVX-512 level (x86-64-v4 vector features: F, DQ, VL, BW, with AVX2 + FMA): include LAST
// among a kernel unit's headers, just before its .ipp body. Standard and intrinsic headers must
// come first so that their inline functions keep the default target; from here on the unit is
// compiled for this level, and vmath.hpp names its namespace `avx512`. Chosen at run time by
// v28::simd::level() (simd_dispatch.cpp checks the same features).
#pragma once

#include <cstddef>
#include <cstdint>
#include <immintrin.h>

#define V28_SIMD_TARGET_AVX512  // GCC does not set the ISA macros after the pragma
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
