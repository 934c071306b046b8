"""Output layers of the auxiliary classifier s_w(e | z): hierarchical and full softmax.

- :func:`assign_labels` - the seeded labels e_i = pi(i) mod V of the training examples;
- :class:`Tree`, :func:`random_order`, :func:`kd_order` - the balanced binary tree and
  where each label's leaf sits;
- :class:`HierarchicalSoftmax` (default) and :class:`FullSoftmax` - one interface:
  ``forward(H, labels) -> logp``, ``backward(dlogp) -> dH``, ``step(scale, lr, ...)``,
  ``log_prob_all(H)``, ``entropy(H)``, ``params()``, ``grads()``.
"""
from .tree import Tree, assign_labels, kd_order, random_order
from .hierarchical import HierarchicalSoftmax
from .full import FullSoftmax

__all__ = ["Tree", "assign_labels", "kd_order", "random_order", "HierarchicalSoftmax",
           "FullSoftmax"]
