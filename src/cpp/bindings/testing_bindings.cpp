// Test hooks of the network in _core._testing (no math here): switch fit_epoch's
// fused per-sample step off to compare with it, ask which step it takes, and count
// the steps it and the tiny-network kernel made; count the pooled inference workspaces.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/bindings.hpp"
#include "common/threads.hpp"
#include "network/network.hpp"

namespace py = pybind11;

namespace bp::bindings {
namespace {

template <typename T>
void bind_hooks(py::module_& m) {
    using Net = Network<T>;
    m.def("per_sample_path", [](const Net& n) { return n.per_sample_path; }, py::arg("net"),
          "Whether fit_epoch may take the fused per-sample step (on by default).");
    m.def("set_per_sample_path", [](Net& n, bool on) { n.per_sample_path = on; }, py::arg("net"), py::arg("on"),
          "Off: fit_epoch takes the general path only (to compare the fused step with it).");
    m.def("per_sample_kind", [](const Net& n) { return n.sample_step_kind(); }, py::arg("net"),
          "The step fit_epoch takes with batch size 1: 'kernel', 'portable' or 'general'.");
    m.def("fused_steps", [](const Net& n) { return n.fused_steps; }, py::arg("net"),
          "The steps the fused per-sample step has made.");
    m.def("kernel_updates", [](const Net& n) { return n.kernel_updates; }, py::arg("net"),
          "Of those, the ones whose update the tiny-network kernel made itself.");
    m.def("inference_workspaces", [](Net& n) { return n.inference_workspaces(); }, py::arg("net"),
          "The idle inference workspaces in the network's pool (one per call running at once, at most).");
}

}  // namespace

void bind_network_hooks(py::module_& m) {
    bind_hooks<float>(m);
    bind_hooks<double>(m);
    m.def("region_threads", &num_threads,
          "The threads a parallel region takes: get_num_threads(), at most the CPUs this process may run on.");
}

}  // namespace bp::bindings
