// Adaptive explicit Runge-Kutta: Dormand-Prince 5(4) with FSAL, PI step-size control and the
// fourth-order continuous extension (dense output) of Hairer's DOPRI5.
//
// References: J. R. Dormand, P. J. Prince (1980), "A family of embedded Runge-Kutta formulae",
// J. Comp. Appl. Math. 6(1); E. Hairer, S. P. Norsett, G. Wanner (1993), "Solving Ordinary
// Differential Equations I", 2nd ed., sec. II.4-II.6 (initial step, PI control, dense output).
// Error norm: sqrt(mean((err_i / (atol + rtol max(|y_i|, |y_new_i|)))^2)) <= 1 per step.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>

namespace v28::ode {

struct Options {
    double rtol = 1e-10;
    double atol = 1e-10;
    std::size_t max_steps = 1000000;
};

struct Stats {
    std::size_t steps = 0;      // accepted
    std::size_t rejected = 0;
    std::size_t evaluations = 0;
};

// Dormand-Prince tableau and dense-output weights (Hairer's dopri5.f).
namespace dp {
inline constexpr double c2 = 1.0 / 5, c3 = 3.0 / 10, c4 = 4.0 / 5, c5 = 8.0 / 9;
inline constexpr double a21 = 1.0 / 5;
inline constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
inline constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
inline constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561,
                        a54 = -212.0 / 729;
inline constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247,
                        a64 = 49.0 / 176, a65 = -5103.0 / 18656;
inline constexpr double a71 = 35.0 / 384, a73 = 500.0 / 1113, a74 = 125.0 / 192,
                        a75 = -2187.0 / 6784, a76 = 11.0 / 84;
inline constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920,
                        e5 = -17253.0 / 339200, e6 = 22.0 / 525, e7 = -1.0 / 40;
inline constexpr double d1 = -12715105075.0 / 11282082432.0, d3 = 87487479700.0 / 32700410799.0,
                        d4 = -10690763975.0 / 1880347072.0, d5 = 701980252875.0 / 199316789632.0,
                        d6 = -1453857185.0 / 822651844.0, d7 = 69997945.0 / 29380423.0;
}  // namespace dp

// Hairer's PI controller (beta = 0.04): the factor to multiply h by after a step with error
// `err`; `fac_old` carries the previous accepted error.
double step_factor(double err, double& fac_old, bool accepted);

// Integrate y' = f(t, y) (f(t, y, dydt) writes dydt) from (t0, y0) forward to the last of the
// increasing output times `t_out` (all >= t0) and write y(t_out[i]) into out[i * N .. i * N + N).
// Throws std::invalid_argument for bad tolerances or times, std::domain_error when the step
// size underflows or max_steps is exceeded; exceptions from f propagate.
template <std::size_t N, class F>
Stats dopri5(F&& f, double t0, const std::array<double, N>& y0, std::span<const double> t_out,
             std::span<double> out, const Options& opt = {}) {
    using V = std::array<double, N>;
    if (!(opt.rtol > 0.0) || !(opt.atol > 0.0)) throw std::invalid_argument("rtol and atol must be > 0");
    if (out.size() != t_out.size() * N) throw std::invalid_argument("out must hold len(t_out) * N values");
    Stats st;
    if (t_out.empty()) return st;
    for (std::size_t i = 0; i < t_out.size(); ++i) {
        if (!(t_out[i] >= t0) || (i > 0 && !(t_out[i] >= t_out[i - 1]))) {
            throw std::invalid_argument("output times must be increasing and >= t0");
        }
    }
    const double t_end = t_out.back();
    auto norm = [&](const V& e, const V& ya, const V& yb) {
        double s = 0.0;
        for (std::size_t i = 0; i < N; ++i) {
            const double sk = opt.atol + opt.rtol * std::max(std::abs(ya[i]), std::abs(yb[i]));
            s += (e[i] / sk) * (e[i] / sk);
        }
        return std::sqrt(s / N);
    };
    V y = y0, k1, k2, k3, k4, k5, k6, k7, yt, ynew;
    double t = t0;
    std::size_t next = 0;
    while (next < t_out.size() && t_out[next] == t0) {
        std::copy(y.begin(), y.end(), out.begin() + next * N);
        ++next;
    }
    if (next == t_out.size()) return st;
    f(t, y, k1);
    ++st.evaluations;

    // Initial step (Hairer et al., II.4).
    double h;
    {
        V zero{};
        const double dn0 = norm(y, zero, y), dn1 = norm(k1, zero, y);
        double h0 = (dn0 < 1e-10 || dn1 < 1e-10) ? 1e-6 : 0.01 * dn0 / dn1;
        h0 = std::min(h0, t_end - t0);
        for (std::size_t i = 0; i < N; ++i) yt[i] = y[i] + h0 * k1[i];
        f(t + h0, yt, k2);
        ++st.evaluations;
        V dk;
        for (std::size_t i = 0; i < N; ++i) dk[i] = (k2[i] - k1[i]) / h0;
        const double dn2 = norm(dk, zero, y);
        const double mx = std::max(dn1, dn2);
        const double h1 = mx <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / mx, 0.2);
        h = std::min({100.0 * h0, h1, t_end - t0});
    }

    double fac_old = 1e-4;
    bool last_rejected = false;
    while (next < t_out.size()) {
        if (st.steps + st.rejected >= opt.max_steps) throw std::domain_error("ode: max_steps exceeded");
        if (t + h > t_end) h = t_end - t;
        if (!(h > 1e-14 * std::max(1.0, std::abs(t)))) throw std::domain_error("ode: step size underflow");
        using namespace dp;
        for (std::size_t i = 0; i < N; ++i) yt[i] = y[i] + h * a21 * k1[i];
        f(t + c2 * h, yt, k2);
        for (std::size_t i = 0; i < N; ++i) yt[i] = y[i] + h * (a31 * k1[i] + a32 * k2[i]);
        f(t + c3 * h, yt, k3);
        for (std::size_t i = 0; i < N; ++i) yt[i] = y[i] + h * (a41 * k1[i] + a42 * k2[i] + a43 * k3[i]);
        f(t + c4 * h, yt, k4);
        for (std::size_t i = 0; i < N; ++i)
            yt[i] = y[i] + h * (a51 * k1[i] + a52 * k2[i] + a53 * k3[i] + a54 * k4[i]);
        f(t + c5 * h, yt, k5);
        for (std::size_t i = 0; i < N; ++i)
            yt[i] = y[i] + h * (a61 * k1[i] + a62 * k2[i] + a63 * k3[i] + a64 * k4[i] + a65 * k5[i]);
        f(t + h, yt, k6);
        for (std::size_t i = 0; i < N; ++i)
            ynew[i] = y[i] + h * (a71 * k1[i] + a73 * k3[i] + a74 * k4[i] + a75 * k5[i] + a76 * k6[i]);
        f(t + h, ynew, k7);
        st.evaluations += 6;
        V e;
        for (std::size_t i = 0; i < N; ++i)
            e[i] = h * (e1 * k1[i] + e3 * k3[i] + e4 * k4[i] + e5 * k5[i] + e6 * k6[i] + e7 * k7[i]);
        const double err = norm(e, y, ynew);
        if (!(err <= 1.0)) {  // also rejects NaN
            ++st.rejected;
            h *= std::isfinite(err) ? step_factor(err, fac_old, false) : 0.1;
            last_rejected = true;
            continue;
        }
        // Dense output on [t, t + h] for every requested time inside it.
        const double t_new = (t + h >= t_end) ? t_end : t + h;
        if (next < t_out.size() && t_out[next] <= t_new) {
            V r2, r3, r4, r5;
            for (std::size_t i = 0; i < N; ++i) {
                const double ydiff = ynew[i] - y[i];
                const double bspl = h * k1[i] - ydiff;
                r2[i] = ydiff;
                r3[i] = bspl;
                r4[i] = ydiff - h * k7[i] - bspl;
                r5[i] = h * (d1 * k1[i] + d3 * k3[i] + d4 * k4[i] + d5 * k5[i] + d6 * k6[i] + d7 * k7[i]);
            }
            while (next < t_out.size() && t_out[next] <= t_new) {
                const double th = (t_out[next] - t) / h, th1 = 1.0 - th;
                double* o = out.data() + next * N;
                if (t_out[next] == t_new) {
                    for (std::size_t i = 0; i < N; ++i) o[i] = ynew[i];
                } else {
                    for (std::size_t i = 0; i < N; ++i)
                        o[i] = y[i] + th * (r2[i] + th1 * (r3[i] + th * (r4[i] + th1 * r5[i])));
                }
                ++next;
            }
        }
        ++st.steps;
        const double fac = step_factor(err, fac_old, true);
        t = t_new;
        y = ynew;
        k1 = k7;  // first same as last
        h *= last_rejected ? std::min(fac, 1.0) : fac;
        last_rejected = false;
    }
    return st;
}

}  // namespace v28::ode
