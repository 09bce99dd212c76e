// Shared declarations of the _core bindings (no math here): one bind_* per file.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

namespace bp {
struct LayerHealth;
}

namespace bp::bindings {
void bind_value_types(pybind11::module_& m);    // value_types.cpp: DenseSpec, OptimizerConfig, EpochResult, ...
void bind_network(pybind11::module_& m);        // network_bindings.cpp: NetworkF32, NetworkF64
void bind_kernel_hooks(pybind11::module_& m);   // kernel_bindings.cpp: into _core._testing
void bind_network_hooks(pybind11::module_& m);  // testing_bindings.cpp: into _core._testing

// Per-layer diagnostics as {name: list per layer} (value_types.cpp).
pybind11::dict health_dict(const std::vector<LayerHealth>& health);
}  // namespace bp::bindings
