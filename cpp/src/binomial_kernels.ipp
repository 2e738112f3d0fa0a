// Body of the CRR backward induction per option, included by binomial_kernels_<level>.cpp
// after that unit's target header (GCC auto-vectorises the inner loops for the level; vmath.hpp
// names the namespace after it, so the builds share no symbol). Declarations in
// binomial_kernels.hpp. The units are compiled with -fno-trapping-math (CMakeLists.txt), which
// lets GCC if-convert the American max(continuation, exercise); NaN and infinities keep their
// IEEE semantics (it is not -ffast-math).
#include "binomial_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::binomial::detail {
inline namespace V28_SIMD_ISA {

namespace {

// Scratch for one option: node values and the exercise values on the two node parities.
struct Scratch {
    std::vector<double> v, ex_even, ex_odd;
    void resize(long long steps) {
        const auto n = static_cast<std::size_t>(steps) + 1;
        v.resize(n + 1);
        ex_even.resize(n);
        ex_odd.resize(n);
    }
};

// Values at steps 0, 1, 2 (bottom node first) that the Greeks need.
struct Levels {
    double f00 = 0.0, f10 = 0.0, f11 = 0.0, f20 = 0.0, f21 = 0.0, f22 = 0.0;
};

// Node (i, j) sits at log-spot offset k = 2j - i steps of dx. Writing r = N - i,
// k = 2 (j + r/2) - N (+1 when r is odd), so exercise values at step i are the contiguous
// slice ex_par[j + r/2] of the table of their parity: ex_even[m] at k = 2m - N,
// ex_odd[m] at k = 2m - N + 1.
template <bool American>
[[gnu::always_inline]] inline Levels roll_back(double spot, double strike, double w,
                                               const Tree& tr, long long steps, Scratch& sc) {
    const long long n = steps;
    double* __restrict v = sc.v.data();
    double* __restrict ex_even = sc.ex_even.data();
    double* __restrict ex_odd = sc.ex_odd.data();
    // k as a double through int (steps <= max_steps < 2^31): int64 -> double vectorises only
    // with AVX-512.
    const double k0 = -static_cast<double>(n);
    for (long long m = 0; m <= n; ++m) {
        const double s =
            spot * simd::exp((k0 + 2.0 * static_cast<double>(static_cast<int>(m))) * tr.dx);
        const double e = w * (s - strike);
        ex_even[m] = e > 0.0 ? e : 0.0;
    }
    if constexpr (American) {
        for (long long m = 0; m < n; ++m) {
            const double s =
                spot * simd::exp((k0 + 1.0 + 2.0 * static_cast<double>(static_cast<int>(m))) * tr.dx);
            const double e = w * (s - strike);
            ex_odd[m] = e > 0.0 ? e : 0.0;
        }
    }
    for (long long j = 0; j <= n; ++j) v[j] = ex_even[j];
    const double pu = tr.p * tr.disc;
    const double pd = (1.0 - tr.p) * tr.disc;
    Levels lv;
    for (long long i = n - 1; i >= 0; --i) {
        if constexpr (American) {
            const long long r = n - i;
            const double* __restrict ex = ((r & 1) ? ex_odd : ex_even) + (r >> 1);
            for (long long j = 0; j <= i; ++j) {
                const double cont = pu * v[j + 1] + pd * v[j];
                v[j] = cont > ex[j] ? cont : ex[j];
            }
        } else {
            for (long long j = 0; j <= i; ++j) v[j] = pu * v[j + 1] + pd * v[j];
        }
        if (i == 2) {
            lv.f20 = v[0];
            lv.f21 = v[1];
            lv.f22 = v[2];
        } else if (i == 1) {
            lv.f10 = v[0];
            lv.f11 = v[1];
        }
    }
    // steps = 1 never passes through i = 1 inside the loop: the terminal nodes are level 1.
    if (n == 1) {
        lv.f10 = ex_even[0];
        lv.f11 = ex_even[1];
    }
    lv.f00 = v[0];
    return lv;
}

// vol = 0: the spot follows its forward S e^{(rate - div) tau}, so the option is worth the
// discounted exercise value g(tau) = w (S e^{-div tau} - K e^{-rate tau}) at the best date: tau = t
// for a European option, the maximum over [0, t] for an American one. g' has at most one zero,
// tau* = ln(rate K / (div S)) / (rate - div), so the maximum is at 0, t or tau*. This is the
// limit vol -> 0 of the continuous-time price (the tree's p leaves [0, 1] before it). Greeks by
// the envelope theorem: delta = w e^{-div tau} at the best date, gamma = 0, theta = -g'(t) when
// the best date is expiry (otherwise the value does not depend on time to expiry).
CrrGreeks deterministic(double spot, double strike, double t, double rate, double div, double w,
                        bool american) {
    auto g = [&](double tau) { return w * (spot * std::exp(-div * tau) - strike * std::exp(-rate * tau)); };
    double best_tau = t, best = g(t);
    if (american) {
        double cands[2] = {0.0, std::numeric_limits<double>::quiet_NaN()};
        if (rate != div && rate * strike > 0.0 && div * spot > 0.0) {
            cands[1] = std::log(rate * strike / (div * spot)) / (rate - div);
        }
        for (double tau : cands) {
            if (!(tau >= 0.0 && tau < t)) continue;
            const double v = g(tau);
            if (v > best) {
                best = v;
                best_tau = tau;
            }
        }
    }
    CrrGreeks out;
    if (!(best > 0.0)) return out;
    out.price = best;
    out.delta = w * std::exp(-div * best_tau);
    if (best_tau == t) {
        out.theta = -w * (-div * spot * std::exp(-div * t) + rate * strike * std::exp(-rate * t));
    }
    return out;
}

CrrGreeks value(double spot, double strike, double t, double rate, double div, double vol,
                bool call, bool american, long long steps, bool greeks, Scratch& sc) {
    const double w = call ? 1.0 : -1.0;
    CrrGreeks g;
    if (t == 0.0) {  // at expiry: the payoff, a step function of spot
        const double e = w * (spot - strike);
        g.price = e > 0.0 ? e : 0.0;
        g.delta = e > 0.0 ? w : 0.0;
        return g;
    }
    if (vol == 0.0) return deterministic(spot, strike, t, rate, div, w, american);
    const Tree tr = make_tree(t, rate, div, vol, steps);
    const Levels lv = american ? roll_back<true>(spot, strike, w, tr, steps, sc)
                               : roll_back<false>(spot, strike, w, tr, steps, sc);
    g.price = lv.f00;
    if (!greeks) return g;
    const double su = spot * std::exp(tr.dx), sd = spot * std::exp(-tr.dx);
    const double suu = spot * std::exp(2.0 * tr.dx), sdd = spot * std::exp(-2.0 * tr.dx);
    g.delta = (lv.f11 - lv.f10) / (su - sd);
    g.gamma = ((lv.f22 - lv.f21) / (suu - spot) - (lv.f21 - lv.f20) / (spot - sdd)) /
              (0.5 * (suu - sdd));
    g.theta = (lv.f21 - lv.f00) / (2.0 * tr.dt);
    return g;
}

}  // namespace

[[gnu::flatten]] void run_batch(const Batch& b) {
    Scratch sc;
    sc.resize(b.steps);
    const bool greeks = b.delta != nullptr;
    for (std::size_t i = 0; i < b.n; ++i) {
        const CrrGreeks g = value(b.spot[i], b.strike[i], b.t[i], b.rate[i], b.div[i], b.vol[i],
                                  b.call[i] != 0, b.american[i] != 0, b.steps, greeks, sc);
        b.price[i] = g.price;
        if (greeks) {
            b.delta[i] = g.delta;
            b.gamma[i] = g.gamma;
            b.theta[i] = g.theta;
        }
    }
}

}  // namespace V28_SIMD_ISA
}  // namespace v28::binomial::detail
