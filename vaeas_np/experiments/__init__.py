"""Reproduction of the paper's tables and figures (SPEC section 5).

- :mod:`vaeas_np.experiments.paper`: the paper's own numbers (Tables 1-3) as data;
- :func:`reproduce` (:mod:`vaeas_np.experiments.runner`): train, evaluate and write
  ``<name>.md`` / ``<name>.csv`` / ``<name>.png`` for ``table1``, ``table2``, ``table3``,
  ``fig2``, ``fig3``, ``fig4``, ``fig5`` and ``noise``;
- :mod:`vaeas_np.experiments.cli`: the ``vaeas-np reproduce`` command.
"""
from .runner import TARGETS, reproduce

__all__ = ["reproduce", "TARGETS"]
