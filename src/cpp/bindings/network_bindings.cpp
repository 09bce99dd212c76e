// Binds Network<float> and Network<double> as _core.NetworkF32 / NetworkF64.
// Arrays come in C-contiguous and of the network's dtype (the Python layer
// casts once); parameters go out as zero-copy NumPy views whose base is the
// network, so they keep it alive. Long calls release the GIL and take the
// network's mutex, so one network used from two threads is serialised.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <optional>

#include <mutex>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "common/errors.hpp"
#include "network/network.hpp"

namespace py = pybind11;

namespace bp::bindings {
namespace {

template <typename T>
using InArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

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

template <typename Net>
void check_layer(const Net& n, std::size_t l) {
    require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
}

OptKind opt_kind_from_name(const std::string& name) {
    if (name == "sgd") return OptKind::Sgd;
    if (name == "adam") return OptKind::Adam;
    if (name == "rmsprop") return OptKind::Rmsprop;
    if (name == "adagrad") return OptKind::Adagrad;
    throw ValueError("optimizer: expected one of sgd, adam, rmsprop, adagrad, got '" + name + "'");
}

// Per-layer diagnostics as {name: list per layer}.
py::dict health_dict(const std::vector<LayerHealth>& health) {
    std::vector<double> grad, weight, ratio, dead, saturated;
    std::vector<bool> nonfinite;
    for (const LayerHealth& h : health) {
        grad.push_back(h.grad_norm);
        weight.push_back(h.weight_norm);
        ratio.push_back(h.update_ratio);
        dead.push_back(h.dead_fraction);
        saturated.push_back(h.saturated_fraction);
        nonfinite.push_back(h.nonfinite);
    }
    py::dict d;
    d["grad_norm"] = grad;
    d["weight_norm"] = weight;
    d["update_ratio"] = ratio;
    d["dead_fraction"] = dead;
    d["saturated_fraction"] = saturated;
    d["nonfinite"] = nonfinite;
    return d;
}

// A (rows, cols) NumPy copy of row-major values (the last batch's views).
template <typename T>
py::array_t<T> copy_rows(const T* src, std::size_t rows, std::size_t cols) {
    py::array_t<T> out({py::ssize_t(rows), py::ssize_t(cols)});
    std::copy(src, src + rows * cols, out.mutable_data());
    return out;
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
        .def(py::init([](std::size_t input_dim, const std::vector<DenseSpec>& layers, uint64_t seed) {
                 return new Net(input_dim, layers, seed);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("seed"))
        .def_property_readonly("input_dim", &Net::input_dim)
        .def_property_readonly("output_dim", &Net::output_dim)
        .def_property_readonly("num_layers", &Net::num_layers)
        .def_property_readonly("arena_size", &Net::arena_size)
        .def_property_readonly("seed", &Net::seed)
        .def_readwrite("epoch_counter", &Net::epoch_counter)
        .def_readwrite("step_counter", &Net::step_counter)
        .def_readwrite("optimizer_step", &Net::optimizer_step)
        .def_readwrite("_per_sample_path", &Net::per_sample_path)
        .def_property_readonly("_per_sample_kind", &Net::sample_step_kind)
        .def_readonly("_fused_steps", &Net::fused_steps)
        .def_readonly("_kernel_updates", &Net::kernel_updates)
        .def_property_readonly("num_dropout", &Net::num_dropout)
        .def("init_layer",
             [](Net& n, std::size_t l, const std::string& init) {
                 check_layer(n, l);
                 n.init_layer(l, init_from_name(init));
             })
        // Zero-copy views into the arenas.
        .def("W", [](py::object self, std::size_t l) {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            return view<T>(self, n.W(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
        })
        .def("b", [](py::object self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            if (!n.has_bias(l)) return py::none();
            return view<T>(self, n.b(l), {py::ssize_t(n.fan_out(l))});
        })
        .def("dW", [](py::object self, std::size_t l) {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            return view<T>(self, n.dW(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
        })
        .def("db", [](py::object self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
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
        .def("state1", [](py::object self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, n.state1(), {py::ssize_t(n.arena_size())});
        })
        .def("state2", [](py::object self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, n.state2(), {py::ssize_t(n.arena_size())});
        })
        .def("dropped_input", [](Net& n, std::size_t l) -> py::object {
            // D = dropout(A_prev) of the last forward pass (None without dropout)
            check_layer(n, l);
            if (!n.has_dropout(l)) return py::none();
            return py::object(copy_rows<T>(n.dropped_input(l), n.last_batch(), n.fan_in(l)));
        })
        .def("mask", [](Net& n, std::size_t l) -> py::object {
            check_layer(n, l);
            if (!n.has_dropout(l)) return py::none();
            return py::object(copy_rows<T>(n.mask(l), n.last_batch(), n.fan_in(l)));
        })
        // Activations of the last forward pass (copies).
        .def("Z", [](Net& n, std::size_t l) {
            check_layer(n, l);
            return copy_rows<T>(n.Z(l), n.last_batch(), n.fan_out(l));
        })
        .def("A", [](Net& n, std::size_t l) {
            check_layer(n, l);
            return copy_rows<T>(n.A(l), n.last_batch(), n.fan_out(l));
        })
        // Training configuration.
        .def("set_loss", [](Net& n, const std::string& loss) { n.set_loss(loss_from_name(loss)); })
        .def("set_optimizer",
             [](Net& n, const std::string& kind, double lr, double weight_decay, double clip_norm,
                double momentum, bool nesterov, double beta1, double beta2, double eps, double alpha,
                double lr_decay, double initial_accumulator_value, bool decay_bias, bool decay_per_sample) {
                 OptimizerConfig c;
                 c.kind = opt_kind_from_name(kind);
                 c.lr = lr;
                 c.weight_decay = weight_decay;
                 c.clip_norm = clip_norm;
                 c.momentum = momentum;
                 c.nesterov = nesterov;
                 c.beta1 = beta1;
                 c.beta2 = beta2;
                 c.eps = eps;
                 c.alpha = alpha;
                 c.lr_decay = lr_decay;
                 c.initial_accumulator_value = initial_accumulator_value;
                 c.decay_bias = decay_bias;
                 c.decay_per_sample = decay_per_sample;
                 n.set_optimizer(c);
             },
             py::arg("kind"), py::arg("lr"), py::arg("weight_decay") = 0.0, py::arg("clip_norm") = 0.0,
             py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("beta1") = 0.9,
             py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("alpha") = 0.99,
             py::arg("lr_decay") = 0.0, py::arg("initial_accumulator_value") = 0.0,
             py::arg("decay_bias") = true, py::arg("decay_per_sample") = false)
        .def("reset_optimizer_state", &Net::reset_optimizer_state)
        .def("grad_norms", [](Net& n) { return locked(n, [&] { return n.grad_norms(); }); },
             "Per layer, the L2 norm of (dW, db) as they are now in grads() (what fit records).")
        .def("batch_health", [](Net& n) { return health_dict(n.batch_health()); },
             "Gradient-flow diagnostics of the last loss_and_gradients batch, per layer.")
        .def("get_weights", [](Net& n) {
            // Copies [W0, b0, W1, ...] taken under the lock (consistent while another thread trains).
            py::list out;
            std::vector<std::pair<T*, const T*>> copies;
            std::vector<std::size_t> sizes;
            for (std::size_t l = 0; l < n.num_layers(); ++l) {
                py::array_t<T> W({py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
                copies.emplace_back(W.mutable_data(), n.W(l));
                sizes.push_back(n.fan_in(l) * n.fan_out(l));
                out.append(W);
                if (n.has_bias(l)) {
                    py::array_t<T> b(py::ssize_t(n.fan_out(l)));
                    copies.emplace_back(b.mutable_data(), n.b(l));
                    sizes.push_back(n.fan_out(l));
                    out.append(b);
                }
            }
            locked(n, [&] {
                for (std::size_t i = 0; i < copies.size(); ++i)
                    std::memcpy(copies[i].first, copies[i].second, sizes[i] * sizeof(T));
            });
            return out;
        })
        .def("set_weights", [](Net& n, const std::vector<InArray<T>>& weights) {
            // All shapes are checked before anything is written, then written under the lock.
            std::vector<std::pair<T*, const T*>> copies;
            std::vector<std::size_t> sizes;
            std::size_t k = 0;
            auto take = [&](T* dest, std::size_t rows, std::size_t cols, bool matrix) {
                require(k < weights.size(), "weights", "one array per W and b", std::to_string(weights.size()));
                const InArray<T>& a = weights[k];
                const bool ok = matrix ? (a.ndim() == 2 && std::size_t(a.shape(0)) == rows &&
                                          std::size_t(a.shape(1)) == cols)
                                       : (a.ndim() == 1 && std::size_t(a.shape(0)) == cols);
                require(ok, "weights[" + std::to_string(k) + "]", "the shape of that parameter", "another");
                copies.emplace_back(dest, a.data());
                sizes.push_back(rows * cols);
                ++k;
            };
            for (std::size_t l = 0; l < n.num_layers(); ++l) {
                take(n.W(l), n.fan_in(l), n.fan_out(l), true);
                if (n.has_bias(l)) take(n.b(l), 1, n.fan_out(l), false);
            }
            require(k == weights.size(), "weights", std::to_string(k) + " arrays", std::to_string(weights.size()));
            locked(n, [&] {
                for (std::size_t i = 0; i < copies.size(); ++i)
                    std::memcpy(copies[i].first, copies[i].second, sizes[i] * sizeof(T));
            });
        })
        .def("set_recording", &Net::set_recording, py::arg("on"))
        .def("recorded", [](const Net& n, std::size_t l) {
            check_layer(n, l);
            const std::size_t B = n.recorded_batch();
            require(B > 0, "recorded", "a backward pass with set_recording(True) first", "none");
            auto copy = [&](typename Net::Recorded what, std::size_t cols) {
                return copy_rows<T>(n.recorded(l, what), B, cols);
            };
            py::dict d;
            d["dA"] = copy(Net::Recorded::dA, n.fan_out(l));
            d["fprime"] = copy(Net::Recorded::fprime, n.fan_out(l));
            d["dZ"] = copy(Net::Recorded::dZ, n.fan_out(l));
            d["dIn"] = copy(Net::Recorded::dIn, n.fan_in(l));
            return d;
        }, "Per-layer quantities of the last backward pass with recording on (see network.hpp).")
        .def("set_keep_prob", &Net::set_keep_prob, py::arg("layer"), py::arg("keep_prob"))
        .def("keep_prob", [](const Net& n, std::size_t l) {
            check_layer(n, l);
            require(n.has_dropout(l), "layer", "a dense layer preceded by dropout", std::to_string(l));
            return n.keep_prob(l);
        })
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
        .def("loss_and_gradients",
             [](Net& n, const InArray<T>& X, const InArray<T>& Y, bool training,
                const std::optional<std::vector<std::optional<InArray<T>>>>& masks, bool copy) {
                 const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
                 check_matrix<T>(Y, "y", n.output_dim(), long(rows));
                 std::vector<const T*> mask_ptrs(n.num_layers(), nullptr);
                 if (masks) {
                     require(masks->size() == n.num_layers(), "masks", "one entry per dense layer",
                             std::to_string(masks->size()));
                     for (std::size_t l = 0; l < n.num_layers(); ++l) {
                         if (!(*masks)[l]) continue;
                         require(n.has_dropout(l), "masks", "None for a layer without dropout",
                                 "an array for layer " + std::to_string(l));
                         check_matrix<T>(*(*masks)[l], "mask", n.fan_in(l), long(rows));
                         mask_ptrs[l] = (*masks)[l]->data();
                     }
                 }
                 // The gradients (and masks used) are copied out under the network's lock, so a
                 // call from another thread cannot overwrite them before the caller sees them.
                 py::list grads, used;
                 std::vector<std::pair<T*, const T*>> copies;  // (destination, source) after the call
                 std::vector<std::size_t> sizes;
                 auto add = [&](py::list& into, std::vector<py::ssize_t> shape, const T* src) {
                     py::array_t<T> a(shape);
                     std::size_t count = 1;
                     for (auto d : shape) count *= std::size_t(d);
                     copies.emplace_back(a.mutable_data(), src);
                     sizes.push_back(count);
                     into.append(a);
                 };
                 for (std::size_t l = 0; l < n.num_layers() && copy; ++l) {
                     py::list layer;
                     add(layer, {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))}, n.dW(l));
                     if (n.has_bias(l)) add(layer, {py::ssize_t(n.fan_out(l))}, n.db(l));
                     grads.append(layer);
                 }
                 const std::size_t first_mask = copies.size();
                 if (training && copy)
                     for (std::size_t l = 0; l < n.num_layers(); ++l)
                         if (n.has_dropout(l)) add(used, {py::ssize_t(rows), py::ssize_t(n.fan_in(l))}, nullptr);
                 const T *x = X.data(), *y = Y.data();
                 const double loss = locked(n, [&] {
                     const double value = n.loss_and_gradients(x, y, rows, training, masks ? &mask_ptrs : nullptr);
                     // the masks' sources exist only now (the activation buffers may have grown)
                     std::size_t k = first_mask;
                     for (std::size_t l = 0; l < n.num_layers() && training && copy; ++l)
                         if (n.has_dropout(l)) copies[k++].second = n.mask(l);
                     for (std::size_t i = 0; i < copies.size(); ++i)
                         std::memcpy(copies[i].first, copies[i].second, sizes[i] * sizeof(T));
                     return value;
                 });
                 return py::make_tuple(loss, grads, used);
             },
             py::arg("X"), py::arg("Y"), py::arg("training") = false, py::arg("masks") = py::none(),
             py::arg("copy") = true,
             "(loss, [[dW, db?] per layer], [mask per dropout] if training): copies taken under the lock; "
             "with copy=False the lists are empty and the gradients stay in grads() only.")
        .def("apply_gradients", [](Net& n, double lr, std::size_t rows) {
            require(std::isfinite(lr) && lr >= 0, "lr", "a finite number >= 0", std::to_string(lr));
            return locked(n, [&] { return n.apply_gradients(lr, rows); });
        }, py::arg("lr"), py::arg("rows") = 0,
        "One optimiser step on the gradients in grads() (e.g. after an all-reduce); rows is the batch's "
        "sample count (for decay_per_sample; 0: weight_decay as is); False when the update would leave a "
        "NaN or inf (parameters and optimiser state unchanged; with clip_norm, grads() already clipped).")
        .def("apply_gradients_with_ratio", [](Net& n, double lr, std::size_t rows) -> std::optional<std::vector<double>> {
            require(std::isfinite(lr) && lr >= 0, "lr", "a finite number >= 0", std::to_string(lr));
            std::vector<double> ratio;
            if (!locked(n, [&] { return n.apply_gradients(lr, rows, ratio); })) return std::nullopt;
            return ratio;
        }, py::arg("lr"), py::arg("rows") = 0,
        "apply_gradients, returning each layer's update-to-weight ratio of this step "
        "(|new - old| / |old| of its W and b, as fit records its last step's), or None when refused.")
        .def("train_step", [](Net& n, const InArray<T>& X, const InArray<T>& Y, std::optional<double> lr) {
            const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
            check_matrix<T>(Y, "y", n.output_dim(), long(rows));
            const T *x = X.data(), *y = Y.data();
            const double rate = lr ? *lr : n.optimizer().lr;
            require(std::isfinite(rate) && rate >= 0, "lr", "a finite number >= 0", std::to_string(rate));
            bool applied = false;
            const double loss = locked(n, [&] { return n.train_step(x, y, rows, rate, &applied); });
            return py::make_tuple(loss, applied);
        }, py::arg("X"), py::arg("Y"), py::arg("lr") = py::none(),
        "One update; returns (loss, applied): a NaN/inf loss or gradient is not applied.")
        .def("fit_epoch",
             [](Net& n, const InArray<T>& X, const InArray<T>& Y, std::size_t batch_size, bool shuffle,
                const std::optional<InArray<double>>& lr, const std::optional<InArray<double>>& keep) {
                 const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
                 check_matrix<T>(Y, "y", n.output_dim(), long(rows));
                 require(batch_size >= 1, "batch_size", "a positive integer", std::to_string(batch_size));
                 const std::size_t bs = std::min(batch_size, rows), steps = (rows + bs - 1) / bs;
                 StepSchedule schedule;
                 if (lr) {
                     require(lr->ndim() == 1 && std::size_t(lr->shape(0)) == steps, "lr schedule",
                             std::to_string(steps) + " values (one per step)", std::to_string(lr->size()));
                     schedule.lr = lr->data();
                 }
                 if (keep) {
                     require(keep->ndim() == 2 && std::size_t(keep->shape(0)) == steps &&
                                 std::size_t(keep->shape(1)) == n.num_dropout(),
                             "keep_prob schedule", "shape (" + std::to_string(steps) + ", " +
                             std::to_string(n.num_dropout()) + ")", std::to_string(keep->size()) + " values");
                     schedule.keep = keep->data();
                 }
                 // Ctrl-C: polled between steps; the Python signal handler runs under the GIL and,
                 // if it raises, the error stays set and is thrown when the epoch returns.
                 bool signalled = false;
                 schedule.should_stop = [&signalled] {
                     py::gil_scoped_acquire gil;
                     signalled = PyErr_CheckSignals() != 0;
                     return signalled;
                 };
                 const T *x = X.data(), *y = Y.data();
                 EpochStats s = locked(n, [&] { return n.fit_epoch(x, y, rows, batch_size, shuffle, schedule); });
                 if (signalled) throw py::error_already_set();
                 py::dict health = health_dict(s.health);
                 py::array_t<double> lr_used(py::ssize_t(s.lr.size()), s.lr.data());
                 py::array_t<double> keep_used({py::ssize_t(s.steps), py::ssize_t(n.num_dropout())}, s.keep.data());
                 py::object diverged = py::none();
                 if (s.diverged) diverged = py::make_tuple(s.steps, s.diverged_loss);
                 return py::make_tuple(s.loss, s.grad_norm, s.steps, lr_used, keep_used, health, diverged);
             },
             py::arg("X"), py::arg("Y"), py::arg("batch_size"), py::arg("shuffle"),
             py::arg("lr") = py::none(), py::arg("keep_prob") = py::none());
}

}  // namespace

void bind_network(py::module_& m) {
    py::class_<DenseSpec>(m, "DenseSpec")
        .def(py::init([](std::size_t units, const std::string& activation, double alpha, double sigma,
                         bool use_bias, std::size_t index, double dropout_keep_prob, bool dropout_inverted,
                         bool dropout_per_batch, std::size_t dropout_index) {
                 DenseSpec s;
                 s.units = units;
                 s.act.kind = act_from_name(activation);
                 s.act.alpha = alpha;
                 s.act.sigma = sigma;
                 s.use_bias = use_bias;
                 s.index = index;
                 s.dropout.enabled = dropout_keep_prob > 0;
                 s.dropout.keep_prob = dropout_keep_prob > 0 ? dropout_keep_prob : 1.0;
                 s.dropout.inverted = dropout_inverted;
                 s.dropout.per_batch = dropout_per_batch;
                 s.dropout.index = dropout_index;
                 return s;
             }),
             py::arg("units"), py::arg("activation"), py::arg("alpha") = 0.0, py::arg("sigma") = 0.0,
             py::arg("use_bias") = true, py::arg("index") = 0, py::arg("dropout_keep_prob") = 0.0,
             py::arg("dropout_inverted") = true, py::arg("dropout_per_batch") = false,
             py::arg("dropout_index") = 0,
             "A dense layer for the core; dropout_keep_prob > 0 puts dropout on its input.");
    bind_one<float>(m, "NetworkF32");
    bind_one<double>(m, "NetworkF64");
}

}  // namespace bp::bindings
