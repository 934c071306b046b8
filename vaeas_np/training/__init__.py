"""Training runs: checkpoints and metric logs per epoch, resume, divergence handling.

Public API: :func:`train`, :class:`CheckpointCallback`, :class:`MetricsLogger`,
:class:`RunDivergedError`.
"""
from .callbacks import CheckpointCallback, MetricsLogger
from .run import (CHECKPOINT_NAME, CONFIG_NAME, CSV_NAME, JSONL_NAME, MODEL_NAME,
                  RunDivergedError, read_config, train, write_config)

__all__ = ["train", "CheckpointCallback", "MetricsLogger", "RunDivergedError", "read_config",
           "write_config", "CONFIG_NAME", "CHECKPOINT_NAME", "MODEL_NAME", "JSONL_NAME",
           "CSV_NAME"]
