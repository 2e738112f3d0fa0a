// The Monte Carlo hot loops (GBM European and Asian chunks, blocks of normals), compiled once per
// level (AVX-512, AVX2 + FMA, baseline) from cpp/src/mc_kernels.ipp and chosen at run time by
// v28::simd::level() (v28/simd_dispatch.hpp): no -march flags, a binary built here runs
// anywhere. mc.cpp and rng.cpp call them through `table()`. See mc.hpp for the method and
// rng.hpp / vmath.hpp for the draws.
//
// Every kernel sums a contiguous range of sample units in a fixed order, so a chunk's sums depend
// only on the chunk and the instruction set, never on the thread that ran it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace v28::mc::kernels {

// Sums over sample units (y: the estimator's sample, x: its control) and over single payoffs (f),
// the latter giving the variance plain Monte Carlo would have.
struct Sums {
    double n = 0, sy = 0, syy = 0, sx = 0, sxx = 0, sxy = 0;
    double nf = 0, sf = 0, sff = 0;
};

inline constexpr std::uint32_t tag_european = 1, tag_asian = 2;

// European: S_T = fwd_spot e^{sd Z} (fwd_spot = S e^{(r - q - vol^2/2) t}); payoff
// df max(w (S_T - K), 0), w = +1 call / -1 put. Unit i uses normal i of stream 0 under tag 1.
struct EuParams {
    double fwd_spot, strike, sd, df, w;
    bool anti;
};

// Asian: log step mu + sd Z (growth = e^mu), `steps` steps; arithmetic average payoff and the
// geometric average control G = geo_spot e^{(sum of the Brownian parts of the log steps to t_k)
// / steps}, geo_spot = S e^{mu (steps + 1) / 2}.
struct AsParams {
    double spot, strike, growth, geo_spot, sd, df, w;
    int steps;
    bool anti;
};

struct Table {
    const char* name;
    // Sample units [begin, end) of a European / Asian option.
    Sums (*european)(const EuParams& p, std::uint64_t seed, std::uint64_t begin, std::uint64_t end);
    Sums (*asian)(const AsParams& p, std::uint64_t seed, std::uint64_t begin, std::uint64_t end);
    // n normals of stream (seed, tag, stream) starting at normal 4 * first_block.
    void (*normals)(std::uint64_t seed, std::uint32_t tag, std::uint64_t stream,
                    std::uint64_t first_block, double* out, std::size_t n);
};

extern const Table avx512_table, avx2_table, base_table;

// The table of v28::simd::level() (the widest build the CPU supports, capped by V28_SIMD).
const Table& table();

}  // namespace v28::mc::kernels
