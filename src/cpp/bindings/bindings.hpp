// Shared declarations of the _core bindings (no math here).
#pragma once
#include <pybind11/pybind11.h>

namespace bp::bindings {
void bind_network(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);  // private GEMM test hooks
}
