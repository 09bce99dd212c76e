// The private extension module pybackprop._core. The public API is the Python
// package around it; nothing here is meant to be called by users directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "common/enums.hpp"
#include "common/errors.hpp"
#include "common/rng.hpp"
#include "common/threads.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/reductions.hpp"
#include "losses/losses.hpp"

#ifndef PYBACKPROP_VERSION
#define PYBACKPROP_VERSION "dev"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "pybackprop's C++ core (private: use the pybackprop package).";
    bp::bindings::bind_value_types(m);
    bp::bindings::bind_network(m);
    py::module_ testing = m.def_submodule("_testing", "Test hooks of the core (for pybackprop's tests only).");
    bp::bindings::bind_kernel_hooks(testing);
    bp::bindings::bind_network_hooks(testing);

    m.def("set_num_threads", &bp::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &bp::requested_threads);
    m.def("available_cpus", &bp::available_cpus);
    m.def("permutation", [](uint64_t seed, uint64_t epoch, std::size_t n) {
        bp::require(n < (std::size_t(1) << 32), "n", "fewer than 2^32 samples", std::to_string(n));
        py::array_t<int64_t> out(static_cast<py::ssize_t>(n));
        std::vector<std::size_t> order(n);
        for (std::size_t i = 0; i < n; ++i) order[i] = i;
        if (n > 1) bp::shuffle_order(order.data(), n, seed, epoch);
        std::copy(order.begin(), order.end(), out.mutable_data());
        return out;
    }, py::arg("seed"), py::arg("epoch"), py::arg("n"), "The shuffle order fit uses in that epoch.");

    // The lean validation of predict's fast path (model.py): no NaN or inf, in one
    // vectorised pass (without the GIL for a large array); the caller has checked
    // shape, dtype and layout.
    m.def("all_finite", [](const py::array& a) {
        if (!(a.flags() & py::array::c_style)) throw py::value_error("all_finite: a C-contiguous array");
        auto check = [&a](auto zero) {
            using T = decltype(zero);
            const T* x = static_cast<const T*>(a.data());
            const std::size_t n = std::size_t(a.size());
            if (n < (std::size_t(1) << 16)) return bp::all_finite(x, n);
            py::gil_scoped_release release;
            return bp::all_finite(x, n);
        };
        if (py::isinstance<py::array_t<float>>(a)) return check(0.0f);
        if (py::isinstance<py::array_t<double>>(a)) return check(0.0);
        throw py::type_error("all_finite: a float32 or float64 array");
    }, py::arg("a"), "Whether every value of a C-contiguous float32/float64 array is finite.");

    auto names = [](const auto& table) {
        py::list out;
        for (const char* s : table) out.append(s);
        return out;
    };
    m.attr("ACTIVATIONS") = names(bp::kActNames);
    m.attr("LOSSES") = names(bp::kLossNames);
    m.attr("INITIALIZERS") = names(bp::kInitNames);
    m.def("check_loss_activation", [](const std::string& loss, const std::string& activation) {
        bp::check_loss_activation(bp::loss_from_name(loss), bp::act_from_name(activation));
    }, py::arg("loss"), py::arg("activation"),
          "Raises ValueError when the loss needs another output activation (the rule of Network.set_loss).");
    m.def("loss_required_activation", [](const std::string& loss) -> std::optional<std::string> {
        const bp::Loss l = bp::loss_from_name(loss);
        if (!bp::loss_is_fused(l)) return std::nullopt;
        return std::string(bp::kActNames[std::size_t(bp::loss_required_activation(l))]);
    }, py::arg("loss"), "The output activation the loss requires, or None when any will do.");

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
