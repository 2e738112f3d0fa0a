// The Monte Carlo kernels built for the baseline target (no pragma: SSE2 on x86-64); chosen at run time by mc_kernels.cpp.
// Standard and intrinsic headers come before the target pragma so that their inline
// functions keep the default target (vmath.hpp explains the namespaces).
#include <cstddef>
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "v28/mc_kernels.hpp"

#include "mc_kernels.ipp"

namespace v28::mc::kernels {
extern const Table base_table{"base", &base::european, &base::asian, &base::normals};
}  // namespace v28::mc::kernels
