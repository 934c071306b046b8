"""Hand-written neural-network pieces: activations, Dense/MLP, losses, optimizers."""
from .activations import ACTIVATIONS, DERIVATIVES
from .layers import MLP, Dense
from .losses import (bernoulli_nll, bernoulli_nll_grad, gaussian_kl, gaussian_kl_grad,
                     reparameterize, reparameterize_grad)
from .optim import Adam

__all__ = ["ACTIVATIONS", "DERIVATIVES", "MLP", "Dense", "Adam", "bernoulli_nll",
           "bernoulli_nll_grad", "gaussian_kl", "gaussian_kl_grad", "reparameterize",
           "reparameterize_grad"]
