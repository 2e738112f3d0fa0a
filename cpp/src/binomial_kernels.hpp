// Internal: the CRR tree's per-option loop behind v28::binomial (binomial_kernels.ipp,
// compiled once per level by binomial_kernels_<level>.cpp); binomial.cpp validates and picks
// the level by v28::simd::level().
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "v28/binomial.hpp"

namespace v28::binomial::detail {

struct Tree {
    double dt, dx, p, disc;  // dx = vol sqrt(dt): log-spot step
};

// The step, its log-spot size, the up-probability and the one-step discount (binomial.cpp).
Tree make_tree(double t, double rate, double div, double vol, long long steps);

// A batch of options on one tree size.
struct Batch {
    const double *spot, *strike, *t, *rate, *div, *vol;
    const std::uint8_t *call, *american;
    std::size_t n;
    long long steps;
    double *price, *delta, *gamma, *theta;  // delta == nullptr: price only
};

// Prices (and Greeks) of a validated batch; call the wide ones only when the CPU supports them.
void run_batch_avx512(const Batch& b);
void run_batch_avx2(const Batch& b);
void run_batch_base(const Batch& b);

}  // namespace v28::binomial::detail
