// The CRR loop built for the baseline target; chosen at run time by binomial.cpp when nothing
// wider is available.
#include "binomial_kernels.hpp"

#include "binomial_kernels.ipp"

namespace v28::binomial::detail {
void run_batch_base(const Batch& b) { base::run_batch(b); }
}  // namespace v28::binomial::detail
