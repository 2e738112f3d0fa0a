// Shared helpers for the pybind11 bindings: numpy arrays in and out, nothing else.
//
// Every binding follows one pattern: check sizes and take raw pointers while the GIL is held,
// then run the C++ numerics inside a scoped GIL release. C++ std::invalid_argument and
// std::domain_error reach Python as ValueError (pybind11's built-in translation).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>

#include "v28/surface.hpp"

namespace v28py {

namespace py = pybind11;

// float64 C-contiguous arrays; forcecast converts ints and float32 on the way in.
using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;
// Boolean flags (call/put, american/european) travel as uint8 0/1.
using barray = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;
using iarray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

template <class T>
std::span<const T> span(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
    return {a.data(), static_cast<std::size_t>(a.size())};
}

template <class T>
std::span<T> mut_span(py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
    return {a.mutable_data(), static_cast<std::size_t>(a.size())};
}

// All arrays must have one common length; `names` is the message's list of argument names.
inline std::size_t same_size(std::initializer_list<const py::array*> arrays, const char* names) {
    std::size_t n = 0;
    bool first = true;
    for (const py::array* a : arrays) {
        const auto m = static_cast<std::size_t>(a->size());
        if (first) {
            n = m;
            first = false;
        } else if (m != n) {
            throw std::invalid_argument(std::string(names) +
                                        " must have the same length after broadcasting");
        }
    }
    return n;
}

// The surface's arrays as spans, taken while the GIL is held; the surface itself is built
// after the release (it validates and copies the slices: numerics only).
struct SurfaceArgs {
    std::span<const double> expiries, params, forwards;
    double spot;
    v28::surface::SviSurface make() const {
        return v28::surface::SviSurface(expiries, params, forwards, spot);
    }
};

inline SurfaceArgs surface_args(const darray& expiries, const darray& params, const darray& forwards,
                         double spot) {
    return {span(expiries), span(params), span(forwards), spot};
}

}  // namespace v28py
