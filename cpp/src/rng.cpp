#include "v28/rng.hpp"

#include <stdexcept>

#include "v28/mc_kernels.hpp"
#include "v28/vmath.hpp"

namespace v28::rng {

void philox4x32_10(const std::uint32_t counter[4], const std::uint32_t key[2],
                   std::uint32_t out[4]) {
    std::uint64_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    simd::philox4x32_10(c0, c1, c2, c3, key[0] | (std::uint64_t{key[1]} << 32));
    out[0] = static_cast<std::uint32_t>(c0);
    out[1] = static_cast<std::uint32_t>(c1);
    out[2] = static_cast<std::uint32_t>(c2);
    out[3] = static_cast<std::uint32_t>(c3);
}

void normals(std::uint64_t seed, std::uint32_t tag, std::uint64_t stream, std::uint64_t first,
             std::span<double> out) {
    if (first % 4 != 0) throw std::invalid_argument("first must be a multiple of 4");
    mc::kernels::table().normals(seed, tag, stream, first / 4, out.data(), out.size());
}

}  // namespace v28::rng
