#include "v28/garch.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "v28/check.hpp"
#include "v28/optimize.hpp"

namespace v28::garch {

namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;
constexpr double kLogPi = 1.1447298858494001741434273513531;
constexpr double kInf = std::numeric_limits<double>::infinity();

// psi(x) and psi'(x) for x > 0: recurrence up to x >= 10, then the asymptotic series
// (Abramowitz & Stegun 6.3.18 and 6.4.12); absolute error below 1e-14 there.
double digamma(double x) {
    double acc = 0.0;
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    const double r = 1.0 / (x * x);
    return acc + std::log(x) - 0.5 / x -
           r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 - r / 132))));
}

double trigamma(double x) {
    double acc = 0.0;
    while (x < 10.0) {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    const double r = 1.0 / (x * x);
    return acc + 1.0 / x + 0.5 * r +
           r / x * (1.0 / 6 - r * (1.0 / 30 - r * (1.0 / 42 - r * (1.0 / 30 - r * 5.0 / 66))));
}

// The standardised series and how its presample variance is formed (all in scaled units).
struct Data {
    const double* x = nullptr;
    std::size_t n = 0;
    double m1 = 0.0;  // mean of x
    double m2 = 0.0;  // mean of x^2
    Presample presample = Presample::mean_square;
    double h0_fixed = 0.0;  // ewma or fixed presample value
};

// h_0 and its first two derivatives with respect to mu.
struct Presample0 {
    double h0, d1, d2;
};

Presample0 presample_at(const Data& d, double mu) {
    if (d.presample == Presample::mean_square) {
        // (1/T) sum (x_t - mu)^2 = m2 - 2 mu m1 + mu^2
        return {d.m2 - 2.0 * mu * d.m1 + mu * mu, -2.0 * (d.m1 - mu), 2.0};
    }
    return {d.h0_fixed, 0.0, 0.0};
}

// Sum of logs as the log of a running product, flushed before it can overflow or underflow:
// one log call per pass instead of one per observation (the pass is otherwise a few flops per
// observation). The relative rounding error of the product is about T * 1e-16.
class LogSum {
public:
    void add(double v) {
        if (prod_ > 1e150 || prod_ < 1e-150) flush();
        prod_ *= v;
    }
    double value() {
        flush();
        return acc_;
    }

private:
    void flush() {
        acc_ += std::log(prod_);
        prod_ = 1.0;
    }
    double prod_ = 1.0;
    double acc_ = 0.0;
};

// Order of the pass: the log-likelihood only; with gradient and Hessian; or with gradient and
// the sum of outer products of the per-observation scores (for the robust covariance).
enum class Order { value, hessian, scores };

struct Derivs {
    double ll = 0.0;
    Eigen::Matrix<double, 5, 1> g = Eigen::Matrix<double, 5, 1>::Zero();
    Eigen::Matrix<double, 5, 5> H = Eigen::Matrix<double, 5, 5>::Zero();
    Eigen::Matrix<double, 5, 5> B = Eigen::Matrix<double, 5, 5>::Zero();
    double h0 = 0.0;
};

// One pass over the data at theta = (mu, omega, alpha, beta, nu). The derivatives of h_t follow
// from differentiating h_t = omega + alpha e_{t-1}^2 + beta h_{t-1} once and twice; only six of
// the ten second derivatives are not identically zero (those listed in `S*` below).
// Returns the log-likelihood (NaN if a variance is not positive and finite).
template <bool StudentT, Order Ord>
double pass(const Data& d, const Params& th, Derivs* out, double* h_out) {
    const double mu = th.mu, om = th.omega, al = th.alpha, be = th.beta;
    const Presample0 p0 = presample_at(d, mu);

    // Student t constants: K(nu) = lgamma((nu+1)/2) - lgamma(nu/2) - log(pi (nu-2))/2, its
    // first two derivatives, c = nu - 2, a = (nu + 1)/2.
    double c = 1.0, inv_c = 1.0, a = 0.5, K = 0.0, K1 = 0.0, K2 = 0.0;
    if constexpr (StudentT) {
        const double nu = th.nu;
        c = nu - 2.0;
        inv_c = 1.0 / c;
        a = 0.5 * (nu + 1.0);
        K = std::lgamma(a) - std::lgamma(0.5 * nu) - 0.5 * (kLogPi + std::log(c));
        if constexpr (Ord != Order::value) {
            K1 = 0.5 * digamma(a) - 0.5 * digamma(0.5 * nu) - 0.5 * inv_c;
            K2 = 0.25 * trigamma(a) - 0.25 * trigamma(0.5 * nu) + 0.5 * inv_c * inv_c;
        }
    }

    // Previous squared residual (and its mu-derivatives) and previous variance; at t = 0 both
    // are the presample h_0.
    double e2_prev = p0.h0, e2_prev_d1 = p0.d1, e2_prev_d2 = p0.d2, h_prev = p0.h0;
    // dh/d(mu, omega, alpha, beta) and the non-zero second derivatives of h.
    double Dm = p0.d1, Dw = 0.0, Da = 0.0, Db = 0.0;
    double Smm = p0.d2, Sma = 0.0, Smb = 0.0, Swb = 0.0, Sab = 0.0, Sbb = 0.0;

    LogSum log_h, log_q;  // sum log h_t; sum log(1 + z_t) (t only)
    double sum_z2 = 0.0;  // normal: sum e_t^2 / h_t
    double gm = 0, gw = 0, ga = 0, gb = 0, gn = 0;
    double Hmm = 0, Hmw = 0, Hma = 0, Hmb = 0, Hww = 0, Hwa = 0, Hwb = 0, Haa = 0, Hab = 0,
           Hbb = 0;
    double Hnm = 0, Hnw = 0, Hna = 0, Hnb = 0, Hnn = 0;
    Eigen::Matrix<double, 5, 5> B = Eigen::Matrix<double, 5, 5>::Zero();

    const double* x = d.x;
    const std::size_t n = d.n;
    for (std::size_t t = 0; t < n; ++t) {
        if constexpr (Ord == Order::hessian) {
            Smm = al * e2_prev_d2 + be * Smm;
            Sma = e2_prev_d1 + be * Sma;
            Smb = Dm + be * Smb;
            Swb = Dw + be * Swb;
            Sab = Da + be * Sab;
            Sbb = 2.0 * Db + be * Sbb;
        }
        if constexpr (Ord != Order::value) {
            Dm = al * e2_prev_d1 + be * Dm;
            Dw = 1.0 + be * Dw;
            Da = e2_prev + be * Da;
            Db = h_prev + be * Db;
        }
        const double h = om + al * e2_prev + be * h_prev;
        if (h_out) h_out[t] = h;
        const double e = x[t] - mu;
        const double e2 = e * e;
        const double ih = 1.0 / h;

        double l_e, l_h, l_ee, l_eh, l_hh;
        double l_n = 0, l_en = 0, l_hn = 0, l_nn = 0;
        if constexpr (!StudentT) {
            const double z2 = e2 * ih;
            log_h.add(h);
            sum_z2 += z2;
            if constexpr (Ord != Order::value) {
                l_e = -e * ih;
                l_h = 0.5 * ih * (z2 - 1.0);
                l_ee = -ih;
                l_eh = e * ih * ih;
                l_hh = ih * ih * (0.5 - z2);
            }
        } else {
            const double z = e2 * ih * inv_c;
            const double q = 1.0 + z;
            log_h.add(h);
            log_q.add(q);
            if constexpr (Ord != Order::value) {
                const double iq = 1.0 / q;
                const double Lz = -a * iq, Lzz = a * iq * iq, Lzn = -0.5 * iq;
                const double z_e = 2.0 * e * ih * inv_c, z_h = -z * ih, z_ee = 2.0 * ih * inv_c;
                const double z_eh = -z_e * ih, z_hh = 2.0 * z * ih * ih, z_c = -z * inv_c;
                const double z_cc = 2.0 * z * inv_c * inv_c, z_ec = -z_e * inv_c;
                const double z_hc = z * ih * inv_c;
                l_e = Lz * z_e;
                l_h = -0.5 * ih + Lz * z_h;
                l_ee = Lzz * z_e * z_e + Lz * z_ee;
                l_eh = Lzz * z_e * z_h + Lz * z_eh;
                l_hh = 0.5 * ih * ih + Lzz * z_h * z_h + Lz * z_hh;
                // l_nu without its -log(q)/2 term, which is added from the pass's sum of logs
                // (and per observation for the scores).
                l_n = K1 + Lz * z_c;
                if constexpr (Ord == Order::scores) l_n -= 0.5 * std::log(q);
                l_en = Lzz * z_e * z_c + Lz * z_ec + Lzn * z_e;
                l_hn = Lzz * z_h * z_c + Lz * z_hc + Lzn * z_h;
                l_nn = K2 + 2.0 * Lzn * z_c + Lzz * z_c * z_c + Lz * z_cc;
            }
        }

        if constexpr (Ord != Order::value) {
            // Chain rule with de_t/dmu = -1 and h_t(theta).
            const double sm = -l_e + l_h * Dm, sw = l_h * Dw, sa = l_h * Da, sb = l_h * Db;
            gm += sm;
            gw += sw;
            ga += sa;
            gb += sb;
            if constexpr (StudentT) gn += l_n;
        }
        if constexpr (Ord == Order::hessian) {
            const double um = l_hh * Dm - l_eh;  // d(l_h)/dmu along the path
            Hmm += l_ee - l_eh * Dm + um * Dm + l_h * Smm;
            Hmw += um * Dw;
            Hma += um * Da + l_h * Sma;
            Hmb += um * Db + l_h * Smb;
            Hww += l_hh * Dw * Dw;
            Hwa += l_hh * Dw * Da;
            Hwb += l_hh * Dw * Db + l_h * Swb;
            Haa += l_hh * Da * Da;
            Hab += l_hh * Da * Db + l_h * Sab;
            Hbb += l_hh * Db * Db + l_h * Sbb;
            if constexpr (StudentT) {
                Hnm += l_hn * Dm - l_en;
                Hnw += l_hn * Dw;
                Hna += l_hn * Da;
                Hnb += l_hn * Db;
                Hnn += l_nn;
            }
        }
        if constexpr (Ord == Order::scores) {
            const double s[5] = {-l_e + l_h * Dm, l_h * Dw, l_h * Da, l_h * Db, l_n};
            constexpr int k = StudentT ? 5 : 4;
            for (int i = 0; i < k; ++i) {
                for (int j = i; j < k; ++j) B(i, j) += s[i] * s[j];
            }
        }
        e2_prev = e2;
        e2_prev_d1 = -2.0 * e;
        e2_prev_d2 = 2.0;
        h_prev = h;
    }
    if (h_out) h_out[n] = om + al * e2_prev + be * h_prev;  // one-step forecast h_{T+1}

    const double dn = static_cast<double>(n);
    const double sum_log_q = StudentT ? log_q.value() : 0.0;
    const double ll = StudentT ? dn * K - 0.5 * log_h.value() - a * sum_log_q
                               : -0.5 * (dn * kLog2Pi + log_h.value() + sum_z2);
    if (out) {
        out->ll = ll;
        out->h0 = p0.h0;
        if constexpr (Ord != Order::value) {
            if constexpr (Ord == Order::hessian) gn -= 0.5 * sum_log_q;
            for (int i = 0; i < 5; ++i) {
                for (int j = 0; j < i; ++j) B(i, j) = B(j, i);
            }
            out->g << gm, gw, ga, gb, gn;
        }
        if constexpr (Ord == Order::hessian) {
            out->H << Hmm, Hmw, Hma, Hmb, Hnm,  //
                Hmw, Hww, Hwa, Hwb, Hnw,        //
                Hma, Hwa, Haa, Hab, Hna,        //
                Hmb, Hwb, Hab, Hbb, Hnb,        //
                Hnm, Hnw, Hna, Hnb, Hnn;
        }
        if constexpr (Ord == Order::scores) {
            out->B = B;
        }
    }
    return std::isfinite(ll) ? ll : std::numeric_limits<double>::quiet_NaN();
}

template <Order Ord>
double pass_dist(bool student, const Data& d, const Params& th, Derivs* out, double* h_out) {
    return student ? pass<true, Ord>(d, th, out, h_out) : pass<false, Ord>(d, th, out, h_out);
}

// Optimiser coordinates y = (mu, w, a, b[, v]): omega = exp(w), (alpha, beta, 1-alpha-beta) =
// softmax(a, b, 0) shrunk by kPersistenceCap, nu = 2 + exp(v). The cap keeps alpha + beta <= 1 -
// 1e-8 in floating point, so an integrated fit (alpha + beta -> 1) still has finite forecasts.
constexpr double kPersistenceCap = 1.0 - 1e-8;

Params to_params(const Eigen::VectorXd& y) {
    Params p;
    p.mu = y[0];
    p.omega = std::exp(y[1]);
    const double ea = std::exp(y[2]), eb = std::exp(y[3]);
    const double den = 1.0 + ea + eb;
    p.alpha = kPersistenceCap * ea / den;
    p.beta = kPersistenceCap * eb / den;
    p.nu = y.size() > 4 ? 2.0 + std::exp(y[4]) : 0.0;
    return p;
}

Eigen::VectorXd to_coords(const Params& p, bool student) {
    Eigen::VectorXd y(student ? 5 : 4);
    const double sa = p.alpha / kPersistenceCap, sb = p.beta / kPersistenceCap;
    const double rest = 1.0 - sa - sb;
    y[0] = p.mu;
    y[1] = std::log(p.omega);
    y[2] = std::log(sa / rest);
    y[3] = std::log(sb / rest);
    if (student) y[4] = std::log(p.nu - 2.0);
    return y;
}

void check_returns(std::span<const double> r) {
    if (r.size() < min_observations) {
        throw std::invalid_argument("returns must have at least " +
                                    std::to_string(min_observations) +
                                    " observations for a GARCH(1,1) fit, got " +
                                    std::to_string(r.size()));
    }
    require_finite("returns", r);
}

// Standardises returns into x (x = (r - m)/s) and returns s; throws for a constant series.
double standardise(std::span<const double> r, std::vector<double>& x, double& m) {
    const std::size_t n = r.size();
    double sum = 0.0;
    for (double v : r) sum += v;
    m = sum / static_cast<double>(n);
    double ss = 0.0;
    for (double v : r) ss += (v - m) * (v - m);
    const double s = std::sqrt(ss / static_cast<double>(n));
    if (!std::isfinite(s)) {
        throw std::invalid_argument("returns are too large to standardise (sum of squares "
                                    "overflows); rescale them");
    }
    if (!(s > 1e-12 * std::abs(m)) || !(s > 0.0)) {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf, m).ptr;  // shortest round trip
        throw std::invalid_argument("returns must not be constant (every value is about " +
                                    std::string(buf, end) + "); GARCH needs varying returns");
    }
    x.resize(n);
    const double inv_s = 1.0 / s;
    for (std::size_t t = 0; t < n; ++t) x[t] = (r[t] - m) * inv_s;
    return s;
}

// arch's backcast: exponentially weighted mean square of the first min(75, T) residuals at the
// starting mean (arch.univariate.volatility.GARCH.backcast, weights 0.94^i normalised).
double ewma_backcast(const std::vector<double>& x) {
    const std::size_t tau = std::min<std::size_t>(75, x.size());
    double w = 1.0, sw = 0.0, acc = 0.0;
    for (std::size_t i = 0; i < tau; ++i) {
        acc += w * x[i] * x[i];
        sw += w;
        w *= 0.94;
    }
    return acc / sw;
}

Data make_data(const std::vector<double>& x, Presample presample, double h0_fixed_scaled) {
    Data d;
    d.x = x.data();
    d.n = x.size();
    double s1 = 0.0, s2 = 0.0;
    for (double v : x) {
        s1 += v;
        s2 += v * v;
    }
    d.m1 = s1 / static_cast<double>(d.n);
    d.m2 = s2 / static_cast<double>(d.n);
    d.presample = presample;
    d.h0_fixed = presample == Presample::ewma ? ewma_backcast(x) : h0_fixed_scaled;
    return d;
}

}  // namespace

FitResult fit(std::span<const double> returns, const FitOptions& options,
              std::span<double> variance_out) {
    check_returns(returns);
    const std::size_t n = returns.size();
    if (!variance_out.empty()) {
        require_same_size("variance_out, returns + 1", variance_out.size(), n + 1);
    }
    if (options.presample == Presample::fixed) {
        require_positive("presample_value", options.presample_value);
    }
    std::vector<double> x;
    double m = 0.0;
    const double s = standardise(returns, x, m);
    const double s2 = s * s;
    const Data d = make_data(x, options.presample, options.presample_value / s2);
    const bool student = options.dist == Dist::student_t;
    const int k = student ? 5 : 4;
    FitResult res;
    res.n_params = k;

    // Starting point: the best of a small grid with variance targeting (unit variance after
    // standardising), mean at the sample mean (0), nu from the sample kurtosis.
    double nu0 = 8.0;
    if (student) {
        double m4 = 0.0;
        for (double v : x) m4 += v * v * v * v;
        const double excess = m4 / static_cast<double>(n) - 3.0;
        nu0 = excess > 0.0 ? std::clamp(4.0 + 6.0 / excess, 4.5, 30.0) : 30.0;
    }
    Params start{0.0, 0.0, 0.0, 0.0, nu0};
    double best = -kInf;
    Data head = d;  // the grid only ranks starting points: the first 2,000 returns suffice
    head.n = std::min<std::size_t>(n, 2000);
    for (double persistence : {0.5, 0.9, 0.98}) {
        for (double share : {0.05, 0.12, 0.3}) {
            const Params p{0.0, 1.0 - persistence, share * persistence,
                           (1.0 - share) * persistence, nu0};
            const double ll = pass_dist<Order::value>(student, head, p, nullptr, nullptr);
            ++res.evaluations;
            if (ll > best) {
                best = ll;
                start = p;
            }
        }
    }

    const double inv_n = 1.0 / static_cast<double>(n);
    // Hessians in theta of the evaluated points, so the covariance at the optimum needs no
    // extra second-order pass.
    std::vector<std::pair<Eigen::VectorXd, Eigen::Matrix<double, 5, 5>>> hessians;
    // f(y) = -loglik(theta(y)) / T with its gradient and Hessian in y by the chain rule.
    const optimize::Objective objective = [&](const Eigen::VectorXd& y, Eigen::VectorXd& grad,
                                              Eigen::MatrixXd& hess) -> double {
        const Params p = to_params(y);
        if (!(std::isfinite(p.omega) && p.omega > 0.0 && std::isfinite(p.nu))) return kInf;
        Derivs dv;
        const double ll = pass_dist<Order::hessian>(student, d, p, &dv, nullptr);
        if (!std::isfinite(ll)) return kInf;
        hessians.emplace_back(y, dv.H);
        const Eigen::VectorXd g = -inv_n * dv.g.head(k);
        const Eigen::MatrixXd H = -inv_n * dv.H.topLeftCorner(k, k);
        // Softmax shares sa, sb; alpha = cap sa, beta = cap sb.
        const double sa = p.alpha / kPersistenceCap, sb = p.beta / kPersistenceCap;
        const double cap = kPersistenceCap;
        Eigen::MatrixXd J = Eigen::MatrixXd::Zero(k, k);  // d theta / d y
        J(0, 0) = 1.0;
        J(1, 1) = p.omega;
        J(2, 2) = cap * sa * (1.0 - sa);
        J(2, 3) = -cap * sa * sb;
        J(3, 2) = -cap * sa * sb;
        J(3, 3) = cap * sb * (1.0 - sb);
        if (student) J(4, 4) = p.nu - 2.0;
        grad = J.transpose() * g;
        hess = J.transpose() * H * J;
        // Curvature of the transformation, weighted by the gradient in theta.
        hess(1, 1) += g[1] * p.omega;
        hess(2, 2) += cap * (g[2] * sa * (1.0 - sa) * (1.0 - 2.0 * sa) -
                             g[3] * sa * sb * (1.0 - 2.0 * sa));
        hess(3, 3) += cap * (g[3] * sb * (1.0 - sb) * (1.0 - 2.0 * sb) -
                             g[2] * sa * sb * (1.0 - 2.0 * sb));
        const double cross =
            -cap * (g[2] * sa * sb * (1.0 - 2.0 * sa) + g[3] * sa * sb * (1.0 - 2.0 * sb));
        hess(2, 3) += cross;
        hess(3, 2) += cross;
        if (student) hess(4, 4) += g[4] * (p.nu - 2.0);
        return -inv_n * ll;
    };
    optimize::Options opt;
    opt.max_iter = options.max_iter;
    opt.grad_tol = options.grad_tol;
    // Stop when the model predicts less than 1e-13 (1 + |f|) more decrease of -loglik / T: the
    // log-likelihood is then within about T * 1e-13 of its maximum (boundary optima, where the
    // gradient in y only decays geometrically, end here).
    opt.step_tol = 1e-13;
    const optimize::Result r =
        optimize::newton_trust_region(objective, to_coords(start, student), opt);
    res.iterations = r.iterations;
    res.evaluations += r.evaluations + 1;
    res.converged = r.converged;

    // Final pass: scores for the robust covariance and the conditional variances.
    const Params ps = to_params(r.x);
    Derivs dv;
    double* h_out = variance_out.empty() ? nullptr : variance_out.data();
    const double ll_s = pass_dist<Order::scores>(student, d, ps, &dv, h_out);

    // Back to return units: mu = m + s mu_s, omega = s^2 omega_s, h = s^2 h_s and the
    // log-likelihood gains -T log s from the Jacobian of the change of units.
    res.params = {m + s * ps.mu, s2 * ps.omega, ps.alpha, ps.beta, student ? ps.nu : 0.0};
    res.loglik = ll_s - static_cast<double>(n) * std::log(s);
    res.presample_variance = s2 * dv.h0;
    if (h_out) {
        for (std::size_t t = 0; t <= n; ++t) h_out[t] *= s2;
    }
    Eigen::Matrix<double, 5, 1> unit;
    unit << s, s2, 1.0, 1.0, 1.0;
    res.grad.head(k) = dv.g.head(k).cwiseQuotient(unit.head(k));
    res.cov_robust.setConstant(std::numeric_limits<double>::quiet_NaN());
    const auto at_optimum = std::find_if(hessians.rbegin(), hessians.rend(),
                                         [&](const auto& e) { return e.first == r.x; });
    const Eigen::MatrixXd H = at_optimum != hessians.rend()
                                  ? Eigen::MatrixXd(at_optimum->second.topLeftCorner(k, k))
                                  : Eigen::MatrixXd::Zero(k, k);
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(-H);
    if (at_optimum != hessians.rend() && ldlt.info() == Eigen::Success && ldlt.isPositive() &&
        ldlt.vectorD().minCoeff() > 1e-12 * ldlt.vectorD().maxCoeff()) {
        const Eigen::MatrixXd Hinv = ldlt.solve(Eigen::MatrixXd::Identity(k, k));
        const Eigen::MatrixXd cov = Hinv * dv.B.topLeftCorner(k, k) * Hinv;
        res.cov_robust.topLeftCorner(k, k) =
            unit.head(k).asDiagonal() * cov * unit.head(k).asDiagonal();
    }
    return res;
}

double loglik(std::span<const double> returns, const Params& params, Dist dist,
              Presample presample, double presample_value, std::span<double> variance_out) {
    if (returns.empty()) throw std::invalid_argument("returns must not be empty");
    require_finite("returns", returns);
    require_finite("mu", params.mu);
    require_positive("omega", params.omega);
    require_nonnegative("alpha", params.alpha);
    require_nonnegative("beta", params.beta);
    const bool student = dist == Dist::student_t;
    if (student && !(params.nu > 2.0)) fail_arg("nu", "> 2", params.nu);
    if (!variance_out.empty()) {
        require_same_size("variance_out, returns + 1", variance_out.size(), returns.size() + 1);
    }
    std::vector<double> r(returns.begin(), returns.end());
    double h0 = presample_value;
    if (presample == Presample::fixed) require_positive("presample_value", presample_value);
    if (presample == Presample::ewma) {
        double m = 0.0;
        for (double v : r) m += v;
        m /= static_cast<double>(r.size());
        std::vector<double> resid(r.size());
        for (std::size_t t = 0; t < r.size(); ++t) resid[t] = r[t] - m;
        h0 = ewma_backcast(resid);
    }
    const Data d =
        make_data(r, presample == Presample::mean_square ? presample : Presample::fixed, h0);
    double* h_out = variance_out.empty() ? nullptr : variance_out.data();
    return pass_dist<Order::value>(student, d, params, nullptr, h_out);
}

void forecast(double omega, double alpha, double beta, double h_next, std::span<double> out) {
    require_positive("omega", omega);
    require_nonnegative("alpha", alpha);
    require_nonnegative("beta", beta);
    require_positive("h_next", h_next);
    const double persistence = alpha + beta;
    if (!(persistence < 1.0)) fail_arg("alpha + beta", "< 1 (covariance stationary)", persistence);
    const double sigma2 = omega / (1.0 - persistence);
    double decay = 1.0;
    for (double& v : out) {
        v = sigma2 + decay * (h_next - sigma2);
        decay *= persistence;
    }
}

}  // namespace v28::garch
