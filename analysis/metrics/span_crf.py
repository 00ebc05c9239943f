"""Out-of-fold token class probabilities from a built-in linear-chain CRF, for span projects.

Confident learning on tokens (``cleanlab.token_classification``) needs, for every token, the
probabilities of a model that did not see that token's sentence: otherwise the model has
memorised the error and cannot flag it. The sentences (items) are split into K folds and each
is scored only by the CRF trained on the other K-1 folds; a sentence without usable tags is
never trained on and is scored by the mean of the K fold models.

The model is sklearn-crfsuite's linear-chain CRF (L-BFGS) over standard token features: the
word, its lower case, its shape, prefixes and suffixes of 1-3 characters, title/upper/digit
flags, and the lower-cased neighbouring words (``BOS``/``EOS`` at the sentence edges). It is
trained on IOB2 tag names (``"O"``, ``"B-0"``, ``"I-0"``, ``"B-1"``, ...: entity type indices,
not names) and its marginals are collapsed to types: column 0 = ``O``, column 1 + t =
P(B-t) + P(I-t), so a token's row sums to 1.

Entity types found in fewer than K training sentences cannot be spread over the folds (some
fold's model would never see them), as classes with fewer than K items for classification
(``out_of_sample``). Such a type is reported in ``excluded_types`` and the sentences that
contain it are neither trained on nor scored (NaN rows, ``scored`` False): training on them
with the rare type read as ``O`` would teach the model that those words are ``O``, and scoring
them would flag every one of their tokens for a type the model cannot predict. The caller
leaves them out of issue finding, as it does for excluded classes.

Pure: numpy, scikit-learn and sklearn-crfsuite only, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pycrfsuite
from sklearn.model_selection import StratifiedKFold
from sklearn_crfsuite import CRF

from analysis.metrics.out_of_sample import CannotTrain

# L-BFGS settings, measured on the tests' simulated crowd (3,000 real review sentences with
# spliced entities, 75,266 tokens, 2,783 of them given a wrong type; 5 folds; cleanlab's
# find_label_issues on the out-of-fold rows; tests/analysis/test_span_crf.py):
#   c1, c2, iterations    flagged   precision  recall   CRF seconds (one core, unloaded)
#   0.05, 0.01, 50          2,335     0.997     0.836     10.9
#   0.1,  0.1,  50          2,296     0.998     0.824     10.9
#   0.5,  0.01, 50          2,291     0.997     0.821     10.9
#   1.0,  0.01, 50          2,297     0.999     0.825     11.1
#   0.5,  0.01, 25          2,341     0.999     0.840      7.3
#   0.5,  0.01, 100         2,318     0.997     0.830     22.3
# The flags hardly depend on the regularisation; c1 = 0.5 (L1) is kept because it drops the
# features seen in one sentence only (the model stays small and does not lean on them), and
# c2 = 0.01 only smooths what L1 keeps. Time grows linearly with the iterations while the
# flags barely move between 25 and 100; 50 leaves room for entity types less regular than
# the simulation's. Cost at 50: 20,000 demo sentences (249,810 tokens), 5 folds, took 35 s of
# one core and raised the peak RSS by 72 MB (341 MB, of which 269 MB before the call).
ALGORITHM = "lbfgs"
C1 = 0.5
C2 = 0.01
MAX_ITERATIONS = 50

_UPPER = re.compile(r"[A-Z]+")
_LOWER = re.compile(r"[a-z]+")
_DIGIT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class TokenModelResult:
    """Result of ``out_of_fold_token_probabilities``.

    probabilities: one (n_tokens, 1 + n_types) float64 array per sentence; column 0 = O,
        column 1 + t = entity type t (B- and I- summed); rows sum to 1. Every row of a
        sentence comes from models that never saw that sentence's tags; the rows of a
        sentence that is not scored are NaN.
    scored: (n_sentences,) bool, True where the sentence's rows hold probabilities.
    folds: K.
    excluded_types: type indices given in some sentence but in fewer than K training sentences
        (the sentences that mention them are neither trained on nor scored; leaving those out
        may leave another type in fewer than K, which is then excluded too).
    token_accuracy: share of the trained-on tokens whose out-of-fold most probable column
        equals their given type (0 = O, 1 + t).
    type_counts: (n_types,) int64, sentences with every token tagged that contain each type
        (before any exclusion).
    """

    probabilities: list[np.ndarray]
    scored: np.ndarray
    folds: int
    excluded_types: list[int]
    token_accuracy: float
    type_counts: np.ndarray


def word_shape(word: str) -> str:
    """The word's letters and digits as X, x and d, runs collapsed: "Hopper" -> "Xx",
    "2026" -> "d", "Berners-Lee" -> "Xx-Xx", "iPhone" -> "xXx"."""
    shape = _UPPER.sub("X", word)
    shape = _LOWER.sub("x", shape)
    return _DIGIT.sub("d", shape)


def token_features(tokens: list[str]) -> list[dict[str, str | bool]]:
    """One feature dict per token (python-crfsuite format: a string value v of key k is the
    binary feature "k=v", a bool is a binary feature)."""
    lower = [token.lower() for token in tokens]
    features = []
    for i, word in enumerate(tokens):
        feature: dict[str, str | bool] = {
            "bias": True,
            "word": word,
            "lower": lower[i],
            "shape": word_shape(word),
            "title": word.istitle(),
            "upper": word.isupper(),
            "digit": word.isdigit(),
        }
        for n in (1, 2, 3):
            feature[f"prefix{n}"] = lower[i][:n]
            feature[f"suffix{n}"] = lower[i][-n:]
        feature["previous"] = lower[i - 1] if i > 0 else "BOS"
        feature["next"] = lower[i + 1] if i + 1 < len(tokens) else "EOS"
        features.append(feature)
    return features


def tag_name(tag: int) -> str:
    """IOB2 tag code (``span_tags``) -> the name the CRF is trained on: "O", "B-<t>", "I-<t>"."""
    if tag <= 0:
        return "O"
    return f"{'B' if tag % 2 == 1 else 'I'}-{(tag - 1) // 2}"


def _strata(sentence_types: list[np.ndarray], counts: np.ndarray, folds: int) -> np.ndarray:
    """Each sentence's stratum: its rarest entity type (by training sentences), or -1 for a
    sentence without entities. Strata smaller than K are pooled (-2), and a pool still
    smaller than K joins the largest stratum, so that every stratum can be split K ways."""
    strata = np.array(
        [int(types[np.argmin(counts[types])]) if len(types) else -1 for types in sentence_types],
        dtype=np.int64,
    )
    values, sizes = np.unique(strata, return_counts=True)
    small = np.isin(strata, values[sizes < folds])
    strata[small] = -2
    if 0 < small.sum() < folds:
        values, sizes = np.unique(strata[~small], return_counts=True)
        strata[small] = values[np.argmax(sizes)]
    return strata


def _marginals(model: CRF, words: list[str], n_types: int) -> np.ndarray:
    """The CRF's per-token tag marginals collapsed to types: (n_tokens, 1 + n_types)."""
    tagger = model.tagger_
    tagger.set(pycrfsuite.ItemSequence(token_features(words)))
    matrix = np.zeros((len(words), 1 + n_types))
    for name in tagger.labels():
        column = 0 if name == "O" else 1 + int(name[2:])
        matrix[:, column] += [tagger.marginal(name, i) for i in range(len(words))]
    return matrix


def out_of_fold_token_probabilities(
    tokens: list[list[str]],
    tags: list[np.ndarray | None],
    *,
    n_types: int,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> TokenModelResult:
    """Cross-validated token type probabilities for every sentence (item) of a span project.

    tokens: the words of each sentence (the contract's tokens).
    tags: per sentence, (n_tokens,) int IOB2 codes (``span_tags``: 0 = O, 2t + 1 = B-t,
        2t + 2 = I-t), or None. A sentence whose tags are None or hold any -1 (an undecided
        token) is not trained on; it is scored by the mean of the K fold models.
    folds: K; sentences are split by StratifiedKFold (shuffled, ``seed``) stratified on each
        sentence's rarest entity type, so no sentence is scored by a model that saw it.
    progress: called as progress(fraction_done, "fold k of K") after each fold.
    Raises CannotTrain when fewer than K sentences can be trained on, or no entity type is in
    at least K of them (a CRF needs O and at least one type).
    """
    n_sentences = len(tokens)
    if len(tags) != n_sentences:
        raise ValueError(f"{len(tags)} tag sequences for {n_sentences} sentences.")
    if folds < 2:
        raise ValueError("Cross-validation needs at least 2 folds.")
    given: list[np.ndarray | None] = []
    for words, sentence_tags in zip(tokens, tags, strict=True):
        if sentence_tags is None:
            given.append(None)
            continue
        sentence_tags = np.asarray(sentence_tags, dtype=np.int64)
        if len(sentence_tags) != len(words):
            raise ValueError(f"{len(sentence_tags)} tags for a sentence of {len(words)} tokens.")
        if sentence_tags.max(initial=0) > 2 * n_types:
            raise ValueError(f"a tag code above {2 * n_types} for {n_types} entity types.")
        given.append(sentence_tags)
    # Trainable: tags given, every token decided, and at least one token.
    trainable = np.array(
        [t is not None and len(t) > 0 and bool((t >= 0).all()) for t in given], dtype=bool
    )
    # The types each sentence's given tags mention (undecided tokens aside).
    sentence_types = [
        np.unique((t[t > 0] - 1) // 2) if t is not None else np.zeros(0, dtype=np.int64)
        for t in given
    ]
    contains = np.zeros((n_sentences, n_types), dtype=bool)
    for s, types in enumerate(sentence_types):
        contains[s, types] = True
    mentioned = contains.any(axis=0)
    type_counts = contains[trainable].sum(axis=0).astype(np.int64)
    # A rare type's sentences leave training, which may leave another type rare: repeat until
    # every type still trained on is in at least K training sentences.
    excluded_mask = np.zeros(n_types, dtype=bool)
    while True:
        training = trainable & ~contains[:, excluded_mask].any(axis=1)
        counts = contains[training].sum(axis=0)
        rare = mentioned & (counts < folds) & ~excluded_mask
        if not rare.any():
            break
        excluded_mask |= rare
    excluded = [int(t) for t in np.flatnonzero(excluded_mask)]
    with_excluded = contains[:, excluded_mask].any(axis=1)
    rows = np.flatnonzero(training)
    if len(rows) < folds:
        raise CannotTrain(
            f"there are too few sentences to learn from ({folds}-fold cross-validation needs at "
            f"least {folds} sentences with every token tagged; there are {len(rows)})"
        )
    if not (mentioned & ~excluded_mask).any():
        raise CannotTrain(
            f"no entity type is in enough sentences ({folds}-fold cross-validation needs a type "
            f"in at least {folds} sentences; sentences per type: {type_counts.tolist()})"
        )
    # Sentences never trained on, scored by the mean of the fold models: no tags, or a tie.
    untrained = np.flatnonzero(~trainable & ~with_excluded)
    names = [
        [tag_name(int(t)) for t in g] if ok else None for g, ok in zip(given, training, strict=True)
    ]
    probabilities = [np.full((len(words), 1 + n_types), np.nan) for words in tokens]
    for s in untrained:
        probabilities[s][:] = 0.0
    strata = _strata([sentence_types[s] for s in rows], counts, folds)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # Features are made again for each fold rather than kept: the trainer copies what it reads
    # into its own compact form, and 20,000 sentences' feature sequences would hold about
    # 150 MB for the whole run (measured) to save about a second per fold.
    for done, (train, test) in enumerate(splitter.split(rows, strata), start=1):
        model = CRF(algorithm=ALGORITHM, c1=C1, c2=C2, max_iterations=MAX_ITERATIONS)
        model.fit((token_features(tokens[s]) for s in rows[train]), [names[s] for s in rows[train]])
        for s in rows[test]:
            probabilities[s] = _marginals(model, tokens[s], n_types)
        for s in untrained:
            if len(tokens[s]):
                probabilities[s] += _marginals(model, tokens[s], n_types) / folds
        if progress is not None:
            progress(done / folds, f"fold {done} of {folds}")
    scored = training.copy()
    scored[untrained] = True
    predicted = np.concatenate([probabilities[s].argmax(axis=1) for s in rows])
    truth = np.concatenate([np.where(given[s] > 0, (given[s] - 1) // 2 + 1, 0) for s in rows])
    token_accuracy = float((predicted == truth).mean())
    return TokenModelResult(
        probabilities=probabilities,
        scored=scored,
        folds=folds,
        excluded_types=excluded,
        token_accuracy=token_accuracy,
        type_counts=type_counts,
    )
