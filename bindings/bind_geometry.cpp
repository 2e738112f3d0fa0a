// Riemannian geometry of 2-D metrics: Fisher-Rao of the normal family and height fields.
// Metrics are small opaque objects built once (the height field's spline is precomputed);
// every other call is a flat function over arrays of points.
#include "common.hpp"
#include "v28/manifold.hpp"

namespace v28py {

using namespace pybind11::literals;
namespace mf = v28::manifold;

namespace {

template <class M>
void bind_metric_functions(py::module_& m) {
    m.def(
        "geometry_metric",
        [](const M& metric, const darray& points) {
            darray out(points.size() * 2);
            auto o = mut_span(out);  // pointers taken while the GIL is held
            const auto pts = span(points);
            {
                py::gil_scoped_release release;  // pure numerics below: no Python objects
                mf::metric_tensor(metric, pts, o);
            }
            return out;
        },
        "metric"_a, "points"_a, "Metric tensor g_ij at flat (n, 2) points -> flat (n, 2, 2).");
    m.def(
        "geometry_christoffel",
        [](const M& metric, const darray& points) {
            darray out(points.size() * 4);
            auto o = mut_span(out);
            const auto pts = span(points);
            {
                py::gil_scoped_release release;
                mf::christoffel(metric, pts, o);
            }
            return out;
        },
        "metric"_a, "points"_a,
        "Christoffel symbols at flat (n, 2) points -> flat (n, 2, 2, 2), [k, i, j] = Gamma^k_ij.");
    m.def(
        "geometry_gaussian_curvature",
        [](const M& metric, const darray& points) {
            darray out(points.size() / 2);
            auto o = mut_span(out);
            const auto pts = span(points);
            {
                py::gil_scoped_release release;
                mf::gaussian_curvature(metric, pts, o);
            }
            return out;
        },
        "metric"_a, "points"_a, "Gaussian curvature at flat (n, 2) points.");
    m.def(
        "geometry_geodesic",
        [](const M& metric, double x0, double x1, double v0, double v1, double t_end,
           std::size_t n_points, double rtol, double atol) {
            const auto n = static_cast<py::ssize_t>(n_points);
            // x and v shaped (n, 2) here, so the Python face need not reshape them.
            darray t(n), x({n, py::ssize_t{2}}), v({n, py::ssize_t{2}});
            auto pt = mut_span(t), px = mut_span(x), pv = mut_span(v);
            v28::ode::Stats st;
            {
                py::gil_scoped_release release;
                st = mf::geodesic(metric, {x0, x1}, {v0, v1}, t_end, n_points, rtol, atol, pt, px, pv);
            }
            return py::make_tuple(t, x, v, st.steps, st.rejected, st.evaluations);
        },
        "metric"_a, "x0"_a, "x1"_a, "v0"_a, "v1"_a, "t_end"_a, "n_points"_a, "rtol"_a, "atol"_a,
        "Geodesic by Dormand-Prince 5(4) with dense output: (t, x (n, 2), v (n, 2), "
        "accepted steps, rejected steps, evaluations).");
    m.def(
        "geometry_distance",
        [](const M& metric, double a0, double a1, double b0, double b1, double rtol) {
            mf::ShootingResult r;
            {
                py::gil_scoped_release release;
                r = mf::geodesic_distance(metric, {a0, a1}, {b0, b1}, rtol);
            }
            return py::make_tuple(r.distance, r.v0[0], r.v0[1], r.residual, r.iterations);
        },
        "metric"_a, "a0"_a, "a1"_a, "b0"_a, "b1"_a, "rtol"_a,
        "Geodesic distance by shooting: (distance, v0_0, v0_1, endpoint residual, Newton iterations).");
}

}  // namespace

void bind_geometry(py::module_& m) {
    py::class_<mf::FisherNormal>(m, "FisherNormalCore",
                                 "Fisher-Rao metric of N(mu, sigma^2): (dmu^2 + 2 dsigma^2) / sigma^2.")
        .def(py::init<>());
    py::class_<mf::HeightField>(m, "HeightFieldCore",
                                "Induced metric of z = f(x, y), f a not-a-knot bicubic spline.")
        .def(py::init([](const darray& x, const darray& y, const darray& z) {
                 const auto xs = span(x), ys = span(y), zs = span(z);
                 py::gil_scoped_release release;  // the spline's LU solves: numerics only
                 return mf::HeightField(xs, ys, zs);
             }),
             "x"_a, "y"_a, "z"_a)
        .def(
            "derivatives",
            [](const mf::HeightField& h, const darray& points) {
                darray out(points.size() * 3);
                auto o = mut_span(out);
                const auto pts = span(points);
                {
                    py::gil_scoped_release release;
                    h.derivatives(pts, o);
                }
                return out;
            },
            "points"_a, "Spline f, f_x, f_y, f_xx, f_xy, f_yy at flat (n, 2) points -> flat (n, 6).");
    bind_metric_functions<mf::FisherNormal>(m);
    bind_metric_functions<mf::HeightField>(m);
}

}  // namespace v28py
