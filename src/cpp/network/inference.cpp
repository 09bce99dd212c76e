// Inference: predict and evaluate, by a forward pass of their own that reads the
// parameters (and BatchNorm's running estimates) and writes only into a workspace
// of the call's, never into the training buffers; so several threads may predict
// with one network at once (the bindings hold the network's lock shared).
//
//   per layer l, on a chunk of B rows:  N = norm(in) (running statistics),
//   D = N · keep_prob (classic dropout's inference scale; inverted dropout is the
//   identity and is skipped), Z = D·W + b, A = f(Z) fused into the product.
//
// Rows go in fixed chunks of kInferenceChunk (memory stays bounded for any n, and
// a row's result does not depend on the training batch size). One chunk uses the
// core's threads inside its products, as training does; several are split over
// the threads, each running whole forwards with single-threaded products, so
// the layers need no synchronisation between them. Either way a row's arithmetic
// is the same for any thread count. Workspaces come from a pool and go back to it:
// after the first calls, a call allocates nothing.
#include <algorithm>
#include <cstring>

#include "common/threads.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/epilogues.hpp"
#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
Network<T>::WorkspaceLease::WorkspaceLease(Network& net, std::size_t count, std::size_t rows) : net_(net) {
    {
        std::lock_guard<std::mutex> guard(net.pool_mutex_);
        while (held_.size() < count && !net.pool_.empty()) {
            held_.push_back(std::move(net.pool_.back()));
            net.pool_.pop_back();
        }
    }
    while (held_.size() < count) held_.push_back(std::make_unique<InferenceWorkspace>());
    for (auto& ws : held_) net.fit_workspace(*ws, rows);
}

template <typename T>
Network<T>::WorkspaceLease::~WorkspaceLease() {
    std::lock_guard<std::mutex> guard(net_.pool_mutex_);
    for (auto& ws : held_) net_.pool_.push_back(std::move(ws));
}

template <typename T>
void Network<T>::fit_workspace(InferenceWorkspace& ws, std::size_t rows) const {
    if (ws.rows >= rows) return;
    std::size_t width = input_dim_;
    bool norms = false, scaled = false;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        width = std::max(width, layers_[l].units);
        norms = norms || has_norm(l);
        scaled = scaled || (has_dropout(l) && layers_[l].dropout.inference_scale() != 1.0);
    }
    const std::size_t plane = padded<T>(rows * width), stats = padded<T>(3 * std::max(width, rows));
    ws.buf.resize(3 * plane + (norms ? 2 * plane + stats : 0) + (scaled ? plane : 0));
    T* p = ws.buf.data();
    auto take = [&p](std::size_t n) { T* v = p; p += n; return v; };
    ws.act[0] = take(plane);
    ws.act[1] = take(plane);
    ws.z = take(plane);
    ws.n = norms ? take(plane) : nullptr;
    ws.xhat = norms ? take(plane) : nullptr;
    ws.s = norms ? take(stats) : nullptr;
    ws.d = scaled ? take(plane) : nullptr;
    ws.rows = rows;
}

template <typename T>
std::pair<const T*, const T*> Network<T>::forward_inference(const T* X, std::size_t B, InferenceWorkspace& ws,
                                                            T* out) {
    const std::size_t L = layers_.size();
    const T* in = X;
    const T *z_out = nullptr, *a_out = nullptr;
    for (std::size_t l = 0; l < L; ++l) {
        const std::size_t fin = fan_in(l), fout = fan_out(l);
        if (has_norm(l)) {
            norm_forward_into(l, in, B, false, ws.n, ws.xhat, ws.s);
            in = ws.n;
        }
        if (has_dropout(l) && layers_[l].dropout.inference_scale() != 1.0) {
            dropout_forward(ws.d, in, static_cast<const T*>(nullptr), B * fin, T(layers_[l].dropout.inference_scale()));
            in = ws.d;
        }
        T* a = (l + 1 == L && out) ? out : ws.act[l % 2];
        const Activation& act = layers_[l].act;
        if (act.kind == Act::Identity) {  // A = Z: the product's own output
            dense_forward(a, in, W(l), b(l), B, fin, fout, nullptr, ForwardPath::Inference);
            z_out = a;
        } else if (act.kind == Act::Softmax) {  // a row-wise function: after the product
            dense_forward(ws.z, in, W(l), b(l), B, fin, fout, nullptr, ForwardPath::Inference);
            activation_forward(act, a, ws.z, B, fout);
            z_out = ws.z;
        } else {
            ActivationEpilogue<T> fused{&act, a, ws.z, fout};
            const GemmEpilogue epi = fused.epilogue();
            dense_forward(ws.z, in, W(l), b(l), B, fin, fout, &epi, ForwardPath::Inference);
            z_out = ws.z;
        }
        a_out = in = a;
    }
    return {z_out, a_out};
}

// The chunks of n rows and the threads they are split over (one chunk: its products'
// own threads instead).
namespace {
struct Chunks {
    std::size_t count, rows;
    int threads;
};
inline Chunks inference_chunks(std::size_t n, std::size_t chunk) {
    const std::size_t count = (n + chunk - 1) / chunk;
    return {count, std::min(n, chunk), count > 1 ? int(std::min<std::size_t>(std::size_t(num_threads()), count)) : 1};
}
}  // namespace

template <typename T>
void Network<T>::predict(T* out, const T* X, std::size_t n) {
    if (n == 0) return;
    const std::size_t K = output_dim(), D = input_dim_;
    const Chunks c = inference_chunks(n, kInferenceChunk);
    WorkspaceLease ws(*this, std::size_t(c.threads), c.rows);
    for_each_chunk(n, kInferenceChunk, c.threads, [&](std::size_t, std::size_t off, std::size_t rows) {
        forward_inference(X + off * D, rows, ws[std::size_t(team_position().first)], out + off * K);
    });
}

template <typename T>
double Network<T>::evaluate(const T* X, const T* Y, std::size_t n, const T* weights) {
    if (n == 0) return 0.0;
    const std::size_t K = output_dim(), D = input_dim_;
    const Chunks c = inference_chunks(n, kInferenceChunk);
    WorkspaceLease ws(*this, std::size_t(c.threads), c.rows);
    std::vector<double> sums(c.count);  // each chunk's Σ of its rows' losses, added in chunk order
    for_each_chunk(n, kInferenceChunk, c.threads, [&](std::size_t k, std::size_t off, std::size_t rows) {
        const auto [Zo, Ao] = forward_inference(X + off * D, rows, ws[std::size_t(team_position().first)], nullptr);
        sums[k] = loss_forward_backward<T>(loss_, nullptr, Zo, Ao, Y + off * K, rows, K,
                                           weights ? weights + off : nullptr) * double(rows);
    });
    double total = 0;
    for (double s : sums) total += s;
    if (weights && weight_norm == WeightNorm::WeightSum) {  // Σ w_i·l_i / Σ w_i (0 for weights of sum 0)
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += double(weights[i]);
        return sum > 0 ? total / sum : 0.0;
    }
    return total / double(n);
}

template <typename T>
void Network<T>::forward_views(const T* X, std::size_t n) {
    ensure_capacity(n);
    forward(X, n, false, !recording_);
}

#define BP_INFERENCE(T)                                                                         \
    template class Network<T>::WorkspaceLease;                                                  \
    template void Network<T>::fit_workspace(InferenceWorkspace&, std::size_t) const;             \
    template std::pair<const T*, const T*> Network<T>::forward_inference(const T*, std::size_t, \
                                                                         InferenceWorkspace&, T*); \
    template void Network<T>::predict(T*, const T*, std::size_t);                               \
    template double Network<T>::evaluate(const T*, const T*, std::size_t, const T*);             \
    template void Network<T>::forward_views(const T*, std::size_t);
BP_INFERENCE(float)
BP_INFERENCE(double)

}  // namespace bp
