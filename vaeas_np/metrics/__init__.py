"""Evaluation metrics: IWAE NLL, negative ELBO, reconstruction, KL, active units,
mutual information / marginal divergence of the aggregate posterior.

Every function works on any model with ``encode(X) -> (mu, logvar)``,
``decode_logits(Z) -> logits`` (Bernoulli, float32) and ``n_threads``.
"""
from .aggregate import exact_aggregate_mi_md, monte_carlo_mi_md
from .basic import active_units, kl_divergence, reconstruction
from .iwae import iwae_nll, negative_elbo
from .logmeanexp import LogMeanExp, logmeanexp_rows
from .mixture_density import gmm_logdensity

__all__ = ["iwae_nll", "negative_elbo", "reconstruction", "kl_divergence", "active_units",
           "monte_carlo_mi_md", "exact_aggregate_mi_md", "gmm_logdensity",
           "logmeanexp_rows", "LogMeanExp"]
