// The Monte Carlo kernels built for the baseline target (no pragma: SSE2 on x86-64, plain
// vector code elsewhere); chosen at run time by mc_kernels.cpp when nothing wider is available.
#include "mc_kernels.ipp"

namespace v28::mc::kernels {
extern const Table base_table{"base", &base::european, &base::asian, &base::normals};
}  // namespace v28::mc::kernels
