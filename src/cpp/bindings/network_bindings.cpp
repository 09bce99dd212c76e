// Binds Network<float> and Network<double> as _core.NetworkF32 / NetworkF64 (no
// math here). Arrays come in C-contiguous and of the network's dtype (the Python
// layer casts once); parameters go out as zero-copy NumPy views whose base is the
// network, so they keep it alive. Long calls release the GIL and take the
// network's mutex, so one network used from two threads is serialised; whatever
// a call copies out is copied under that lock.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <type_traits>
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

// Checks X (n, input_dim) and Y (n, output_dim); returns n.
template <typename Net, typename T>
std::size_t check_xy(const Net& n, const InArray<T>& X, const InArray<T>& Y) {
    const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
    check_matrix<T>(Y, "y", n.output_dim(), long(rows));
    return rows;
}

// Per-sample weights of `rows` samples: a 1-D array (None: unweighted); null or its data.
// (Their values, finite and >= 0 with one > 0, are checked at the Python boundary.)
template <typename T>
const T* weights_of(const std::optional<InArray<T>>& w, std::size_t rows) {
    if (!w) return nullptr;
    require(w->ndim() == 1 && std::size_t(w->shape(0)) == rows, "sample_weight",
            "a 1-D array of " + std::to_string(rows) + " values (one per row of X)",
            std::to_string(w->ndim()) + "-D of " + std::to_string(w->size()) + " values");
    return w->data();
}

// An output matrix (rows, cols) of T the core writes into, taken as it comes (see out_doubles).
template <typename T>
T* out_matrix(const py::object& obj, const char* name, std::size_t rows, std::size_t cols) {
    const std::string expected = "a writeable C-contiguous array of the network's dtype, shape (" +
                                 std::to_string(rows) + ", " + std::to_string(cols) + ")";
    if (!py::isinstance<py::array_t<T>>(obj))
        throw py::type_error(std::string(name) + ": expected " + expected + ", got another type or dtype");
    auto a = py::reinterpret_borrow<py::array>(obj);
    require(a.ndim() == 2 && std::size_t(a.shape(0)) == rows && std::size_t(a.shape(1)) == cols, name, expected,
            "an array of another shape");
    require((a.flags() & py::array::c_style) && a.writeable(), name, expected, "a non-contiguous or read-only array");
    return static_cast<T*>(a.mutable_data());
}

template <typename Net>
void check_layer(const Net& n, std::size_t l) {
    require(l < n.num_layers(), "layer", "an index below " + std::to_string(n.num_layers()), std::to_string(l));
}

void check_lr(double lr) { require(std::isfinite(lr) && lr >= 0, "lr", "a finite number >= 0", std::to_string(lr)); }

// An output array the core writes into: taken as it comes, never converted (a
// converted copy would take the writes and be dropped). TypeError for anything
// but a float64 ndarray, ValueError for the wrong shape, layout or a read-only one.
double* out_doubles(const py::object& obj, const char* name, std::size_t count) {
    const std::string expected = "a writeable C-contiguous float64 array of " + std::to_string(count) + " values";
    auto fail_type = [&](const std::string& got) {
        throw py::type_error(std::string(name) + ": expected " + expected + ", got " + got);
    };
    if (!py::isinstance<py::array>(obj)) fail_type("a " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<double>>(obj))
        fail_type("an array of dtype " + py::str(a.dtype()).cast<std::string>());
    require(a.ndim() == 1 && std::size_t(a.size()) == count, name, expected,
            "a " + std::to_string(a.ndim()) + "-D array of " + std::to_string(a.size()) + " values");
    require(a.flags() & py::array::c_style, name, expected, "a non-contiguous array");
    require(a.writeable(), name, expected, "a read-only array");
    return static_cast<double*>(a.mutable_data());
}

// The (rows, cols) output array predict writes into, taken as it comes (never
// converted: a converted copy would take the writes). TypeError for anything but an
// ndarray of T; ValueError for the wrong shape, a non-C-contiguous or read-only
// array, or one whose memory overlaps X's (the chunks of X still to be read).
template <typename T>
T* out_matrix(const py::object& obj, const char* name, std::size_t rows, std::size_t cols, const py::array& X) {
    const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
    const std::string expected = "a writeable C-contiguous " + dtype + " array of shape (" + std::to_string(rows) +
                                 ", " + std::to_string(cols) + ") (the model's dtype; rows of X, outputs)";
    auto fail_type = [&](const std::string& got) {
        throw py::type_error(std::string(name) + ": expected " + expected + ", got " + got);
    };
    if (!py::isinstance<py::array>(obj)) fail_type("a " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<T>>(obj)) fail_type("an array of dtype " + py::str(a.dtype()).cast<std::string>());
    std::string shape = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(a.shape(d));
    shape += a.ndim() == 1 ? ",)" : ")";
    require(a.ndim() == 2 && std::size_t(a.shape(0)) == rows && std::size_t(a.shape(1)) == cols, name, expected,
            "an array of shape " + shape);
    require(a.flags() & py::array::c_style, name, expected, "a non-contiguous array");
    require(a.writeable(), name, expected, "a read-only array");
    const char* o = static_cast<const char*>(a.data());
    const char* x = static_cast<const char*>(X.data());
    const bool overlap = o < x + X.nbytes() && x < o + a.nbytes();
    require(!overlap, name, expected + " not sharing memory with X", "an array overlapping X");
    return static_cast<T*>(a.mutable_data());
}

// Runs f without the GIL, holding the network's lock: exclusively (anything that
// writes the network), or shared (predict and evaluate, which only read it).
template <typename T, typename F>
auto locked(Network<T>& net, F&& f) {
    py::gil_scoped_release release;
    std::unique_lock<std::shared_mutex> guard(net.mutex());
    return f();
}
template <typename T, typename F>
auto shared_locked(Network<T>& net, F&& f) {
    py::gil_scoped_release release;
    std::shared_lock<std::shared_mutex> guard(net.mutex());
    return f();
}

// Copies into NumPy arrays made beforehand (with the GIL), done later under the lock.
template <typename T>
struct Copies {
    struct Copy {
        T* dst;
        const T* src;
        std::size_t count;
    };
    std::vector<Copy> list;
    // A new array of `shape` to be filled from src; src may be set later (list.back()).
    py::array_t<T> add(std::vector<py::ssize_t> shape, const T* src) {
        py::array_t<T> a(shape);
        list.push_back({a.mutable_data(), src, std::size_t(a.size())});
        return a;
    }
    void run() const {
        for (const Copy& c : list) std::memcpy(c.dst, c.src, c.count * sizeof(T));
    }
};

// A (rows, cols) NumPy copy of row-major values (the last batch's views).
template <typename T>
py::array_t<T> copy_rows(const T* src, std::size_t rows, std::size_t cols) {
    py::array_t<T> out({py::ssize_t(rows), py::ssize_t(cols)});
    std::copy(src, src + rows * cols, out.mutable_data());
    return out;
}

// A view of `shape` at `ptr`, kept alive by `owner`.
template <typename T>
py::array_t<T> view(const py::object& owner, T* ptr, std::vector<py::ssize_t> shape) {
    return py::array_t<T>(shape, ptr, owner);
}

// Zero-copy views: W, dW (fan_in, fan_out); b, db (fan_out,) or None; the arenas (arena_size,).
template <typename T>
void bind_views(py::class_<Network<T>>& c) {
    using Net = Network<T>;
    auto matrix = [](T* (Net::*of)(std::size_t)) {
        return [of](const py::object& self, std::size_t l) {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            return view<T>(self, (n.*of)(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
        };
    };
    auto bias = [](T* (Net::*of)(std::size_t)) {
        return [of](const py::object& self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            if (!n.has_bias(l)) return py::none();
            return view<T>(self, (n.*of)(l), {py::ssize_t(n.fan_out(l))});
        };
    };
    auto arena = [](T* (Net::*of)()) {
        return [of](const py::object& self) {
            Net& n = self.cast<Net&>();
            return view<T>(self, (n.*of)(), {py::ssize_t(n.arena_size())});
        };
    };
    c.def("W", matrix(&Net::W)).def("dW", matrix(&Net::dW));
    c.def("b", bias(&Net::b)).def("db", bias(&Net::db));
    c.def("params", arena(&Net::params)).def("grads", arena(&Net::grads));
    c.def("state1", arena(&Net::state1)).def("state2", arena(&Net::state2)).def("state3", arena(&Net::state3));
    // The input normalisation of dense layer l: γ, β, dγ, dβ (fan_in,) or None without affine;
    // BatchNorm's running mean and variance (fan_in,) or None; the running arena (running_size,).
    auto per_input = [](T* (Net::*of)(std::size_t), bool batch_only) {
        return [of, batch_only](const py::object& self, std::size_t l) -> py::object {
            Net& n = self.cast<Net&>();
            check_layer(n, l);
            const bool has = batch_only ? n.norm(l).kind == NormKind::Batch : n.has_affine(l);
            if (!has) return py::none();
            return view<T>(self, (n.*of)(l), {py::ssize_t(n.fan_in(l))});
        };
    };
    c.def("gamma", per_input(&Net::gamma, false)).def("beta", per_input(&Net::beta, false));
    c.def("dgamma", per_input(&Net::dgamma, false)).def("dbeta", per_input(&Net::dbeta, false));
    c.def("running_mean", per_input(&Net::running_mean, true)).def("running_var", per_input(&Net::running_var, true));
    c.def("discard_running_update", &Net::discard_running_update,
          "BatchNorm's running estimates back to before the last training forward (a refused step).");
    c.def("running", [](const py::object& self) {
        Net& n = self.cast<Net&>();
        return view<T>(self, n.running(), {py::ssize_t(n.running_size())});
    });
}

// Copies of the last forward pass through the training buffers (a training step,
// loss_and_gradients or forward_views; predict and evaluate have their own): Z, A
// (batch, fan_out); mask, dropped_input (batch, fan_in) or None where the layer has no
// input dropout. Before any such pass, 0 rows.
template <typename T>
void bind_last_pass(py::class_<Network<T>>& c) {
    using Net = Network<T>;
    auto output = [](const T* (Net::*of)(std::size_t) const) {
        return [of](const Net& n, std::size_t l) {
            check_layer(n, l);
            if (n.last_batch() == 0) return py::array_t<T>(std::vector<py::ssize_t>{0, py::ssize_t(n.fan_out(l))});
            return copy_rows<T>((n.*of)(l), n.last_batch(), n.fan_out(l));
        };
    };
    auto dropout = [](const T* (Net::*of)(std::size_t) const) {
        return [of](const Net& n, std::size_t l) -> py::object {
            check_layer(n, l);
            if (!n.has_dropout(l)) return py::none();
            if (n.last_batch() == 0) return py::array_t<T>(std::vector<py::ssize_t>{0, py::ssize_t(n.fan_in(l))});
            return copy_rows<T>((n.*of)(l), n.last_batch(), n.fan_in(l));
        };
    };
    c.def("Z", output(&Net::Z)).def("A", output(&Net::A));
    c.def("mask", dropout(&Net::mask)).def("dropped_input", dropout(&Net::dropped_input));
    c.def(
        "norm_values",
        [](const Net& n, std::size_t l) -> py::object {
            check_layer(n, l);
            if (!n.has_norm(l) || n.last_batch() == 0) return py::none();
            const std::size_t B = n.last_batch(), F = n.fan_in(l), S = n.norm_stat_len(l, B);
            py::dict d;
            d["output"] = copy_rows<T>(n.norm_output(l), B, F);
            d["xhat"] = copy_rows<T>(n.norm_xhat(l), B, F);
            auto stat = [&](typename Net::NormStat what) {
                py::array_t<T> out(py::ssize_t(S), n.norm_stat(l, what));
                return out;
            };
            d["mean"] = stat(Net::NormStat::mean);
            d["var"] = stat(Net::NormStat::var);
            d["inv_std"] = stat(Net::NormStat::inv_std);
            return d;
        },
        "Layer l's input normalisation in the last forward pass, or None: output N and xhat "
        "(batch, fan_in); mean, var (biased) and inv_std = 1/sqrt(var + eps): (fan_in,) for BatchNorm "
        "(the batch's in training, the running ones at inference), (batch,) for LayerNorm.");
}

// [W0, b0, W1, ...]: copies, or writes of all shapes checked first; either under the lock.
template <typename T>
void bind_weights(py::class_<Network<T>>& c) {
    using Net = Network<T>;
    c.def("get_weights", [](Net& n) {
        Copies<T> copies;
        py::list out;
        for (std::size_t l = 0; l < n.num_layers(); ++l) {
            const py::ssize_t F = py::ssize_t(n.fan_in(l));
            if (n.has_affine(l)) {
                out.append(copies.add({F}, n.gamma(l)));
                out.append(copies.add({F}, n.beta(l)));
            }
            if (n.norm(l).kind == NormKind::Batch) {
                out.append(copies.add({F}, n.running_mean(l)));
                out.append(copies.add({F}, n.running_var(l)));
            }
            out.append(copies.add({py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))}, n.W(l)));
            if (n.has_bias(l)) out.append(copies.add({py::ssize_t(n.fan_out(l))}, n.b(l)));
        }
        locked(n, [&] { copies.run(); });
        return out;
    });
    c.def("set_weights", [](Net& n, const std::vector<InArray<T>>& weights) {
        Copies<T> copies;
        auto take = [&](T* dest, std::vector<py::ssize_t> shape) {
            const std::size_t k = copies.list.size();
            require(k < weights.size(), "weights", "one array per W and b", std::to_string(weights.size()));
            const InArray<T>& a = weights[k];
            bool ok = a.ndim() == py::ssize_t(shape.size());
            for (std::size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape(d) == shape[d];
            require(ok, "weights[" + std::to_string(k) + "]", "the shape of that parameter", "another");
            copies.list.push_back({dest, a.data(), std::size_t(a.size())});
        };
        for (std::size_t l = 0; l < n.num_layers(); ++l) {
            const py::ssize_t F = py::ssize_t(n.fan_in(l));
            if (n.has_affine(l)) {
                take(n.gamma(l), {F});
                take(n.beta(l), {F});
            }
            if (n.norm(l).kind == NormKind::Batch) {
                take(n.running_mean(l), {F});
                take(n.running_var(l), {F});
            }
            take(n.W(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))});
            if (n.has_bias(l)) take(n.b(l), {py::ssize_t(n.fan_out(l))});
        }
        require(copies.list.size() == weights.size(), "weights", std::to_string(copies.list.size()) + " arrays",
                std::to_string(weights.size()));
        locked(n, [&] { copies.run(); });
    });
}

template <typename T>
void bind_training(py::class_<Network<T>>& c) {
    using Net = Network<T>;
    c.def("loss_and_gradients",
          [](Net& n, const InArray<T>& X, const InArray<T>& Y, bool training,
             const std::optional<std::vector<std::optional<InArray<T>>>>& masks, bool copy,
             const std::optional<InArray<T>>& sample_weight) {
              const std::size_t rows = check_xy(n, X, Y);
              const T* w = weights_of<T>(sample_weight, rows);
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
              Copies<T> copies;
              py::list grads, used;
              for (std::size_t l = 0; l < n.num_layers() && copy; ++l) {
                  py::list layer;
                  layer.append(copies.add({py::ssize_t(n.fan_in(l)), py::ssize_t(n.fan_out(l))}, n.dW(l)));
                  if (n.has_bias(l)) layer.append(copies.add({py::ssize_t(n.fan_out(l))}, n.db(l)));
                  grads.append(layer);
              }
              const std::size_t first_mask = copies.list.size();
              for (std::size_t l = 0; l < n.num_layers() && training && copy; ++l)
                  if (n.has_dropout(l)) used.append(copies.add({py::ssize_t(rows), py::ssize_t(n.fan_in(l))}, nullptr));
              const T *x = X.data(), *y = Y.data();
              const double loss = locked(n, [&] {
                  const double value = n.loss_and_gradients(x, y, rows, training, masks ? &mask_ptrs : nullptr, w);
                  // the masks' sources exist only now (the activation buffers may have grown)
                  std::size_t k = first_mask;
                  for (std::size_t l = 0; l < n.num_layers() && training && copy; ++l)
                      if (n.has_dropout(l)) copies.list[k++].src = n.mask(l);
                  copies.run();
                  return value;
              });
              return py::make_tuple(loss, grads, used);
          },
          py::arg("X"), py::arg("Y"), py::arg("training") = false, py::arg("masks") = py::none(),
          py::arg("copy") = true, py::arg("sample_weight") = py::none(),
          "(loss, [[dW, db?] per layer], [mask per dropout] if training): copies taken under the lock; "
          "with copy=False the lists are empty and the gradients stay in grads() only. sample_weight: "
          "one weight per row, the loss sum(w * l) / rows (Keras's convention).");
    c.def("dropout_masks",
          [](Net& n, const InArray<int64_t>& rows) {
              require(rows.ndim() == 1, "rows", "a 1-D array", std::to_string(rows.ndim()) + "-D");
              const std::size_t R = std::size_t(rows.shape(0));
              const int64_t* r = rows.data();
              for (std::size_t i = 0; i < R; ++i)
                  require(r[i] >= 0 && r[i] < (int64_t(1) << 32), "rows", "positions in [0, 2^32)",
                          std::to_string(r[i]));
              py::list out;
              std::vector<std::pair<std::size_t, T*>> fill;  // (layer, destination)
              for (std::size_t l = 0; l < n.num_layers(); ++l) {
                  if (!n.has_dropout(l)) {
                      out.append(py::none());
                      continue;
                  }
                  py::array_t<T> m({py::ssize_t(R), py::ssize_t(n.fan_in(l))});
                  fill.emplace_back(l, m.mutable_data());
                  out.append(m);
              }
              locked(n, [&] {
                  for (const auto& [l, dst] : fill) n.dropout_mask_rows(l, r, R, dst);
              });
              return out;
          },
          py::arg("rows"),
          "Per dense layer, rows `rows` (positions in the coming step's global batch) of the dropout mask "
          "the forward pass would draw at step_counter and the current keep probabilities, bitwise; "
          "None where the layer has no input dropout.");
    c.def("apply_gradients",
          [](Net& n, double lr, double rows, const py::object& ratio, std::optional<double> momentum) {
              check_lr(lr);
              require(std::isfinite(rows) && rows >= 0, "rows", "a finite count >= 0 (the batch's samples, or "
                      "its weights' sum)", std::to_string(rows));
              double* out = ratio.is_none() ? nullptr : out_doubles(ratio, "update_ratio", n.num_layers());
              return locked(n, [&] { return n.apply_gradients(lr, rows, out, momentum); });
          },
          py::arg("lr"), py::arg("rows"), py::arg("update_ratio") = py::none(), py::arg("momentum") = py::none(),
          "One optimiser step on the gradients in grads() (e.g. after an all-reduce); rows is the batch's "
          "sample count, or its weights' sum with weight_norm 'weight_sum' (decay_per_sample divides weight_decay by "
          "it); False when the update would leave a "
          "NaN or inf (parameters and optimiser state unchanged; with clip_norm, grads() already clipped). "
          "update_ratio, if given, receives each layer's |new - old| / |old| of its W and b. momentum, if "
          "given, is this step's momentum (SGD, RMSprop) or beta1 (Adam, AdamW) in place of the configured one.");
    c.def("train_step",
          [](Net& n, const InArray<T>& X, const InArray<T>& Y, std::optional<double> lr,
             const std::optional<InArray<T>>& sample_weight, std::optional<double> momentum) {
              const std::size_t rows = check_xy(n, X, Y);
              const T* w = weights_of<T>(sample_weight, rows);
              const T *x = X.data(), *y = Y.data();
              const double rate = lr ? *lr : n.optimizer().lr;
              check_lr(rate);
              bool applied = false;
              const double loss = locked(n, [&] { return n.train_step(x, y, rows, rate, &applied, w, momentum); });
              return py::make_tuple(loss, applied);
          },
          py::arg("X"), py::arg("Y"), py::arg("lr") = py::none(), py::arg("sample_weight") = py::none(),
          py::arg("momentum") = py::none(),
          "One update (the loss weighted by sample_weight when given; momentum, if given, this step's momentum "
          "or Adam's beta1); returns (loss, applied): a NaN/inf loss or gradient is not applied.");
    c.def("fit_epoch",
          [](Net& n, const InArray<T>& X, const InArray<T>& Y, std::size_t batch_size, bool shuffle,
             const std::optional<InArray<double>>& lr, const std::optional<InArray<double>>& keep,
             const std::optional<InArray<T>>& sample_weight, const py::object& predictions,
             const std::optional<InArray<double>>& momentum) {
              const std::size_t rows = check_xy(n, X, Y);
              const T* w = weights_of<T>(sample_weight, rows);
              T* pred = predictions.is_none() ? nullptr : out_matrix<T>(predictions, "predictions", rows, n.output_dim());
              StepSchedule schedule;  // shapes and values checked by fit_epoch
              if (lr) {
                  schedule.lr = lr->data();
                  schedule.lr_steps = std::size_t(lr->size());  // one value per step, in order
              }
              if (momentum) {
                  schedule.momentum = momentum->data();
                  schedule.momentum_steps = std::size_t(momentum->size());
              }
              if (keep) {
                  schedule.keep = keep->data();
                  schedule.keep_steps = keep->ndim() == 2 ? std::size_t(keep->shape(0)) : 0;
                  schedule.keep_cols = keep->ndim() == 2 ? std::size_t(keep->shape(1)) : 0;
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
              EpochStats s = locked(n, [&] { return n.fit_epoch(x, y, rows, batch_size, shuffle, schedule, w, pred); });
              if (signalled) throw py::error_already_set();
              return s;
          },
          py::arg("X"), py::arg("Y"), py::arg("batch_size"), py::arg("shuffle"), py::arg("lr") = py::none(),
          py::arg("keep_prob") = py::none(), py::arg("sample_weight") = py::none(),
          py::arg("predictions") = py::none(), py::arg("momentum") = py::none(),
          "One epoch of mini-batch training; lr (steps,), keep_prob (steps, num_dropout) and momentum (steps,: "
          "SGD's or RMSprop's momentum, Adam's or AdamW's beta1) are per-step schedules (None: the configured "
          "values); sample_weight (n,) weights each row's loss (a batch's "
          "loss is sum(w * l) / rows); predictions, a writeable (n, output_dim) array, receives each row's "
          "training-mode output before its step's update. Returns an EpochResult.");
}

template <typename T>
void bind_one(py::module_& m, const char* name) {
    using Net = Network<T>;
    py::class_<Net> c(m, name);
    c.def(py::init([](std::size_t input_dim, const std::vector<DenseSpec>& layers, uint64_t seed) {
              return new Net(input_dim, layers, seed);
          }),
          py::arg("input_dim"), py::arg("layers"), py::arg("seed"))
        .def_property_readonly("input_dim", &Net::input_dim)
        .def_property_readonly("output_dim", &Net::output_dim)
        .def_property_readonly("num_layers", &Net::num_layers)
        .def_property_readonly("num_dropout", &Net::num_dropout)
        .def_property_readonly("arena_size", &Net::arena_size)
        .def_property_readonly("seed", &Net::seed)
        .def_readwrite("epoch_counter", &Net::epoch_counter)
        .def_readwrite("step_counter", &Net::step_counter)
        .def_readwrite("optimizer_step", &Net::optimizer_step)
        .def_property(
            "weight_norm", [](const Net& n) { return std::string(kWeightNormNames[std::size_t(n.weight_norm)]); },
            [](Net& n, const std::string& name) {
                const WeightNorm norm = weight_norm_from_name(name);
                locked(n, [&] { n.weight_norm = norm; });
            },
            "What a weighted batch's loss is divided by: 'rows' (Keras's sum(w * l) / rows, the default) or "
            "'weight_sum' (scikit-learn's sum(w * l) / sum(w); weights summing to zero: loss 0, no update).")
        .def_property_readonly("running_size", &Net::running_size)
        .def_property_readonly("has_batchnorm", &Net::has_batchnorm)
        .def(
            "stat_sync_idle", [](Net& n) { locked(n, [&] { n.stat_sync_idle(); }); },
            "Distributed BatchNorm on a process without rows in the step's batch: the step's gather and sum "
            "calls with zero moments and sums, and the running estimates updated from the combined statistics.")
        .def(
            "set_stat_sync",
            [](Net& n, const py::object& gather, const py::object& sum, std::size_t rows, std::size_t ranks) {
                if (gather.is_none()) {
                    n.stat_sync = {};
                    return;
                }
                require(rows >= 1, "rows", "the global batch's rows (>= 1)", std::to_string(rows));
                require(ranks >= 1, "ranks", "the number of processes (>= 1)", std::to_string(ranks));
                require(!sum.is_none(), "sum", "a function (with gather)", "None");
                // Called by the passes without the GIL: take it, give the functions views of the
                // core's buffers (valid during the call only) to fill or reduce in place.
                n.stat_sync.gather = [gather, ranks](const T* local, std::size_t count, T* all) {
                    py::gil_scoped_acquire gil;
                    py::capsule keep(all, [](void*) {});
                    py::array_t<T> in({py::ssize_t(count)}, local, keep);  // a read-only view
                    py::detail::array_proxy(in.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
                    gather(in, py::array_t<T>({py::ssize_t(ranks), py::ssize_t(count)}, all, keep));
                };
                n.stat_sync.sum = [sum](T* v, std::size_t count) {
                    py::gil_scoped_acquire gil;
                    py::capsule keep(v, [](void*) {});
                    sum(py::array_t<T>({py::ssize_t(count)}, v, keep));
                };
                n.stat_sync.rows = rows;
                n.stat_sync.ranks = ranks;
            },
            py::arg("gather"), py::arg("sum") = py::none(), py::arg("rows") = 0, py::arg("ranks") = 1,
            "Distributed BatchNorm: gather(local, all) writes every process's local (count,) into the rows of "
            "all (ranks, count), in rank order (an all-gather); sum(v) sums v over the processes in place; rows: "
            "the global batch's, ranks: the processes. None: the statistics are this process's batch's (the "
            "default).")
        .def("init_layer",
             [](Net& n, std::size_t l, const std::string& init) {
                 check_layer(n, l);
                 n.init_layer(l, init_from_name(init));
             })
        // Training configuration.
        .def("set_loss", [](Net& n, const std::string& loss) { n.set_loss(loss_from_name(loss)); })
        .def("set_optimizer", &Net::set_optimizer, py::arg("config"),
             "Validates and takes the OptimizerConfig; keeps the optimiser state.")
        .def("reset_optimizer_state", &Net::reset_optimizer_state)
        .def("set_keep_prob", &Net::set_keep_prob, py::arg("layer"), py::arg("keep_prob"))
        .def("keep_prob",
             [](const Net& n, std::size_t l) {
                 check_layer(n, l);
                 require(n.has_dropout(l), "layer", "a dense layer preceded by dropout", std::to_string(l));
                 return n.keep_prob(l);
             })
        // Diagnostics and the explainer's recording.
        .def("grad_norms", [](Net& n) { return locked(n, [&] { return n.grad_norms(); }); },
             "Per layer, the L2 norm of (dW, db) as they are now in grads() (what fit records).")
        .def("batch_health", [](Net& n) { return health_dict(n.batch_health()); },
             "Gradient-flow diagnostics of the last loss_and_gradients batch, per layer.")
        .def("set_recording", &Net::set_recording, py::arg("on"))
        .def("recorded",
             [](const Net& n, std::size_t l) {
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
                 if (n.has_norm(l)) {
                     d["dNorm"] = copy(Net::Recorded::dNorm, n.fan_in(l));
                     d["dNormIn"] = copy(Net::Recorded::dNormIn, n.fan_in(l));
                 }
                 return d;
             },
             "Per-layer quantities of the last backward pass with recording on (see network.hpp).")
        // Inference, without the GIL.
        .def("predict",
             [](Net& n, const InArray<T>& X, const py::object& out) -> py::object {
                 const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
                 const T* x = X.data();
                 if (out.is_none()) {
                     py::array_t<T> fresh({py::ssize_t(rows), py::ssize_t(n.output_dim())});
                     T* o = fresh.mutable_data();
                     shared_locked(n, [&] { n.predict(o, x, rows); });
                     return std::move(fresh);
                 }
                 T* o = out_matrix<T>(out, "out", rows, n.output_dim(), X);
                 shared_locked(n, [&] { n.predict(o, x, rows); });
                 return out;
             },
             py::arg("X"), py::arg("out") = py::none(),
             "Outputs of X in inference mode: a new array, or written into `out` (returned). Several "
             "threads may predict at once.")
        .def("forward_views",
             [](Net& n, const InArray<T>& X) {
                 const std::size_t rows = check_matrix<T>(X, "X", n.input_dim());
                 const T* x = X.data();
                 locked(n, [&] { n.forward_views(x, rows); });
             },
             py::arg("X"),
             "The inference forward pass of X through the network's own buffers, whose views (Z, A) "
             "then show it; predict never writes them.")
        .def("evaluate",
             [](Net& n, const InArray<T>& X, const InArray<T>& Y, const std::optional<InArray<T>>& sample_weight) {
                 const std::size_t rows = check_xy(n, X, Y);
                 const T* w = weights_of<T>(sample_weight, rows);
                 const T *x = X.data(), *y = Y.data();
                 return shared_locked(n, [&] { return n.evaluate(x, y, rows, w); });
             },
             py::arg("X"), py::arg("Y"), py::arg("sample_weight") = py::none(),
             "The mean loss in inference mode; with sample_weight (n,), sum(w * l) / n.");
    bind_views(c);
    bind_last_pass(c);
    bind_weights(c);
    bind_training(c);
}

}  // namespace

void bind_network(py::module_& m) {
    bind_one<float>(m, "NetworkF32");
    bind_one<double>(m, "NetworkF64");
}

}  // namespace bp::bindings
