"""The adaptation head: new logit = the model's logit + a linear correction on its pooled features.

The correction ``w . (f - mu) / sd + b`` is fitted by weighted logistic regression (L-BFGS, ``scipy.optimize``)
on the decisions, with an L2 penalty on ``w`` and ``b`` (a Gaussian prior centred on the starting model: with few
decisions the adapted model stays the starting model) and a penalty on lowering the scores of the starting
model's training figures or raising those of its training non-figures (the anchors). The
model's own logit is an offset of the regression (a fixed term with coefficient 1), as in logistic regression with
an offset (McCullagh & Nelder, Generalized Linear Models, 2nd ed., 1989, sec. 4.4).

Scores follow the detector's test-time averaging (:func:`spindledx.detection.model.gated_tta`): the first view's
probability, replaced by the mean over all views when it reaches the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

#: L2 penalty per feature (on standardised features), in units of one decision's weight.
DEFAULT_L2 = 1.0
#: Weight per anchor of the penalty on changing the starting model's calls (squared logits).
DEFAULT_KEEP = 1.0


@dataclass(frozen=True)
class Head:
    """A fitted correction: ``w`` on standardised features, intercept ``b``, the standardisation ``mu``, ``sd``."""

    w: np.ndarray
    b: float
    mu: np.ndarray
    sd: np.ndarray

    @classmethod
    def zero(cls, width: int) -> Head:
        """No correction (the starting model)."""
        return cls(np.zeros(width), 0.0, np.zeros(width), np.ones(width))

    def correction(self, features: np.ndarray) -> np.ndarray:
        """Logit correction for features ``(..., D)``."""
        return ((features - self.mu) / self.sd) @ self.w + self.b

    def scaled(self, strength: float) -> Head:
        """The same correction times ``strength`` (1 = as fitted, 0 = none)."""
        return Head(self.w * strength, self.b * strength, self.mu, self.sd)

    def folded(self) -> tuple[np.ndarray, float]:
        """Weight and bias on raw features (``w / sd``, ``b - w . mu / sd``), as the ONNX graph applies them."""
        w = self.w / self.sd
        return w, float(self.b - w @ self.mu)


def fit_head(features: np.ndarray, logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, *,
             keep_features: np.ndarray | None = None, keep_labels: np.ndarray | None = None,
             keep_weight: float = DEFAULT_KEEP, l2: float = DEFAULT_L2) -> Head:
    """Fit the correction by penalised weighted logistic regression with the model's logit as offset, kept from
    changing the starting model's calls on the anchors.

    Parameters
    ----------
    features
        ``(N, D)`` pooled features of every training view of the decisions.
    logits
        ``(N,)`` the starting model's logit of each view (the offset).
    labels
        ``(N,)`` 1 mitosis, 0 not.
    weights
        ``(N,)`` sample weights (a decision's views share its weight).
    keep_features, keep_labels
        Anchors: features ``(M, D)`` and labels of the starting model's training material. The correction is
        penalised where it would lower an anchor figure's logit or raise an anchor non-figure's,
        ``keep_weight * sum(min(c, 0)^2)`` over figures and ``keep_weight * sum(max(c, 0)^2)`` over the others
        (a one-sided quadratic penalty, i.e. soft constraints that the adapted model scores the starting model's
        figures no lower and its non-figures no higher; a form of rehearsal against forgetting, Robins,
        Connection Science 1995;7:123).
    keep_weight
        Weight of that penalty per anchor, in squared logits.
    l2
        Penalty ``l2 * (|w|^2 + b^2)`` on standardised features.
    """
    features = np.asarray(features, np.float64)
    anchors = np.zeros((0, features.shape[1])) if keep_features is None else np.asarray(keep_features, np.float64)
    mu = features.mean(axis=0)
    sd = features.std(axis=0)
    sd = np.where(sd > 1e-6, sd, 1.0)
    x = np.hstack([(features - mu) / sd, np.ones((len(features), 1))])
    xa = np.hstack([(anchors - mu) / sd, np.ones((len(anchors), 1))])
    figure = np.zeros(len(anchors), bool) if keep_labels is None else np.asarray(keep_labels) == 1
    y = np.asarray(labels, np.float64)
    off = np.asarray(logits, np.float64)
    sw = np.asarray(weights, np.float64)
    sign = 2 * y - 1

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = off + x @ theta
        r = sw * (expit(z) - y)
        c = xa @ theta
        d = np.where(figure, np.minimum(c, 0.0), np.maximum(c, 0.0))
        value = -np.sum(sw * log_expit(sign * z)) + keep_weight * d @ d + l2 * theta @ theta
        grad = x.T @ r + 2 * keep_weight * (xa.T @ d) + 2 * l2 * theta
        return float(value), grad

    res = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return Head(res.x[:-1].copy(), float(res.x[-1]), mu, sd)


def view_probabilities(head: Head, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Probabilities ``(V, N)`` of every view after the correction."""
    return expit(logits + head.correction(features))


def gated_scores(probs: np.ndarray, *, ways: int, gate: float | None) -> np.ndarray:
    """Scores of candidates from their view probabilities ``(V, N)`` as the detector computes them: the first
    view's probability, or the mean of the first ``ways`` views (all of them without a gate, or where the first
    reaches ``gate``)."""
    first = probs[0]
    if ways <= 1:
        return first
    mean = probs[:ways].mean(axis=0)
    if gate is None:
        return mean
    return np.where(first >= gate, mean, first)
