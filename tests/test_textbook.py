"""The textbook case, derived by hand: backpropagation is the chain rule, layer by layer.

Network: 3 inputs -> 4 ReLU -> 4 sigmoid -> 1 identity, no biases, squared
error, float64, one sample. Every quantity below is written out as the chain
rule, with NumPy doing only the arithmetic, and the core must reproduce each
gradient and the weights after one SGD step to 1e-12.

Notation (one sample, so every "batch" has one row):
    z1 = x W1        a1 = relu(z1)          x: (1, 3), W1: (3, 4)
    z2 = a1 W2       a2 = sigmoid(z2)       W2: (4, 4)
    z3 = a2 W3       y_hat = z3 (identity)  W3: (4, 1)
    L  = (z3 - y)^2  (mse: the mean over 1 sample x 1 output)
"""
from __future__ import annotations

import numpy as np

import pybackprop as bp
from conftest import assert_close

TOL = dict(rtol=1e-12, atol=1e-12)

# The weights are chosen, not drawn, so that the ReLU layer has two active
# units (z1 > 0: 0 and 1) and two dead ones (z1 < 0: 2 and 3).
W1 = np.array([[0.2, -0.4, 0.1, -0.3],
               [0.4, 0.3, -0.2, -0.1],
               [-0.1, 0.2, -0.3, 0.05]])
W2 = np.array([[0.5, -0.3, 0.8, 0.1],
               [-0.6, 0.4, 0.2, -0.7],
               [0.3, 0.9, -0.5, 0.6],
               [-0.2, 0.1, 0.7, -0.4]])
W3 = np.array([[1.0], [-0.8], [0.6], [0.3]])
x = np.array([[1.0, 2.0, 3.0]])  # one sample, a row: (1, 3)
y = np.array([[0.5]])            # its target: (1, 1)
LR = 0.1


def textbook_model() -> bp.Sequential:
    model = bp.Sequential([
        bp.Dense(4, activation="relu", use_bias=False, init=W1),
        bp.Dense(4, activation="sigmoid", use_bias=False, init=W2),
        bp.Dense(1, activation="identity", use_bias=False, init=W3),
    ], input_dim=3, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=LR))
    return model


def by_hand():
    """Forward and backward pass of the textbook network, one line per step."""
    # ---- forward: each layer is an affine map followed by its activation
    z1 = x @ W1                       # (1, 4) = (1, 3) @ (3, 4)
    a1 = np.maximum(z1, 0.0)          # relu
    z2 = a1 @ W2                      # (1, 4)
    a2 = 1.0 / (1.0 + np.exp(-z2))    # sigmoid
    z3 = a2 @ W3                      # (1, 1); the output is identity: y_hat = z3
    L = float(((z3 - y) ** 2).mean())  # squared error of the one output

    # ---- backward: the chain rule from the loss down to the first layer
    # Output. L = (z3 - y)^2, so dL/dz3 = 2 (z3 - y) (divided by N K = 1).
    dL_dz3 = 2.0 * (z3 - y)           # (1, 1)
    # z3 = a2 W3: each weight W3[j, 0] multiplies a2[0, j], so dL/dW3[j, 0] = a2[0, j] dL/dz3.
    dL_dW3 = a2.T @ dL_dz3            # (4, 1) = (4, 1) @ (1, 1)
    # ... and each a2[0, j] reaches z3 through W3[j, 0]: the error flows back through W3 transposed.
    dL_da2 = dL_dz3 @ W3.T            # (1, 4) = (1, 1) @ (1, 4)
    # Sigmoid layer. a2 = sigmoid(z2), sigmoid'(z) = sigmoid(z) (1 - sigmoid(z)) = a2 (1 - a2).
    dL_dz2 = dL_da2 * a2 * (1.0 - a2)  # (1, 4), elementwise
    dL_dW2 = a1.T @ dL_dz2            # (4, 4): input of the layer (a1) times the error of its unit
    dL_da1 = dL_dz2 @ W2.T            # (1, 4)
    # ReLU layer. relu'(z) = 1 where z > 0, else 0: dead units pass no error back.
    dL_dz1 = dL_da1 * (z1 > 0)        # (1, 4)
    dL_dW1 = x.T @ dL_dz1             # (3, 4): the input x times the error of each unit
    return dict(z1=z1, a1=a1, z2=z2, a2=a2, z3=z3, L=L, dW1=dL_dW1, dW2=dL_dW2, dW3=dL_dW3,
                dz1=dL_dz1)


def test_the_weights_make_two_relu_units_active_and_two_dead():
    h = by_hand()
    assert (h["z1"][0, :2] > 0).all() and (h["z1"][0, 2:] < 0).all()
    # A dead unit j has a1[j] = 0 and relu'(z1[j]) = 0, so:
    assert (h["dW1"][:, 2:] == 0).all()  # the weights into a dead unit get no gradient,
    assert (h["dW2"][2:, :] == 0).all()  # and neither do the weights out of it.
    assert (h["dW1"][:, :2] != 0).all() and (h["dW2"][:2, :] != 0).all()


def test_forward_pass_matches_the_hand_derivation():
    h = by_hand()
    model = textbook_model()
    assert_close("y_hat = z3", model.predict(x), h["z3"], **TOL)
    assert_close("L", model.evaluate(x, y), h["L"], **TOL)
    # The core keeps the last forward pass: every z and a, layer by layer.
    model.loss_and_gradients(x, y)
    for i, (z, a) in enumerate([("z1", "a1"), ("z2", "a2"), ("z3", "z3")]):
        assert_close(f"layer {i} z", model._net.Z(i), h[z], **TOL)
        assert_close(f"layer {i} a", model._net.A(i), h[a], **TOL)


def test_every_gradient_matches_the_hand_derivation():
    h = by_hand()
    loss, grads = textbook_model().loss_and_gradients(x, y)
    assert_close("L", loss, h["L"], **TOL)
    assert [sorted(g) for g in grads] == [["W"], ["W"], ["W"]]  # no biases: no "b"
    for i, g in enumerate(grads):
        assert_close(f"dL/dW{i + 1}", g["W"], h[f"dW{i + 1}"], **TOL)


def test_one_sgd_step_matches_the_hand_derivation():
    h = by_hand()
    model = textbook_model()
    loss = model.train_step(x, y)
    assert_close("loss returned by train_step (before the update)", loss, h["L"], **TOL)
    # Gradient descent: W <- W - lr dL/dW, for every layer at once.
    for i, (W, got) in enumerate(zip([W1, W2, W3], model.get_weights())):
        assert_close(f"W{i + 1} after one step", got, W - LR * h[f"dW{i + 1}"], **TOL)
    # The loss went down.
    assert model.evaluate(x, y) < h["L"]


def test_one_unit_relu_chain_by_hand():
    """x -> (w1, b1, relu) -> (w2, b2, identity) -> y_hat, all numbers exact in binary.

    forward:   z1 = w1 x + b1 = 0.5 * 2 - 0.25 = 0.75;  a1 = relu(0.75) = 0.75
               z2 = w2 a1 + b2 = 2 * 0.75 + 0.5 = 2.0;   y_hat = 2.0
               L  = (y_hat - y)^2 = (2 - 1)^2 = 1
    backward:  dL/dz2 = 2 (z2 - y) = 2
               dL/dw2 = dL/dz2 * a1 = 2 * 0.75 = 1.5;     dL/db2 = dL/dz2 = 2
               dL/da1 = dL/dz2 * w2 = 2 * 2 = 4
               dL/dz1 = dL/da1 * relu'(0.75) = 4 * 1 = 4
               dL/dw1 = dL/dz1 * x = 4 * 2 = 8;           dL/db1 = dL/dz1 = 4
    SGD, lr = 0.1:  w1 = 0.5 - 0.8 = -0.3,  b1 = -0.25 - 0.4 = -0.65,
                    w2 = 2 - 0.15 = 1.85,   b2 = 0.5 - 0.2 = 0.3
    """
    model = bp.Sequential([bp.Dense(1, activation="relu", init=[[0.5]]),
                           bp.Dense(1, activation="identity", init=[[2.0]])],
                          input_dim=1, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    model.set_weights([[[0.5]], [-0.25], [[2.0]], [0.5]])
    assert model.predict([[2.0]])[0, 0] == 2.0
    loss, grads = model.loss_and_gradients([[2.0]], [1.0])
    # Every number is a short binary fraction, so the core must get them exactly.
    assert loss == 1.0
    assert grads[1]["W"][0, 0] == 1.5 and grads[1]["b"][0] == 2.0
    assert grads[0]["W"][0, 0] == 8.0 and grads[0]["b"][0] == 4.0
    assert model.train_step([[2.0]], [1.0]) == 1.0
    got = [float(w.ravel()[0]) for w in model.get_weights()]
    assert_close("w1, b1, w2, b2 after one step", got, [-0.3, -0.65, 1.85, 0.3], **TOL)


def test_one_unit_sigmoid_chain_by_hand():
    """x -> (w1, sigmoid) -> (w2, identity), no biases, at the point where sigmoid is exact.

    forward:   z1 = w1 x = 0 * 1 = 0;  a1 = sigmoid(0) = 0.5
               z2 = w2 a1 = 2 * 0.5 = 1;  L = (1 - 0)^2 = 1
    backward:  dL/dz2 = 2 (1 - 0) = 2
               dL/dw2 = dL/dz2 * a1 = 2 * 0.5 = 1
               dL/da1 = dL/dz2 * w2 = 2 * 2 = 4
               dL/dz1 = dL/da1 * a1 (1 - a1) = 4 * 0.5 * 0.5 = 1
               dL/dw1 = dL/dz1 * x = 1 * 1 = 1
    SGD, lr = 0.5: w1 = 0 - 0.5 * 1 = -0.5, w2 = 2 - 0.5 * 1 = 1.5
    """
    model = bp.Sequential([bp.Dense(1, activation="sigmoid", use_bias=False, init=[[0.0]]),
                           bp.Dense(1, activation="identity", use_bias=False, init=[[2.0]])],
                          input_dim=1, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.5))
    loss, grads = model.loss_and_gradients([[1.0]], [0.0])
    assert loss == 1.0
    assert grads[1]["W"][0, 0] == 1.0
    assert grads[0]["W"][0, 0] == 1.0
    assert model.train_step([[1.0]], [0.0]) == 1.0
    assert [float(w[0, 0]) for w in model.get_weights()] == [-0.5, 1.5]
