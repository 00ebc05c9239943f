"""Out-of-sample class probabilities from a built-in model, by stratified K-fold cross-validation.

Confident learning (cleanlab) needs, for every item, the probabilities of a model that did NOT
see that item's label; otherwise the model has memorised the error and cannot flag it. Each
item is therefore scored only by the model trained on the other K-1 folds.

The pipeline is chosen by the kind of features:

- ``"text"``: TF-IDF over word 1-2-grams and character (``char_wb``) 3-5-grams seen in at
  least two items, then logistic regression with the SAGA solver;
- ``"tabular"``: numeric columns imputed and standardised, other columns one-hot encoded,
  then logistic regression;
- ``"embedding"``: a vector per item, standardised, then logistic regression.

Classes with fewer labeled examples than folds cannot be stratified (some fold would train
without them), so their items get no out-of-sample probability and are reported in
``excluded_classes``; the caller leaves them out of issue finding.

Why the text model is built this way (measured on 2 cores, 100,000 generated short texts of
10 classes, 5 folds: ``bench/label_issues.py``; and on the 10%-flipped sentiment set of
``tests/analysis/test_label_issues_reference.py``). The earlier model refitted both TF-IDF
vocabularies inside every fold and used L-BFGS: 588 s and 2.4 GB, sentiment precision 0.423,
recall 0.733. Now:

- The TF-IDF features are fitted once over all texts, outside the folds. They use no labels,
  so no item's label reaches the model that scores it (the document frequencies of the
  held-out texts do, as they would for any unsupervised preprocessing); the five refits of
  the character vocabulary were most of the time and the peak.
- SAGA suits a wide sparse matrix better than L-BFGS (whose memory grows with the number of
  features times classes); ``max_iter=200, tol=1e-3`` stops once the probabilities no longer
  change at the precision cleanlab's thresholds need.
- Character 3-5-grams rather than 2-5: 53 s and 766 MB at 100,000 texts, sentiment precision
  0.436, recall 0.733, accuracy 0.818. 2-5 took 73 s and 885 MB (precision 0.431, recall
  0.743), too close to the 90 s budget once the worker shares its 2 cores.
- ``random_state`` fixes SAGA's sample order, so a run gives the same flags every time.
- Hashed features (``HashingVectorizer``) with L-BFGS were slower than the fitted vocabulary.
  Folds in parallel would hold several fold models at once on a 2-core worker whose prefork
  children must run ``n_jobs=1``.

Pure: numpy/pandas/scikit-learn only, no Django.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

KINDS = ("text", "tabular", "embedding")


class CannotTrain(ValueError):
    """The items or labels give the model too little to learn from; the message says why in
    plain words (callers show it to people, and may fall back to a method without a model)."""


@dataclass(frozen=True)
class OutOfSample:
    """Result of ``out_of_sample_probabilities``.

    probabilities: (n_items, n_classes) float64; row i comes from a model that never saw item
        i's label. Rows of unscored items are NaN.
    scored: (n_items,) bool, True where the row holds probabilities (labeled items of kept
        classes, and unlabeled items when score_unlabeled).
    excluded_classes: class indices with 0 < examples < folds (their items are unscored).
    accuracy: share of scored items whose most probable class equals their label.
    """

    probabilities: np.ndarray
    scored: np.ndarray
    excluded_classes: list[int]
    folds: int
    accuracy: float | None
    pipeline: str
    class_counts: list[int] = field(default_factory=list)


def text_features() -> FeatureUnion:
    words = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode", dtype=np.float32
    )
    # min_df=2 keeps the character vocabulary bounded on large corpora; a 5-gram seen once
    # cannot help to score any other item anyway.
    chars = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(3, 5),
        sublinear_tf=True,
        min_df=2,
        strip_accents="unicode",
        dtype=np.float32,
    )
    return FeatureUnion([("words", words), ("chars", chars)])


def text_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("features", text_features()),
            ("model", LogisticRegression(solver="saga", max_iter=200, tol=1e-3, random_state=0)),
        ]
    )


def tabular_pipeline(frame: pd.DataFrame) -> Pipeline:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    steps = []
    if numeric:
        steps.append(
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
        )
    if categorical:
        steps.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            )
        )
    if not steps:
        raise CannotTrain("the items have no fields to learn from")
    return Pipeline(
        [("features", ColumnTransformer(steps)), ("model", LogisticRegression(max_iter=2000))]
    )


def embedding_pipeline() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def pipeline_for(kind: str, features) -> Pipeline:
    if kind == "text":
        return text_pipeline()
    if kind == "tabular":
        return tabular_pipeline(features)
    if kind == "embedding":
        return embedding_pipeline()
    raise ValueError(f"Unknown feature kind {kind!r}; allowed: {', '.join(KINDS)}.")


def _prepare(kind: str, features):
    if kind == "text":
        return np.asarray([str(t) if t is not None else "" for t in features], dtype=object)
    if kind == "tabular":
        frame = pd.DataFrame(features).reset_index(drop=True)
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].astype("string").astype(object)
                frame.loc[frame[column].isna(), column] = "(missing)"
        return frame
    if kind == "embedding":
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError("Embeddings must be one vector of the same length per item.")
        return matrix
    raise ValueError(f"Unknown feature kind {kind!r}; allowed: {', '.join(KINDS)}.")


def _take(features, rows: np.ndarray):
    return features.iloc[rows] if isinstance(features, pd.DataFrame) else features[rows]


def out_of_sample_probabilities(
    features: Sequence | np.ndarray | pd.DataFrame,
    labels: np.ndarray,
    *,
    n_classes: int,
    kind: str,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    score_unlabeled: bool = True,
) -> OutOfSample:
    """Cross-validated class probabilities for every item with a usable label.

    features: n_items texts (kind "text"), a DataFrame with n_items rows ("tabular") or an
        (n_items, d) float array ("embedding").
    labels: (n_items,) int class indices in [0, n_classes); -1 for items without a label
        (never trained on; with score_unlabeled they get the mean of the K fold models).
    folds: K of the stratified K-fold split (at least 2).
    progress: called as progress(folds_done, folds) after each fold.
    Raises CannotTrain when fewer than two classes have `folds` labeled items, or a table
    has no columns.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_items = len(labels)
    if folds < 2:
        raise ValueError("Cross-validation needs at least 2 folds.")
    features = _prepare(kind, features)
    if len(features) != n_items:
        raise ValueError(f"{len(features)} feature rows for {n_items} labels.")
    labeled = (labels >= 0) & (labels < n_classes)
    counts = np.bincount(labels[labeled], minlength=n_classes)
    excluded = [int(c) for c in np.flatnonzero((counts > 0) & (counts < folds))]
    kept_classes = np.flatnonzero(counts >= folds)
    if len(kept_classes) < 2:
        raise CannotTrain(
            f"there are too few labeled items ({folds}-fold cross-validation needs two classes "
            f"with at least {folds} labeled items each; labeled items per class: "
            f"{counts.tolist()})"
        )
    usable = labeled & np.isin(labels, kept_classes)
    rows = np.flatnonzero(usable)
    # Items without a label (-1, e.g. a tied vote) are never trained on, so every fold's model
    # may score them; they get the average of the K models.
    unlabeled = np.flatnonzero(labels < 0) if score_unlabeled else np.zeros(0, dtype=np.int64)
    probabilities = np.full((n_items, n_classes), np.nan)
    if len(unlabeled):
        probabilities[unlabeled] = 0.0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    template = pipeline_for(kind, features)
    if kind == "text":
        # Unsupervised features fitted once for all folds (see the module docstring).
        features = template.named_steps["features"].fit_transform(features)
        template = template.named_steps["model"]
    for done, (train, test) in enumerate(splitter.split(rows, labels[rows]), start=1):
        model = clone(template)
        model.fit(_take(features, rows[train]), labels[rows[train]])
        fold_probs = np.zeros((len(test), n_classes))
        fold_probs[:, model.classes_] = model.predict_proba(_take(features, rows[test]))
        probabilities[rows[test]] = fold_probs
        if len(unlabeled):
            probabilities[unlabeled[:, None], model.classes_[None, :]] += (
                model.predict_proba(_take(features, unlabeled)) / folds
            )
        if progress is not None:
            progress(done, folds)
    accuracy = float((probabilities[rows].argmax(axis=1) == labels[rows]).mean())
    scored = usable.copy()
    scored[unlabeled] = True
    return OutOfSample(
        probabilities=probabilities,
        scored=scored,
        excluded_classes=excluded,
        folds=folds,
        accuracy=accuracy,
        pipeline=kind,
        class_counts=counts.tolist(),
    )
