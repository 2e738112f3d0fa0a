// Implied-volatility surface from raw SVI slices of total implied variance.
//
// Raw SVI (Gatheral 2004; Gatheral & Jacquier 2014, "Arbitrage-free SVI volatility surfaces",
// Quant. Finance 14(1), eq. 3.1): total implied variance at log-moneyness y = ln(K / F(t)),
//     w(y) = a + b (rho (y - m) + sqrt((y - m)^2 + sigma^2)).
// Units: w in years * vol^2 (w = iv^2 t), y dimensionless, expiries t in years, forwards in
// currency per unit of underlying.
//
// Maturity interpolation (between slices t_i < t < t_{i+1}, at fixed y): w is linear in t, so a
// surface whose slices satisfy w_{i+1}(y) >= w_i(y) stays free of calendar arbitrage. Before the
// first slice w(y, t) = (t / t_1) w_1(y) (the implied vol of the first slice at fixed y, w -> 0
// as t -> 0); after the last slice w(y, t) = (t / t_N) w_N(y) (the last slice's implied vol held
// at fixed y). Both keep dw/dt >= 0 at fixed y.
//
// Forward curve: ln F is piecewise linear in t through the nodes (0, spot) (when a spot is
// given) and (t_i, F_i), extended beyond the end nodes with the slope of the nearest segment
// (flat when there is a single node): a piecewise-constant carry rate r - q.
//
// Fit: quasi-explicit SVI (Zeliade Systems 2009, "Quasi-explicit calibration of Gatheral's SVI
// model", white paper): for fixed (m, sigma) the slice is linear in (a, d, c) = (a, rho b sigma,
// b sigma) with z = (y - m) / sigma, w = a + d z + c sqrt(z^2 + 1), fitted by least squares on
// the polytope 0 <= c <= 4 sigma, |d| <= c, |d| <= 4 sigma - c, 0 <= a <= max w (the Zeliade
// domain; c + |d| <= 4 sigma is Lee's moment bound b (1 + |rho|) <= 4). The outer problem in
// (m, sigma) is solved by Nelder-Mead from several starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace v28::surface {

// One raw SVI slice (a, b, rho, m, sigma).
struct Svi {
    double a = 0.0;
    double b = 0.0;
    double rho = 0.0;
    double m = 0.0;
    double sigma = 1.0;

    double w(double y) const;
    // w, dw/dy and d2w/dy2 at y.
    void w_derivs(double y, double& w0, double& w1, double& w2) const;
};

// Throws std::invalid_argument unless b >= 0, |rho| < 1, sigma > 0, all finite and
// a + b sigma sqrt(1 - rho^2) >= 0 (non-negative minimum variance). `index` names the slice.
void check_svi(const Svi& s, std::size_t index);

// Gatheral-Jacquier density factor g(y) (2014, eq. 2.1); the slice is free of butterfly
// arbitrage iff g >= 0 everywhere (and w -> 0 is not reached). Returns NaN where w <= 0.
double butterfly_g(const Svi& s, double y);

// One slice on a vector of y (validates the slice and y): w, dw/dy, d2w/dy2 and g(y).
void slice_eval(const Svi& s, std::span<const double> y, std::span<double> w,
                std::span<double> w1, std::span<double> w2, std::span<double> g);

class SviSurface {
public:
    // expiries strictly increasing > 0 (years); params row-major (n, 5) = (a, b, rho, m, sigma);
    // forwards > 0; spot > 0 adds the node (0, spot) to the forward curve, spot <= 0 means none.
    SviSurface(std::span<const double> expiries, std::span<const double> params,
               std::span<const double> forwards, double spot = 0.0);

    std::size_t size() const { return slices_.size(); }
    double forward(double t) const;
    double total_variance(double y, double t) const;
    // w, dw/dy, d2w/dy2 and dw/dt (fixed y; right derivative at the slice times) at (y, t).
    void derivs(double y, double t, double& w, double& wy, double& wyy, double& wt) const;
    // Local variance sigma_loc^2(t, y) by Gatheral's formula in total implied variance
    // (Gatheral 2006, "The Volatility Surface", eq. 1.10). NaN where the denominator is <= 0
    // (butterfly arbitrage) or the result is negative (calendar arbitrage).
    double local_variance(double y, double t) const;

    // Interpolation weights at t: w(y, t) = c_lo w_lo(y) + c_hi w_hi(y) and
    // dw/dt = d_lo w_lo(y) + d_hi w_hi(y) (right derivative at the slice times).
    struct Weights {
        std::size_t lo = 0, hi = 0;
        double c_lo = 0.0, c_hi = 0.0, d_lo = 0.0, d_hi = 0.0;
    };
    Weights weights(double t) const;
    double log_forward(double t) const;
    const Svi& slice(std::size_t i) const { return slices_[i]; }
    double expiry(std::size_t i) const { return expiries_[i]; }

private:
    std::vector<double> expiries_;
    std::vector<Svi> slices_;
    std::vector<double> fwd_t_;    // forward-curve nodes (with t = 0 when a spot is given)
    std::vector<double> fwd_log_;  // ln F at the nodes
};

// Vectorised total variance and implied vol: equal-length spans of (y, t) or (strike, t).
// t >= 0 (t = 0 gives w = 0 and implied vol NaN is avoided by the caller's t > 0 requirement).
void total_variance(const SviSurface& s, std::span<const double> y, std::span<const double> t,
                    std::span<double> out);
void implied_vol(const SviSurface& s, std::span<const double> strike, std::span<const double> t,
                 std::span<double> out);
void forward(const SviSurface& s, std::span<const double> t, std::span<double> out);

struct SviFit {
    Svi params;
    double rmse = 0.0;  // weighted root-mean-square error in total variance
    int evaluations = 0;
};

// Quasi-explicit fit of one slice to total variances w (years * vol^2) at log-moneyness y,
// with non-negative weights (empty span = all ones). Needs at least 5 points.
SviFit fit_slice(std::span<const double> y, std::span<const double> w,
                 std::span<const double> weights, int max_iter = 400);


}  // namespace v28::surface
