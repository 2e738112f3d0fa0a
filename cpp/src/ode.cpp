#include "v28/ode.hpp"

#include <algorithm>
#include <cmath>

namespace v28::ode {

double step_factor(double err, double& fac_old, bool accepted) {
    // Hairer's dopri5.f (E. Hairer, S. P. Norsett, G. Wanner, "Solving ODEs I", II.4 and the
    // code): expo1 = 0.2 - 0.75 beta; accepted: h_new = h / clamp(err^expo1 / fac_old^beta /
    // safe, 1 / fac_max, 1 / fac_min); rejected: h_new = h / min(1 / fac_min, err^expo1 / safe).
    constexpr double beta = 0.04, safe = 0.9, fac_min = 0.2, fac_max = 10.0;
    constexpr double expo1 = 0.2 - 0.75 * beta;
    if (!accepted) return 1.0 / std::min(1.0 / fac_min, std::pow(err, expo1) / safe);
    const double e = std::max(err, 1e-16);
    double fac = std::pow(e, expo1) / std::pow(fac_old, beta) / safe;
    fac = std::clamp(fac, 1.0 / fac_max, 1.0 / fac_min);
    fac_old = std::max(err, 1e-4);
    return 1.0 / fac;
}

}  // namespace v28::ode
