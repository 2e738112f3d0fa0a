// Counter-based random numbers (Philox4x32-10) exposed for tests and reproducible streams.
#include "common.hpp"
#include "v28/rng.hpp"

namespace v28py {

using namespace pybind11::literals;

void bind_rng(py::module_& m) {
    m.def(
        "rng_philox4x32_10",
        [](std::array<std::uint32_t, 4> counter, std::array<std::uint32_t, 2> key) {
            std::array<std::uint32_t, 4> out{};
            v28::rng::philox4x32_10(counter.data(), key.data(), out.data());
            return out;
        },
        "counter"_a, "key"_a, "One Philox4x32-10 block: four 32-bit words from a 128-bit counter "
        "and a 64-bit key (Salmon et al. 2011).");

    m.def(
        "rng_normals",
        [](std::uint64_t seed, std::uint32_t tag, std::uint64_t stream, std::uint64_t first,
           std::size_t n) {
            darray out(static_cast<py::ssize_t>(n));
            auto o = mut_span(out);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                v28::rng::normals(seed, tag, stream, first, o);
            }
            return out;
        },
        "seed"_a, "tag"_a, "stream"_a, "first"_a, "n"_a,
        "Standard normals first..first+n-1 of a Philox stream (Box-Muller); first a multiple of 4.");
}

}  // namespace v28py
