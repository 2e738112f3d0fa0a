// v28quant._core: the compiled numerics. Each family registers its functions in its own
// bind_<family>.cpp; this file only gathers them.
#include "common.hpp"

namespace v28py {
void bind_bsm(py::module_& m);
void bind_surface(py::module_& m);
void bind_dupire(py::module_& m);
void bind_geometry(py::module_& m);
void bind_rng(py::module_& m);
void bind_mc(py::module_& m);
void bind_heston(py::module_& m);
void bind_merton(py::module_& m);
void bind_garch(py::module_& m);
void bind_binomial(py::module_& m);
}  // namespace v28py

PYBIND11_MODULE(_core, m) {
    m.doc() = "v28quant compiled quant core (C++20, Eigen); see the typed faces in v28quant.*";
    v28py::bind_bsm(m);
    v28py::bind_surface(m);
    v28py::bind_dupire(m);
    v28py::bind_geometry(m);
    v28py::bind_rng(m);
    v28py::bind_mc(m);
    v28py::bind_heston(m);
    v28py::bind_merton(m);
    v28py::bind_garch(m);
    v28py::bind_binomial(m);
}
