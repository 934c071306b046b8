"""Activations and their derivatives, as two small tables (scikit-learn style).

``ACTIVATIONS[name](x)`` applies the activation to ``x`` in place.
``DERIVATIVES[name](y, delta)`` multiplies ``delta`` in place by the
activation's derivative, written in terms of the activation's *output* ``y``
(so forward only has to keep its outputs for backward).
"""
import numpy as np


def identity(x):
    return x


def relu(x):
    np.maximum(x, 0, out=x)
    return x


def tanh(x):
    np.tanh(x, out=x)
    return x


def sigmoid(x):
    # stable for any x: sigmoid(x) = 0.5 * (1 + tanh(x / 2))
    x *= 0.5
    np.tanh(x, out=x)
    x += 1
    x *= 0.5
    return x


def identity_derivative(y, delta):
    return delta


def relu_derivative(y, delta):
    # d relu / dx = 1 where the output is positive, else 0
    delta *= y > 0
    return delta


def tanh_derivative(y, delta):
    # d tanh / dx = 1 - tanh(x)^2
    delta *= 1 - y * y
    return delta


def sigmoid_derivative(y, delta):
    # d sigmoid / dx = s (1 - s)
    delta *= y * (1 - y)
    return delta


ACTIVATIONS = {"identity": identity, "relu": relu, "tanh": tanh, "sigmoid": sigmoid}
DERIVATIVES = {"identity": identity_derivative, "relu": relu_derivative,
               "tanh": tanh_derivative, "sigmoid": sigmoid_derivative}
