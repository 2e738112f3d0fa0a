// The AVX2 + FMA level (x86-64-v3 vector features): include LAST among a kernel unit's headers,
// just before its .ipp body. Standard and intrinsic headers must come first so that their inline
// functions keep the default target; from here on the unit is compiled for this level, and
// vmath.hpp names its namespace `avx2`. Chosen at run time by v28::simd::level()
// (simd_dispatch.cpp checks the same features).
#pragma once

#include <cstddef>
#include <cstdint>
#include <immintrin.h>

#define V28_SIMD_TARGET_AVX2  // GCC does not set the ISA macros after the pragma
#pragma GCC target("avx2,fma")
