// Stochastic gradient descent, exactly torch.optim.SGD with dampening 0:
//   g = grad + weight_decay · p
//   buf = momentum · buf + g            (buf starts at 0, so step 1 gives buf = g)
//   g = nesterov ? g + momentum · buf : buf
//   p = p − lr · g
// The loop, sgd_update(p, grad, buf, n, lr, momentum, nesterov, weight_decay), is
// the kernel table's SGD operator and so lives in kernels/scalar_ops.hpp (the
// generic table's loop; the AVX2 one is bitwise the same); optimizer.hpp calls the
// active table's (kernels/dispatch.hpp).
#pragma once

#include "kernels/scalar_ops.hpp"
