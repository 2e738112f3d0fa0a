#include "v28/rng.hpp"

#include <stdexcept>

namespace v28::rng {

void philox4x32_10(const std::uint32_t counter[4], const std::uint32_t key[2],
                   std::uint32_t out[4]) {
    std::uint64_t c0[1] = {counter[0]}, c1[1] = {counter[1]}, c2[1] = {counter[2]},
                  c3[1] = {counter[3]};
    philox4x32_10<1>(c0, c1, c2, c3, key[0], key[1]);
    out[0] = static_cast<std::uint32_t>(c0[0]);
    out[1] = static_cast<std::uint32_t>(c1[0]);
    out[2] = static_cast<std::uint32_t>(c2[0]);
    out[3] = static_cast<std::uint32_t>(c3[0]);
}

void normals(std::uint64_t seed, std::uint32_t tag, std::uint64_t stream, std::uint64_t first,
             std::span<double> out) {
    if (first % 4 != 0) throw std::invalid_argument("first must be a multiple of 4");
    constexpr int W = 8;
    alignas(64) std::uint32_t c0[W], c2[W], c3[W];
    alignas(64) double z[4 * W];
    for (int l = 0; l < W; ++l) {
        c2[l] = static_cast<std::uint32_t>(stream);
        c3[l] = static_cast<std::uint32_t>(stream >> 32);
    }
    std::uint64_t block = first / 4;
    for (std::size_t j = 0; j < out.size(); j += 4 * W, block += W) {
        for (int l = 0; l < W; ++l) c0[l] = static_cast<std::uint32_t>(block + l);
        normals4<W>(c0, tag, c2, c3, seed, z);
        for (int l = 0; l < W; ++l) {
            for (int k = 0; k < 4; ++k) {
                const std::size_t idx = j + 4 * static_cast<std::size_t>(l) + k;
                if (idx < out.size()) out[idx] = z[k * W + l];
            }
        }
    }
}

}  // namespace v28::rng
