// Body of the Monte Carlo kernels, included by mc_kernels_<isa>.cpp after that unit's target
// pragma; vmath.hpp then names the namespace after the target (avx512, avx2, base). The
// declarations and the meaning of the parameters are in mc_kernels.hpp.
#include "v28/mc_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::mc::kernels {
inline namespace V28_SIMD_ISA {

namespace {

using simd::lanes;
using simd::splat;
using simd::splat_u;
using simd::vd;
using simd::vu;

// Lane-wise sums, added lane by lane (a fixed order) at the end of a chunk.
struct LaneSums {
    vd sy{}, syy{}, sx{}, sxx{}, sxy{}, sf{}, sff{};
    V28_VINLINE void add(vd valid, vd y, vd x, vd f0, vd f1) {
        const vd vy = valid * y, vx = valid * x;
        sy += vy;
        syy += vy * y;
        sx += vx;
        sxx += vx * x;
        sxy += vx * y;
        sf += valid * (f0 + f1);
        sff += valid * (f0 * f0 + f1 * f1);
    }
    Sums total(double units, double payoffs_per_unit) const {
        Sums s;
        s.n = units;
        s.sy = simd::sum(sy);
        s.syy = simd::sum(syy);
        s.sx = simd::sum(sx);
        s.sxx = simd::sum(sxx);
        s.sxy = simd::sum(sxy);
        s.nf = units * payoffs_per_unit;
        s.sf = simd::sum(sf);
        s.sff = simd::sum(sff);
        return s;
    }
};

// 1 where index < end, else 0.
V28_VINLINE vd below(vu index, std::uint64_t end) {
    return simd::select(index < end, splat(1.0), vd{});
}

}  // namespace

// Unit i uses normal i of stream 0: word i % 4 of the Philox block i / 4, so one vector of
// consecutive blocks covers 4 * lanes units. An antithetic pair shares one e^{+-sd Z} evaluation.
Sums european(const EuParams& p, std::uint64_t seed, std::uint64_t begin, std::uint64_t end) {
    LaneSums acc;
    const vu lane = simd::iota();
    const vd sd = splat(p.sd), fwd = splat(p.fwd_spot), k = splat(p.strike);
    const vd df = splat(p.df), w = splat(p.w);
    for (std::uint64_t base = begin; base < end; base += 4 * lanes) {
        vd z[4];
        simd::normals4(base / 4 + lane, splat_u(tag_european), vu{}, vu{}, seed, z);
        for (int j = 0; j < 4; ++j) {
            const vd valid = below(base + 4 * lane + static_cast<std::uint64_t>(j), end);
            vd ep, em;
            simd::exp_pair(sd * z[j], ep, em);
            const vd sa = fwd * ep;
            const vd fa = df * simd::max0(w * (sa - k));
            if (p.anti) {
                const vd sb = fwd * em;
                const vd fb = df * simd::max0(w * (sb - k));
                acc.add(valid, 0.5 * (fa + fb), (0.5 * df) * (sa + sb), fa, fb);
            } else {
                acc.add(valid, fa, df * sa, fa, vd{});
            }
        }
    }
    return acc.total(static_cast<double>(end - begin), p.anti ? 2.0 : 1.0);
}

// Unit i (a path or an antithetic pair) draws the normals of steps 4 g .. 4 g + 3 from the Philox
// block at counter (g, tag_asian, i lo, i hi); lanes are consecutive units. S_k / S is carried as
// a running product of step factors e^{mu +- sd Z}; the antithetic partner reuses e^{-sd Z} from
// the same evaluation. The geometric control needs only the running sum of the Brownian part.
Sums asian(const AsParams& p, std::uint64_t seed, std::uint64_t begin, std::uint64_t end) {
    constexpr int U = 2;  // vectors of units in flight: independent chains for the Philox latency
    LaneSums acc;
    const vu lane = simd::iota();
    const vd sd = splat(p.sd), growth = splat(p.growth);
    const double inv_m = 1.0 / p.steps;
    for (std::uint64_t base = begin; base < end; base += U * lanes) {
        vu unit[U];
        vd wsum[U], wint[U], ea[U], eb[U], sa[U], sb[U];
        for (int h = 0; h < U; ++h) {
            unit[h] = base + static_cast<std::uint64_t>(h * lanes) + lane;
            wsum[h] = wint[h] = sa[h] = sb[h] = vd{};
            ea[h] = eb[h] = splat(1.0);
        }
        for (int s0 = 0; s0 < p.steps; s0 += 4) {
            vd z[U][4];
            for (int h = 0; h < U; ++h) {
                simd::normals4(splat_u(static_cast<std::uint64_t>(s0 / 4)), splat_u(tag_asian),
                               unit[h], unit[h] >> 32, seed, z[h]);
            }
            const int kn = p.steps - s0 < 4 ? p.steps - s0 : 4;
            for (int j = 0; j < kn; ++j) {
                for (int h = 0; h < U; ++h) {
                    const vd dz = sd * z[h][j];
                    wsum[h] += dz;
                    wint[h] += wsum[h];
                    if (p.anti) {
                        vd ep, em;
                        simd::exp_pair(dz, ep, em);
                        ea[h] *= growth * ep;
                        eb[h] *= growth * em;
                        sa[h] += ea[h];
                        sb[h] += eb[h];
                    } else {
                        ea[h] *= growth * simd::exp(dz);
                        sa[h] += ea[h];
                    }
                }
            }
        }
        const vd spot = splat(p.spot), k = splat(p.strike), df = splat(p.df), w = splat(p.w);
        const vd geo = splat(p.geo_spot);
        for (int h = 0; h < U; ++h) {
            const vd valid = below(unit[h], end);
            vd ga, gb;
            simd::exp_pair(wint[h] * inv_m, ga, gb);
            const vd fa = df * simd::max0(w * (spot * sa[h] * inv_m - k));
            const vd xa = df * simd::max0(w * (geo * ga - k));
            if (p.anti) {
                const vd fb = df * simd::max0(w * (spot * sb[h] * inv_m - k));
                const vd xb = df * simd::max0(w * (geo * gb - k));
                acc.add(valid, 0.5 * (fa + fb), 0.5 * (xa + xb), fa, fb);
            } else {
                acc.add(valid, fa, xa, fa, vd{});
            }
        }
    }
    return acc.total(static_cast<double>(end - begin), p.anti ? 2.0 : 1.0);
}

// Normal 4 b + k is word k of the Philox block at counter (b, tag, stream lo, stream hi).
void normals(std::uint64_t seed, std::uint32_t tag, std::uint64_t stream,
             std::uint64_t first_block, double* out, std::size_t n) {
    const vu lane = simd::iota();
    const std::size_t per_vector = 4 * static_cast<std::size_t>(lanes);
    for (std::size_t j = 0; j < n; j += per_vector) {
        vd z[4];
        simd::normals4(first_block + j / 4 + lane, splat_u(tag), splat_u(stream),
                       splat_u(stream >> 32), seed, z);
        if (j + per_vector <= n) {
            for (int l = 0; l < lanes; ++l) {
                for (int k = 0; k < 4; ++k) out[j + 4 * l + k] = z[k][l];
            }
        } else {
            for (int l = 0; l < lanes; ++l) {
                for (int k = 0; k < 4; ++k) {
                    const std::size_t idx = j + 4 * static_cast<std::size_t>(l) + k;
                    if (idx < n) out[idx] = z[k][l];
                }
            }
        }
    }
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::mc::kernels
