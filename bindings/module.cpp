// v28quant._core: the compiled numerics. Each family registers its functions in its own
// bind_<family>.cpp; this file only gathers them.
#include "common.hpp"

namespace v28py {
void bind_bsm(py::module_& m);
void bind_binomial(py::module_& m);
}  // namespace v28py

PYBIND11_MODULE(_core, m) {
    m.doc() = "v28quant compiled quant core (C++20, Eigen); see the typed faces in v28quant.*";
    v28py::bind_bsm(m);
    v28py::bind_binomial(m);
}
