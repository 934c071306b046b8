"""Epoch callbacks for ``model.fit(X, callbacks=[...])``: checkpoints and metric logs.

A callback is called as ``cb(model, record)`` after every epoch, ``record``
being the epoch's dict (``epoch``, ``loss``, ``recon``, ``kl``, ... ``seconds``),
the same dict that is appended to ``model.history_``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from .._files import atomic_write_text, json_default

__all__ = ["CheckpointCallback", "MetricsLogger", "json_default"]


def _clean(value):
    """JSON has no NaN/inf: write them as strings (``"nan"``, ``"inf"``)."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return str(float(value))
    return value


class CheckpointCallback:
    """After each epoch, write the model to ``path`` (atomically: ``model.save``
    writes a temporary file beside ``path`` and renames it over ``path``, so a
    kill at any moment leaves either the previous or the new checkpoint).

    ``every``: write only every ``every`` epochs (and the last one, when the
    model has reached its ``epochs``)."""

    def __init__(self, path, every=1):
        self.path = Path(path)
        self.every = int(every)
        self.last_epoch = None

    def __call__(self, model, record):
        epoch = int(record["epoch"])
        if epoch % self.every == 0 or epoch >= int(model.epochs):
            model.save(self.path)
            self.last_epoch = epoch


class MetricsLogger:
    """Append each epoch record as one JSON line to ``jsonl_path`` and one row to
    ``csv_path`` (header written once, columns fixed by the first record; keys
    that appear later only go to the JSON lines).

    Files that already exist are continued, never duplicated: records whose
    epoch is already logged are skipped.  :meth:`sync` (called by
    :func:`~vaeas_np.training.train` on resume) makes the logs agree with a
    restored model: epochs logged after the checkpoint's epoch (their
    checkpoint was never written) are dropped, epochs in ``model.history_``
    that are missing from the logs (the process was killed between the
    checkpoint and the log write) are added, and a torn last line is removed.
    """

    def __init__(self, jsonl_path, csv_path=None):
        self.jsonl_path = Path(jsonl_path)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self._records = self._read_jsonl()
        self._logged = {int(r["epoch"]) for r in self._records}
        self._columns = self._read_csv_columns()

    # ----------------------------------------------------------- reading
    def _read_jsonl(self):
        records = []
        if not self.jsonl_path.exists():
            return records
        with open(self.jsonl_path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:      # a line torn by a kill: dropped by sync()
                    continue
                if isinstance(rec, dict) and "epoch" in rec:
                    records.append(rec)
        return records

    def _read_csv_columns(self):
        if self.csv_path is None or not self.csv_path.exists():
            return None
        with open(self.csv_path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), None)
        return header or None

    @property
    def records(self):
        """The records logged so far (a list of dicts, in epoch order)."""
        return list(self._records)

    # ----------------------------------------------------------- writing
    def _csv_text(self, records, columns):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in records:
            w.writerow({k: _clean(v) for k, v in r.items()})
        return buf.getvalue()

    def _jsonl_line(self, record):
        return json.dumps({k: _clean(v) for k, v in record.items()},
                          default=json_default) + "\n"

    def sync(self, history, upto_epoch):
        """Rewrite the logs as: logged records with epoch <= ``upto_epoch``, plus the
        records of ``history`` (the model's ``history_``) that were not logged."""
        by_epoch = {}
        for r in self._records:
            e = int(r["epoch"])
            if e <= upto_epoch and e not in by_epoch:
                by_epoch[e] = r
        for r in history:
            e = int(r["epoch"])
            if e <= upto_epoch and e not in by_epoch:
                by_epoch[e] = dict(r)
        records = [by_epoch[e] for e in sorted(by_epoch)]
        self._records = records
        self._logged = set(by_epoch)
        atomic_write_text(self.jsonl_path, "".join(self._jsonl_line(r) for r in records))
        if self.csv_path is not None:
            if records:
                self._columns = self._columns or list(records[0])
                atomic_write_text(self.csv_path, self._csv_text(records, self._columns))
            else:
                self._columns = None
                if self.csv_path.exists():
                    self.csv_path.unlink()

    def __call__(self, model, record):
        epoch = int(record["epoch"])
        if epoch in self._logged:
            return
        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.jsonl_path, "a", encoding="utf-8") as fh:
            fh.write(self._jsonl_line(record))
            fh.flush()
            os.fsync(fh.fileno())
        if self.csv_path is not None:
            new = self._columns is None
            if new:
                self._columns = list(record)
            with open(self.csv_path, "a", encoding="utf-8", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self._columns, extrasaction="ignore",
                                   lineterminator="\n")
                if new:
                    w.writeheader()
                w.writerow({k: _clean(v) for k, v in record.items()})
                fh.flush()
                os.fsync(fh.fileno())
        self._records.append(dict(record))
        self._logged.add(epoch)
