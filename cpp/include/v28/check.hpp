// Argument checks shared by every family: a bad argument throws std::invalid_argument with a
// message naming the argument, its value and (for arrays) its index, e.g.
// "vol must be >= 0, got -0.2 at index 3". pybind11 turns it into ValueError.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace v28 {

inline constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

[[noreturn]] inline void fail_arg(const char* name, const char* rule, double value,
                                  std::size_t index = no_index) {
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip form
    std::ostringstream msg;
    msg << name << " must be " << rule << ", got " << std::string_view(buf, res.ptr);
    if (index != no_index) msg << " at index " << index;
    throw std::invalid_argument(msg.str());
}

inline void require_finite(const char* name, double x, std::size_t i = no_index) {
    if (!std::isfinite(x)) fail_arg(name, "finite", x, i);
}
inline void require_positive(const char* name, double x, std::size_t i = no_index) {
    if (!(std::isfinite(x) && x > 0.0)) fail_arg(name, "> 0", x, i);
}
inline void require_nonnegative(const char* name, double x, std::size_t i = no_index) {
    if (!(std::isfinite(x) && x >= 0.0)) fail_arg(name, ">= 0", x, i);
}

inline void require_positive(const char* name, std::span<const double> xs) {
    for (std::size_t i = 0; i < xs.size(); ++i) require_positive(name, xs[i], i);
}
inline void require_nonnegative(const char* name, std::span<const double> xs) {
    for (std::size_t i = 0; i < xs.size(); ++i) require_nonnegative(name, xs[i], i);
}
inline void require_finite(const char* name, std::span<const double> xs) {
    for (std::size_t i = 0; i < xs.size(); ++i) require_finite(name, xs[i], i);
}

inline void require_same_size(const char* names, std::size_t n, std::size_t m) {
    if (n != m) {
        throw std::invalid_argument(std::string(names) + " must have the same length, got " +
                                    std::to_string(n) + " and " + std::to_string(m));
    }
}

}  // namespace v28
