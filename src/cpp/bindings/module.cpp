// The private extension module pybackprop._core. The public API is the Python
// package around it; nothing here is meant to be called by users directly.
#include <pybind11/pybind11.h>

#include "bindings/bindings.hpp"
#include "common/enums.hpp"
#include "common/threads.hpp"
#include "kernels/dispatch.hpp"

#ifndef PYBACKPROP_VERSION
#define PYBACKPROP_VERSION "dev"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "pybackprop's C++ core (private: use the pybackprop package).";
    bp::bindings::bind_network(m);
    bp::bindings::bind_kernels(m);

    m.def("set_num_threads", &bp::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &bp::num_threads);
    m.def("available_cpus", &bp::available_cpus);

    auto names = [](const auto& table) {
        py::list out;
        for (const char* s : table) out.append(s);
        return out;
    };
    m.attr("ACTIVATIONS") = names(bp::kActNames);
    m.attr("LOSSES") = names(bp::kLossNames);
    m.attr("INITIALIZERS") = names(bp::kInitNames);

    m.def("build_info", [] {
        py::dict info;
        info["version"] = PYBACKPROP_VERSION;
#if defined(__clang__)
        info["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
        info["compiler"] = "gcc " __VERSION__;
#else
        info["compiler"] = "unknown";
#endif
#if defined(_OPENMP)
        info["openmp"] = true;
#else
        info["openmp"] = false;
#endif
        info["isa"] = bp::active_kernel_table().name;
        info["cpus"] = bp::available_cpus();
        return info;
    });
}
