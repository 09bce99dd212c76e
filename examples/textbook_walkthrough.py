"""One step of backpropagation through the textbook network, every number shown.

3 inputs -> 4 ReLU -> 4 sigmoid -> 1 identity, no biases, squared error; one
sample x = (1, 2, 3) with target 0.5; one SGD step with lr 0.1.

    python examples/textbook_walkthrough.py
"""
import pybackprop as bp

model = bp.Sequential([
    bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
    bp.Dense(4, activation="sigmoid", use_bias=False),
    bp.Dense(1, activation="identity", use_bias=False),
], input_dim=3, dtype="float64", seed=4)
model.compile(loss="mse", optimizer=bp.SGD(lr=0.1))

trace = model.explain([1.0, 2.0, 3.0], [0.5])
print(trace)

# The trace's step is the step train_step takes:
loss = model.train_step([[1.0, 2.0, 3.0]], [0.5])
assert loss == trace.loss
assert all((layer.W == t["W_new"]).all() for layer, t in zip(model.layers, trace.layers))
print(f"\ntrain_step took the same step: loss {loss:.6f}, the same updated weights.")
