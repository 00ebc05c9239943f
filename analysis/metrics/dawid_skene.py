"""crowd-kit's Dawid-Skene with its three steps computed in long form, for millions of
annotations.

crowd-kit's `DawidSkene` computes each EM step by joining every annotation with a row of
class probabilities (a DataFrame of n_annotations x n_classes floats, several of them alive
at once in the evidence lower bound, plus a (task, worker) MultiIndex), and starts from
`MajorityVote().fit`, which also scores every worker: measured +375 MB at a million
annotations of ten classes and +616 MB at three million of three, growing with annotations
x classes, so ten million would not fit in 2 GB. `LongFormDawidSkene` runs crowd-kit's fit
loop (the same start, gold answers held, the same stopping rule and results) and computes the
same sums class by class with `np.bincount` over integer codes, so a step holds a few arrays
of n_annotations numbers at a time (+278 MB at three million; README, Performance).

Pure: numpy/pandas/crowd-kit, no Django. Imported where Dawid-Skene runs (crowd-kit is not
imported by a web process that never aggregates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene
from crowdkit.aggregation.classification.dawid_skene import _EPS
from crowdkit.aggregation.utils import get_most_probable_labels


def _codes(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns as they are stored (int32 codes stay int32: no copy per step)."""
    return tuple(data[c].to_numpy() for c in ("task", "worker", "label"))


def _rows_of(index: pd.Index, values: np.ndarray) -> np.ndarray:
    """Position in `index` (non-negative ints, unique) of each of `values` (all among them)."""
    keys = index.to_numpy(dtype=np.int64)
    row_of = np.zeros(int(keys.max()) + 1, dtype=np.int64)
    row_of[keys] = np.arange(len(keys))
    return row_of[values]


def _pair_codes(worker: np.ndarray, label: np.ndarray, n_labels: int) -> np.ndarray:
    return worker * n_labels + label


def _answers_and_error_rows(data: pd.DataFrame, errors: pd.DataFrame):
    """Each answer's task code, and the row of `errors` (indexed by (worker, label)) that
    holds its annotator's error rates for its label."""
    task, worker, label = _codes(data)
    pair_worker = errors.index.get_level_values("worker").to_numpy(dtype=np.int64)
    pair_label = errors.index.get_level_values("label").to_numpy(dtype=np.int64)
    n_labels = int(max(pair_label.max(), label.max())) + 1
    pair_index = pd.Index(_pair_codes(pair_worker, pair_label, n_labels))
    return task, _rows_of(pair_index, _pair_codes(worker, label, n_labels))


class LongFormDawidSkene(DawidSkene):
    """`crowdkit.aggregation.DawidSkene` for data whose `task`, `worker` and `label` are
    non-negative integers (codes; int32 halves the data's memory): the same fit and
    attributes (`probas_`, `priors_`, `errors_`, `labels_`), each step's sums taken per class
    over the annotations in long form. The results equal crowd-kit's up to the order of
    floating-point additions."""

    def fit(self, data, true_labels=None, initial_error=None):
        """crowd-kit's `DawidSkene.fit`, line for line, but for its start: the same
        majority-vote probabilities (`_vote_shares`) without `MajorityVote().fit`, which also
        scores every worker through a (task, label) MultiIndex: half a GB at three million
        annotations, the fit's peak."""
        if initial_error is not None:
            raise ValueError("LongFormDawidSkene does not take initial error matrices.")
        data = data[["task", "worker", "label"]]
        if not data.size:
            return super().fit(data, true_labels)  # crowd-kit's empty results
        probas = self._vote_shares(data)
        if true_labels is not None:
            probas = self._correct_probas_with_golden(probas, true_labels)
        priors = probas.mean()
        errors = self._m_step(data, probas)
        loss = -np.inf
        self.loss_history_ = []
        for _ in range(self.n_iter):
            probas = self._e_step(data, priors, errors)
            if true_labels is not None:
                probas = self._correct_probas_with_golden(probas, true_labels)
            priors = probas.mean()
            errors = self._m_step(data, probas)
            new_loss = self._evidence_lower_bound(data, probas, priors, errors) / len(data)
            self.loss_history_.append(new_loss)
            if new_loss - loss < self.tol:
                break
            loss = new_loss
        probas.columns = pd.Index(probas.columns, name="label", dtype=probas.columns.dtype)
        self.probas_ = probas
        self.priors_ = priors
        self.errors_ = errors
        self.labels_ = get_most_probable_labels(probas)
        return self

    @staticmethod
    def _vote_shares(data) -> pd.DataFrame:
        """Each task's share of answers per label (MajorityVote's `probas_`): tasks and labels
        seen, ascending."""
        task, _, label = _codes(data)
        n_labels = int(label.max()) + 1
        n_tasks = int(task.max()) + 1
        flat = task.astype(np.int64) * n_labels + label  # int64: tasks x labels may pass 2**31
        counts = np.bincount(flat, minlength=n_tasks * n_labels)
        counts = counts.reshape(n_tasks, n_labels)
        counts = counts[np.flatnonzero(counts.sum(axis=1))]
        labels = np.flatnonzero(np.bincount(label))
        counts = counts[:, labels]
        return pd.DataFrame(
            counts / counts.sum(axis=1, keepdims=True),
            index=pd.Index(np.unique(task), name="task"),
            columns=pd.Index(labels, name="label", dtype=data.label.dtype),
        )

    @staticmethod
    def _m_step(data, probas):
        """P(answer | truth) per worker: the summed class probabilities of the tasks each
        (worker, answer) pair labeled, clipped and normalized per worker (crowd-kit's M-step)."""
        task, worker, label = _codes(data)
        n_labels = int(label.max()) + 1
        pair = _pair_codes(worker, label, n_labels)
        present = np.flatnonzero(np.bincount(pair))  # pairs seen: crowd-kit's groupby rows
        task_rows = _rows_of(probas.index, task)
        values = probas.to_numpy(dtype=np.float64)
        sums = np.empty((len(present), values.shape[1]))
        for c in range(values.shape[1]):
            column = np.bincount(pair, weights=values[task_rows, c], minlength=present[-1] + 1)
            sums[:, c] = column[present]
        np.clip(sums, _EPS, None, out=sums)
        pair_worker = present // n_labels
        per_worker = np.zeros((int(pair_worker.max()) + 1, values.shape[1]))
        np.add.at(per_worker, pair_worker, sums)
        sums /= per_worker[pair_worker]
        index = pd.MultiIndex.from_arrays(
            [pair_worker, present % n_labels], names=["worker", "label"]
        )
        # Unnamed columns, as crowd-kit's (they come out of a join with the annotations).
        return pd.DataFrame(sums, index=index, columns=probas.columns.rename(None))

    @staticmethod
    def _e_step(data, priors, errors):
        """Each task's class posteriors from its answers' log2 error rates and the priors
        (crowd-kit's E-step)."""
        task, pair_rows = _answers_and_error_rows(data, errors)
        log_errors = np.log2(errors.to_numpy(dtype=np.float64))
        priors.clip(lower=_EPS, inplace=True)
        log_priors = np.log2(priors.reindex(errors.columns).to_numpy(dtype=np.float64))
        tasks = np.flatnonzero(np.bincount(task))
        scaled = np.empty((len(tasks), log_errors.shape[1]))  # the log-likelihoods at first
        for c in range(log_errors.shape[1]):
            sums = np.bincount(task, weights=log_errors[pair_rows, c], minlength=tasks[-1] + 1)
            scaled[:, c] = log_priors[c] + sums[tasks]
        scaled -= scaled.max(axis=1, keepdims=True)
        np.exp2(scaled, out=scaled)
        scaled /= scaled.sum(axis=1, keepdims=True)
        columns = pd.Index(errors.columns, name="label", dtype=data.label.dtype)
        return pd.DataFrame(scaled, index=pd.Index(tasks, name="task"), columns=columns)

    def _evidence_lower_bound(self, data, probas, priors, errors) -> float:
        """Expected joint log-likelihood plus the posteriors' entropy (crowd-kit's); like
        crowd-kit's it clips `priors` and `probas` in place."""
        task, pair_rows = _answers_and_error_rows(data, errors)
        log_errors = np.log(errors.to_numpy(dtype=np.float64))
        priors.clip(lower=_EPS, inplace=True)
        task_rows = _rows_of(probas.index, task)
        values = probas.to_numpy(dtype=np.float64)
        joint = 0.0
        for c, name in enumerate(probas.columns):
            error_column = errors.columns.get_loc(name)
            log_joint = log_errors[pair_rows, error_column] + np.log(priors[name])
            joint += float(values[task_rows, c] @ log_joint)
        probas.clip(lower=_EPS, inplace=True)
        entropy = -(np.log(probas) * probas).sum().sum()
        return float(joint + entropy)
