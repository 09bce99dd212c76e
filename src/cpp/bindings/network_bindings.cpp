// Binds Network<float> and Network<double> as _core.NetworkF32 / NetworkF64.
// Arrays come in C-contiguous and of the network's dtype (the Python layer
// casts once); parameters go out as zero-copy NumPy views whose base is the
// network, so they keep it alive. Long calls release the GIL and take the
// network's mutex, so one network used from two threads is serialised.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/bindings.hpp"
#include "common/errors.hpp"
#include "network/network.hpp"

namespace py = pybind11;

namespace bp::bindings {
namespace {

template <typename T>
using InArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// (units, activation, alpha, sigma, use_bias)
using LayerTuple = std::tuple<std::size_t, std::string, double, double, bool>;

// Checks a 2-D array of `cols` columns (and `rows` rows unless rows < 0).
template <typename T>
std::size_t check_matrix(const InArray<T>& a, const char* name, std::size_t cols, long rows = -1) {
    require(a.ndim() == 2, name, "a 2-D array", std::to_string(a.ndim()) + "-D");
    require(std::size_t(a.shape(1)) == cols, name, std::to_string(cols) + " columns",
            std::to_string(a.shape(1)));
    if (rows >= 0)
        require(a.shape(0) == rows, name, std::to_string(rows) + " rows (as X)", std::to_string(a.shape(0)));
    require(a.shape(0) >= 1, name, "at least one row", "0");
    return std::size_t(a.shape(0));
}

// Runs f without the GIL, holding the network's lock.
template <typename T, typename F>
auto locked(Network<T>& net, F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> guard(net.mutex());
    return f();
}

// A view of `count` elements at `ptr` shaped `shape`, kept alive by `owner`.
template <typename T>
py::array_t<T> view(const py::object& owner, T* ptr, std::vector<py::ssize_t> shape) {
    return py::array_t<T>(shape, ptr, owner);
}

template <typename T>
void bind_one(py::module_& m, const char* name) {
    using Net = Network<T>;
    py::class_<Net>(m, name)
        .def(py::init([](std::size_t input_dim, const std::vector<LayerTuple>& layers, uint64_t seed) {
                 std::vector<DenseSpec> specs;
                 for (const auto& [units, act, alpha, sigma, use_bias] : layers) {
                     DenseSpec s;
                     s.units = units;
                     s.act.kind = act_from_name(act);
                     s.act.alpha = alpha;
                     s.act.sigma = sigma;
                     s.use_bias = use_bias;
                     specs.push_back(s);
                 }
                 return new Net(input_dim, std::move(specs), seed);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("seed"))
        .def_property_readonly("input_dim", &Net::input_dim)
        .def_property_readonly("output_dim", &Net::output_dim)
        .def_property_readonly("num_layers", &Net::num_layers)
        .def_property_readonly("arena_size", &Net::arena_size)
        .def_property_readonly("seed", &Net::seed)
        .def_readwrite("epoch_counter", &Net::epoch_counter)
        .def_readwrite("step_counter", &Net::step_counter)
        .def("init_layer",
             [](Net& n, std::size_t l, const std::string& init) {
                 require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()),
                         std::to_string(l));
                 n.init_layer(l, init_from_name(init));
             })
        // Zero-copy views into the arenas.
        .def("W", [](py::object self, std::size_t l) {
            Net& n = self.cast<Net&>();
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            return view<T>(self, n.W(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
        })
        .def("b", [](py::object self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            if (!n.has_bias(l)) return py::none();
            return view<T>(self, n.b(l), {py::ssize_t(n.fan_out(l))});
        })
        .def("dW", [](py::object self, std::size_t l) {
            Net& n = self.cast<Net&>();
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            return view<T>(self, n.dW(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
        })
        .def("db", [](py::object self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            if (!n.has_bias(l)) return py::none();
            return view<T>(self, n.db(l), {py::ssize_t(n.fan_out(l))});
        })
        .def("params", [](py::object self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, n.params(), {py::ssize_t(n.arena_size())});
        })
        .def("grads", [](py::object self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, n.grads(), {py::ssize_t(n.arena_size())});
        })
        .def("momentum", [](py::object self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, n.momentum(), {py::ssize_t(n.arena_size())});
        })
        // Activations of the last forward pass (copies).
        .def("Z", [](Net& n, std::size_t l) {
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            py::array_t<T> out({py::ssize_t(n.last_batch()), py::ssize_t(n.fan_out(l))});
            std::copy(n.Z(l), n.Z(l) + n.last_batch() * n.fan_out(l), out.mutable_data());
            return out;
        })
        .def("A", [](Net& n, std::size_t l) {
            require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
            py::array_t<T> out({py::ssize_t(n.last_batch()), py::ssize_t(n.fan_out(l))});
            std::copy(n.A(l), n.A(l) + n.last_batch() * n.fan_out(l), out.mutable_data());
            return out;
        })
        // Training configuration.
        .def("set_loss", [](Net& n, const std::string& loss) { n.set_loss(loss_from_name(loss)); })
        .def("set_sgd",
             [](Net& n, double lr, double momentum, bool nesterov, double weight_decay) {
                 n.set_sgd(SgdConfig{lr, momentum, nesterov, weight_decay});
             },
             py::arg("lr"), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
             py::arg("weight_decay") = 0.0)
        .def("reset_optimizer_state", &Net::reset_optimizer_state)
        // Computation, without the GIL.
        .def("predict", [](Net& n, const InArray<T>& X) {
            const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
            py::array_t<T> out({py::ssize_t(rows), py::ssize_t(n.output_dim())});
            T* o = out.mutable_data();
            const T* x = X.data();
            locked(n, [&] { n.predict(o, x, rows); });
            return out;
        })
        .def("evaluate", [](Net& n, const InArray<T>& X, const InArray<T>& Y) {
            const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
            check_matrix<T>(Y, "y", n.output_dim(), long(rows));
            const T *x = X.data(), *y = Y.data();
            return locked(n, [&] { return n.evaluate(x, y, rows); });
        })
        .def("loss_and_gradients", [](Net& n, const InArray<T>& X, const InArray<T>& Y, bool training) {
            const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
            check_matrix<T>(Y, "y", n.output_dim(), long(rows));
            const T *x = X.data(), *y = Y.data();
            return locked(n, [&] { return n.loss_and_gradients(x, y, rows, training); });
        }, py::arg("X"), py::arg("Y"), py::arg("training") = false)
        .def("train_step", [](Net& n, const InArray<T>& X, const InArray<T>& Y) {
            const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
            check_matrix<T>(Y, "y", n.output_dim(), long(rows));
            const T *x = X.data(), *y = Y.data();
            return locked(n, [&] { return n.train_step(x, y, rows); });
        })
        .def("fit_epoch",
             [](Net& n, const InArray<T>& X, const InArray<T>& Y, std::size_t batch_size, bool shuffle) {
                 const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
                 check_matrix<T>(Y, "y", n.output_dim(), long(rows));
                 const T *x = X.data(), *y = Y.data();
                 EpochStats s = locked(n, [&] { return n.fit_epoch(x, y, rows, batch_size, shuffle); });
                 return py::make_tuple(s.loss, s.grad_norm, s.steps);
             },
             py::arg("X"), py::arg("Y"), py::arg("batch_size"), py::arg("shuffle"));
}

}  // namespace

void bind_network(py::module_& m) {
    bind_one<float>(m, "NetworkF32");
    bind_one<double>(m, "NetworkF64");
}

}  // namespace bp::bindings
