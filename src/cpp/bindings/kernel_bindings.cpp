// Test hooks of the kernels in _core._testing (no math here): run one product or
// one arena/elementwise operator with a chosen kernel table, list the ISAs, report
// why an override was refused.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings/bindings.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"

namespace py = pybind11;

namespace bp::bindings {
namespace {

// Shapes of the three products as (rows, cols) of A, B and C, from m, k, n
// named as in gemm.hpp's signatures.
struct Dims {
    py::ssize_t M, K, N;
};

void check_2d(const py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols,
              const std::string& op) {
    if (a.shape(0) != rows || a.shape(1) != cols)
        throw py::value_error("gemm(" + op + "): " + name + " has shape (" +
                              std::to_string(a.shape(0)) + ", " + std::to_string(a.shape(1)) +
                              "), expected (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
}

// The table of an ISA this CPU runs, or ValueError naming the hook.
const KernelTable& table_of(const std::string& hook, const std::string& isa) {
    const KernelTable* t = find_kernel_table(isa);
    if (!t) throw py::value_error(hook + ": unknown or unsupported isa '" + isa + "'");
    return *t;
}

// f(float{}) or f(double{}) by a's dtype, or ValueError naming the hook.
template <typename F>
auto by_dtype(const std::string& hook, const py::array& a, F&& f) {
    if (a.dtype().is(py::dtype::of<float>())) return f(float{});
    if (a.dtype().is(py::dtype::of<double>())) return f(double{});
    throw py::value_error(hook + ": dtype must be float32 or float64");
}

// The test epilogue: c -> 2c + 1 on each final block (an element visited twice, or
// never, shows).
template <typename T>
struct TwicePlusOne {
    T* C;
    std::ptrdiff_t ld;
    static void run(void* self, std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0, std::ptrdiff_t cols) {
        const auto& e = *static_cast<const TwicePlusOne*>(self);
        for (std::ptrdiff_t r = row0; r < row0 + rows; ++r)
            for (std::ptrdiff_t j = col0; j < col0 + cols; ++j) e.C[r * e.ld + j] = T(2) * e.C[r * e.ld + j] + T(1);
    }
};

template <typename T>
void run(const std::string& op, const py::array& A, const py::array& B, py::array& C,
         const std::string& isa, bool epilogue, bool small) {
    const T* a = static_cast<const T*>(A.data());
    const T* b = static_cast<const T*>(B.data());
    T* c = static_cast<T*>(C.mutable_data());
    const KernelTable* table = nullptr;
    if (isa != "reference" && isa != "auto") {
        table = find_kernel_table(isa);
        if (!table)
            throw py::value_error("gemm: isa must be 'reference', 'auto' or one of kernel_isas(), got '" +
                                  isa + "'");
    }
    Dims d{};
    if (op == "nn") {  // C[M,N] += A[M,K] · B[K,N]
        d = {A.shape(0), A.shape(1), B.shape(1)};
        check_2d(B, "B", d.K, d.N, op);
        check_2d(C, "C", d.M, d.N, op);
    } else if (op == "tn") {  // C[K,N] += A[M,K]ᵀ · B[M,N]
        d = {A.shape(0), A.shape(1), B.shape(1)};
        check_2d(B, "B", d.M, d.N, op);
        check_2d(C, "C", d.K, d.N, op);
    } else if (op == "nt") {  // C[M,K] += A[M,N] · B[K,N]ᵀ
        d = {A.shape(0), B.shape(0), A.shape(1)};
        check_2d(B, "B", d.K, d.N, op);
        check_2d(C, "C", d.M, d.K, op);
    } else {
        throw py::value_error("gemm: op must be 'nn', 'tn' or 'nt', got '" + op + "'");
    }
    const std::ptrdiff_t M = d.M, K = d.K, N = d.N;
    TwicePlusOne<T> twice{c, op == "nt" ? K : N};
    const GemmEpilogue test_epi{&TwicePlusOne<T>::run, &twice};
    const GemmEpilogue* epi = epilogue ? &test_epi : nullptr;
    if (epilogue && isa == "reference") throw py::value_error("gemm: the reference kernels take no epilogue");
    if (small && !table) throw py::value_error("gemm: small=True needs an ISA of kernel_isas()");
    py::gil_scoped_release release;
    if (isa == "reference") {
        if (op == "nn") matmul_nn_reference(c, a, b, M, K, N);
        else if (op == "tn") matmul_tn_reference(c, a, b, M, K, N);
        else matmul_nt_reference(c, a, b, M, N, K);
    } else if (isa == "auto") {  // exactly what the layers call
        if (op == "nn") matmul_nn(c, a, b, M, K, N, epi);
        else if (op == "tn") {
            if (epilogue) throw py::value_error("gemm: matmul_tn takes no epilogue");
            matmul_tn(c, a, b, M, K, N);
        } else matmul_nt(c, a, b, M, N, K, epi);
    } else if (small) {  // always the unpacked small-product path, with this table
        if (op == "nn") gemm_small<T>(M, N, K, a, K, 1, b, N, 1, c, N, table, epi);
        else if (op == "tn") gemm_small<T>(K, N, M, a, 1, K, b, N, 1, c, N, table, epi);
        else gemm_small<T>(M, K, N, a, N, 1, b, 1, N, c, K, table, epi);
    } else {  // always the blocked driver, with this table
        if (op == "nn") gemm_blocked<T>(M, N, K, a, K, 1, b, N, 1, c, N, table, epi);
        else if (op == "tn") gemm_blocked<T>(K, N, M, a, 1, K, b, N, 1, c, N, table, epi);
        else gemm_blocked<T>(M, K, N, a, N, 1, b, 1, N, c, K, table, epi);
    }
}

}  // namespace

void bind_kernel_hooks(py::module_& m) {
    m.def(
        "gemm",
        [](const std::string& op, const py::array& A, const py::array& B, py::array C,
           const std::string& isa, bool epilogue, bool small) {
            for (const auto& [name, arr] : {std::pair<const char*, const py::array*>{"A", &A},
                                            {"B", &B}, {"C", &C}}) {
                if (arr->ndim() != 2)
                    throw py::value_error(std::string("gemm: ") + name + " must be 2-D");
                if (!(arr->flags() & py::array::c_style))
                    throw py::value_error(std::string("gemm: ") + name + " must be C-contiguous");
                if (!arr->dtype().is(C.dtype()))
                    throw py::value_error("gemm: A, B and C must share one dtype");
            }
            if (!C.writeable()) throw py::value_error("gemm: C must be writeable");
            by_dtype("gemm", C, [&](auto tag) { run<decltype(tag)>(op, A, B, C, isa, epilogue, small); });
            return C;
        },
        py::arg("op"), py::arg("A"), py::arg("B"), py::arg("C"), py::arg("isa") = "auto",
        py::arg("epilogue") = false, py::arg("small") = false,
        "C += op(A, B) in place (private test hook). op: 'nn' C=A·B, 'tn' C=Aᵀ·B, 'nt' "
        "C=A·Bᵀ. isa: 'reference' (naive loops), 'auto' (what the layers call, small "
        "products direct), or an ISA of kernel_isas() (always the blocked driver, or with "
        "small=True always the unpacked small-product path). "
        "epilogue: then C = 2C + 1 by the product's epilogue, block by block.");

    m.def(
        "kernel_isas",
        [] {
            py::list out;
            for (const KernelTable* t : compiled_kernel_tables())
                if (cpu_supports(*t)) out.append(t->name);
            return out;
        },
        "The ISAs compiled into this build that this CPU supports, worst to best.");

    m.def(
        "kernel_isas_compiled",
        [] {
            py::list out;
            for (const KernelTable* t : compiled_kernel_tables()) out.append(t->name);
            return out;
        },
        "Every ISA compiled into this build, supported by this CPU or not.");

    m.def(
        "kernel_tiles",
        [](const std::string& isa) {
            const KernelTable& t = table_of("kernel_tiles", isa);
            auto info = [](const auto& k) {
                py::dict d;
                d["mr"] = k.mr, d["nr"] = k.nr, d["mc"] = k.mc, d["kc"] = k.kc, d["nc"] = k.nc;
                return d;
            };
            py::dict out;
            out["float32"] = info(t.f32);
            out["float64"] = info(t.f64);
            return out;
        },
        py::arg("isa"), "Register tile and cache blocks of an ISA's kernels, per dtype.");

    // Test hooks: an ISA's elementwise float32 kernel on a flattened array.
    auto elementwise = [&m](const char* name, ukr::UnaryFn KernelTable::*fn, const char* what) {
        const std::string label = name;
        m.def(
            name,
            [label, fn](py::array_t<float, py::array::c_style | py::array::forcecast> z, const std::string& isa) {
                const KernelTable& t = table_of(label, isa);
                py::array_t<float> out(z.size());
                (t.*fn)(out.mutable_data(), z.data(), std::size_t(z.size()));
                return out;
            },
            py::arg("z"), py::arg("isa"), what);
    };
    elementwise("tanh_f32", &KernelTable::tanh_f32,
                "tanh of z (flattened, float32) by an ISA's elementwise kernel (test hook).");
    elementwise("sigmoid_f32", &KernelTable::sigmoid_f32,
                "sigmoid of z (flattened, float32) by an ISA's elementwise kernel (test hook).");

    m.def(
        "sum_squares",
        [](const py::array& x, const std::string& isa) {
            const KernelTable& t = table_of("sum_squares", isa);
            return by_dtype("sum_squares", x, [&](auto tag) {
                using T = decltype(tag);
                auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(x);
                return t.arena<T>().sum_squares(a.data(), std::size_t(a.size()));
            });
        },
        py::arg("x"), py::arg("isa"),
        "The sum of squares of x (flattened), in double, by an ISA's arena kernel (test hook).");

    m.def(
        "transpose",
        [](const py::array& src, const std::string& isa) {
            const KernelTable& t = table_of("transpose", isa);
            if (src.ndim() != 2) throw py::value_error("transpose: src must be 2-D");
            return by_dtype("transpose", src, [&](auto tag) -> py::array {
                using T = decltype(tag);
                const std::ptrdiff_t k = src.shape(0), n = src.shape(1), size = sizeof(T);
                if (src.strides(0) % size || src.strides(1) % size)
                    throw py::value_error("transpose: strides must be whole elements");
                py::array_t<T> dst({k, n});
                t.get<T>().transpose(static_cast<const T*>(src.data()), src.strides(0) / size, src.strides(1) / size,
                                     dst.mutable_data(), k, n);
                return dst;
            });
        },
        py::arg("src"), py::arg("isa"),
        "A C-contiguous copy of the 2-D (k, n) view src (any strides) by an ISA's GEMM transpose (test hook).");

    m.def(
        "sgd",
        [](py::array p, const py::array& grad, py::array buf, double lr, double momentum, bool nesterov,
           double weight_decay, const std::string& isa) {
            const KernelTable& t = table_of("sgd", isa);
            by_dtype("sgd", p, [&](auto tag) {
                using T = decltype(tag);
                using Arr = py::array_t<T, py::array::c_style>;
                for (const py::array* a : {static_cast<const py::array*>(&p), &grad, static_cast<const py::array*>(&buf)})
                    if (!py::isinstance<Arr>(*a) || a->size() != p.size())
                        throw py::value_error("sgd: p, grad and buf must be C-contiguous arrays of one dtype and size");
                if (!p.writeable() || !buf.writeable()) throw py::value_error("sgd: p and buf must be writeable");
                t.arena<T>().sgd(static_cast<T*>(p.mutable_data()), static_cast<const T*>(grad.data()),
                                 static_cast<T*>(buf.mutable_data()), std::size_t(p.size()), lr, momentum, nesterov,
                                 weight_decay);
            });
        },
        py::arg("p"), py::arg("grad"), py::arg("buf"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"),
        py::arg("weight_decay"), py::arg("isa"),
        "One SGD update of p (and the momentum buffer buf) in place by an ISA's arena kernel (test hook).");

    m.def("isa_note", [] { return isa_note(); },
          "Empty, or why the PYBACKPROP_ISA override was not honoured.");
}

}  // namespace bp::bindings
