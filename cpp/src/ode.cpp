#include "v28/ode.hpp"

#include <algorithm>
#include <cmath>

namespace v28::ode {

double step_factor(double err, double& fac_old, bool accepted) {
    // Hairer's dopri5: h_new = h / clamp(err^(0.2 - 0.75 beta) / fac_old^beta / safe, ...).
    constexpr double beta = 0.04, safe = 0.9, fac_min = 0.2, fac_max = 10.0;
    if (!accepted) return std::max(1.0 / fac_max, std::min(1.0, safe * std::pow(err, -0.2)));
    const double e = std::max(err, 1e-16);
    double fac = std::pow(e, 0.2 - 0.75 * beta) / std::pow(fac_old, beta) / safe;
    fac = std::clamp(fac, 1.0 / fac_max, 1.0 / fac_min);
    fac_old = std::max(err, 1e-4);
    return 1.0 / fac;
}

}  // namespace v28::ode
