// The core's value types as Python types (no math here): DropoutSpec, NormSpec and DenseSpec
// (a model's layers for the core), OptimizerConfig (set_optimizer's one argument)
// and EpochResult (what fit_epoch returns). Each has a keyword constructor with the
// C++ defaults, one attribute per field and a __repr__; optional settings are None,
// never a sentinel number.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "common/enums.hpp"
#include "common/errors.hpp"
#include "network/network.hpp"

namespace py = pybind11;

namespace bp::bindings {

py::dict health_dict(const std::vector<LayerHealth>& health) {
    py::dict d;
    auto column = [&](const char* key, auto member) {
        py::list values;
        for (const LayerHealth& h : health) values.append(h.*member);
        d[key] = values;
    };
    column("grad_norm", &LayerHealth::grad_norm);
    column("weight_norm", &LayerHealth::weight_norm);
    column("update_ratio", &LayerHealth::update_ratio);
    column("dead_fraction", &LayerHealth::dead_fraction);
    column("saturated_fraction", &LayerHealth::saturated_fraction);
    column("nonfinite", &LayerHealth::nonfinite);
    return d;
}

namespace {

constexpr std::array<const char*, 5> kOptNames = {"sgd", "adam", "rmsprop", "adagrad", "adamw"};  // OptKind's order

// "Name(a=1, b='x')" from the object's own attributes, in the order given.
std::string repr_of(const py::object& self, const char* name, const std::vector<const char*>& fields) {
    std::string out = std::string(name) + "(";
    for (std::size_t i = 0; i < fields.size(); ++i)
        out += (i ? ", " : "") + std::string(fields[i]) + "=" + std::string(py::repr(self.attr(fields[i])));
    return out + ")";
}

// A keyword-only constructor: a default-constructed C, then each keyword set through
// its attribute (so the attribute's checks apply), unknown keywords refused.
template <typename C>
C from_keywords(const py::kwargs& kw, const char* name, const std::vector<const char*>& fields) {
    py::object obj = py::cast(C{});
    for (const auto& [key, value] : kw) {
        const std::string k = py::str(key);
        bool known = false;
        for (const char* f : fields) known |= k == f;
        if (!known) throw py::type_error(std::string(name) + "() got an unexpected keyword argument '" + k + "'");
        py::setattr(obj, key, value);
    }
    return obj.cast<C>();
}

// A value type bound with fields and a repr; `bind(cls)` adds its attributes.
template <typename C, typename Bind>
void bind_value_type(py::module_& m, const char* name, const char* doc, std::vector<const char*> fields,
                     Bind&& bind) {
    py::class_<C> cls(m, name, doc);
    cls.def(py::init([name, fields](const py::kwargs& kw) { return from_keywords<C>(kw, name, fields); }));
    bind(cls);
    cls.def("__repr__", [name, fields](const py::object& self) { return repr_of(self, name, fields); });
}

void bind_dropout_spec(py::module_& m) {
    bind_value_type<DropoutSpec>(
        m, "DropoutSpec", "Dropout in front of a dense layer (keep_prob: the probability of keeping a unit).",
        {"keep_prob", "inverted", "per_batch", "index"}, [](py::class_<DropoutSpec>& c) {
            c.def_readwrite("keep_prob", &DropoutSpec::keep_prob)
                .def_readwrite("inverted", &DropoutSpec::inverted)
                .def_readwrite("per_batch", &DropoutSpec::per_batch)
                .def_readwrite("index", &DropoutSpec::index);
        });
}

constexpr std::array<const char*, 3> kNormNames = {"none", "batch", "layer"};  // NormKind's order

void bind_norm_spec(py::module_& m) {
    bind_value_type<NormSpec>(
        m, "NormSpec",
        "A normalisation of a dense layer's input, before its dropout: kind 'batch' (BatchNorm1d) or 'layer' "
        "(LayerNorm); affine: learnable gamma, beta.",
        {"kind", "momentum", "eps", "affine", "index"}, [](py::class_<NormSpec>& c) {
            c.def_property(
                 "kind", [](const NormSpec& s) { return std::string(kNormNames[std::size_t(s.kind)]); },
                 [](NormSpec& s, const std::string& name) {
                     s.kind = enum_from_name<NormKind>(kNormNames, name, "norm kind");
                 })
                .def_readwrite("momentum", &NormSpec::momentum)
                .def_readwrite("eps", &NormSpec::eps)
                .def_readwrite("affine", &NormSpec::affine)
                .def_readwrite("index", &NormSpec::index);
        });
}

void bind_dense_spec(py::module_& m) {
    bind_value_type<DenseSpec>(
        m, "DenseSpec", "A dense layer for the core; dropout: the DropoutSpec on its input, or None.",
        {"units", "activation", "alpha", "sigma", "use_bias", "index", "dropout", "norm"},
        [](py::class_<DenseSpec>& c) {
            c.def_readwrite("units", &DenseSpec::units)
                .def_property(
                    "activation", [](const DenseSpec& s) { return std::string(kActNames[std::size_t(s.act.kind)]); },
                    [](DenseSpec& s, const std::string& name) { s.act.kind = act_from_name(name); })
                .def_property(
                    "alpha", [](const DenseSpec& s) { return s.act.alpha; },
                    [](DenseSpec& s, double v) { s.act.alpha = v; })
                .def_property(
                    "sigma", [](const DenseSpec& s) { return s.act.sigma; },
                    [](DenseSpec& s, double v) { s.act.sigma = v; })
                .def_readwrite("use_bias", &DenseSpec::use_bias)
                .def_readwrite("index", &DenseSpec::index)
                .def_property(
                    "dropout",
                    [](const DenseSpec& s) { return s.dropout.enabled ? std::optional(s.dropout) : std::nullopt; },
                    [](DenseSpec& s, const std::optional<DropoutSpec>& d) {
                        s.dropout = d.value_or(DropoutSpec{});
                        s.dropout.enabled = d.has_value();
                    })
                .def_property(
                    "norm",
                    [](const DenseSpec& s) {
                        return s.norm.kind != NormKind::None ? std::optional(s.norm) : std::nullopt;
                    },
                    [](DenseSpec& s, const std::optional<NormSpec>& n) { s.norm = n.value_or(NormSpec{}); });
        });
}

void bind_optimizer_config(py::module_& m) {
    using C = OptimizerConfig;
    bind_value_type<C>(
        m, "OptimizerConfig",
        "The optimiser of set_optimizer: kind ('sgd', 'adam', 'rmsprop', 'adagrad', 'adamw') and its settings "
        "(clip_norm None: no clipping). The fields a rule does not use are ignored.",
        {"kind", "lr", "weight_decay", "decay_bias", "decay_per_sample", "clip_norm", "momentum", "nesterov",
         "beta1", "beta2", "amsgrad", "eps", "alpha", "lr_decay", "initial_accumulator_value"},
        [](py::class_<C>& c) {
            c.def_property(
                 "kind", [](const C& o) { return std::string(kOptNames[std::size_t(o.kind)]); },
                 [](C& o, const std::string& name) { o.kind = enum_from_name<OptKind>(kOptNames, name, "optimizer"); })
                .def_readwrite("lr", &C::lr)
                .def_readwrite("weight_decay", &C::weight_decay)
                .def_readwrite("decay_bias", &C::decay_bias)
                .def_readwrite("decay_per_sample", &C::decay_per_sample)
                .def_property(
                    "clip_norm", [](const C& o) { return o.clip_norm > 0 ? std::optional(o.clip_norm) : std::nullopt; },
                    [](C& o, std::optional<double> v) {
                        require(!v || *v > 0, "clip_norm", "a number > 0 or None", v ? std::to_string(*v) : "");
                        o.clip_norm = v.value_or(0.0);
                    })
                .def_readwrite("momentum", &C::momentum)
                .def_readwrite("nesterov", &C::nesterov)
                .def_readwrite("beta1", &C::beta1)
                .def_readwrite("beta2", &C::beta2)
                .def_readwrite("amsgrad", &C::amsgrad)
                .def_readwrite("eps", &C::eps)
                .def_readwrite("alpha", &C::alpha)
                .def_readwrite("lr_decay", &C::lr_decay)
                .def_readwrite("initial_accumulator_value", &C::initial_accumulator_value);
        });
}

// A NumPy copy of `values` shaped `shape`.
py::array_t<double> array_of(const std::vector<double>& values, std::vector<py::ssize_t> shape) {
    py::array_t<double> out(shape);
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

void bind_epoch_result(py::module_& m) {
    py::class_<EpochStats>(m, "EpochResult", "What one fit_epoch did (read-only).")
        .def_readonly("loss", &EpochStats::loss, "The sample-weighted mean of the batch losses.")
        .def_readonly("grad_norm", &EpochStats::grad_norm, "Per layer, the mean over steps of ‖(dW, db)‖₂.")
        .def_readonly("steps", &EpochStats::steps,
                      "The steps made (with weight_norm 'weight_sum', a batch of weight zero counts without an update).")
        .def_readonly("penalty", &EpochStats::penalty,
                      "With decay_per_sample and weight_decay > 0: each step's 0.5 * wd * |theta|^2 (before its "
                      "update), averaged over the epoch as the loss is; 0 otherwise.")
        .def_property_readonly(
            "lr", [](const EpochStats& s) { return array_of(s.lr, {py::ssize_t(s.steps)}); },
            "The learning rate of every step made, shape (steps,).")
        .def_property_readonly(
            "keep_prob",
            [](const EpochStats& s) { return array_of(s.keep, {py::ssize_t(s.steps), py::ssize_t(s.n_dropout)}); },
            "The keep probability of every step made and dropout, shape (steps, n_dropout).")
        .def_property_readonly(
            "health", [](const EpochStats& s) { return health_dict(s.health); },
            "Per-layer diagnostics {name: list per layer}: grad_norm, weight_norm, update_ratio, "
            "dead_fraction, saturated_fraction, nonfinite.")
        .def_readonly("diverged", &EpochStats::diverged,
                      "A step met a NaN/inf loss or gradient, or an overflowing update, and was not applied.")
        .def_readonly("diverged_step", &EpochStats::diverged_step, "That step's index in the epoch (== steps).")
        .def_readonly("diverged_loss", &EpochStats::diverged_loss, "That step's loss.")
        .def("__repr__", [](const py::object& self) {
            return repr_of(self, "EpochResult", {"loss", "steps", "diverged", "diverged_step", "diverged_loss"});
        });
}

}  // namespace

void bind_value_types(py::module_& m) {
    bind_dropout_spec(m);
    bind_norm_spec(m);
    bind_dense_spec(m);
    bind_optimizer_config(m);
    bind_epoch_result(m);
}

}  // namespace bp::bindings
