"""Slices on real sentences: the slice table recovers which source humans find hardest.

3 x 1000 sentences from the UCI "Sentiment Labelled Sentences" set, the source file (amazon,
imdb, yelp) as metadata. Three simulated annotators label every item with an error rate that
depends on the source (fixed seed); a simulated model errs 12% of the time everywhere.
With error rate e and two others, an annotator's expected leave-one-out HLP is
(1 - e)^2 + e^2 (agree with a unanimous majority, half credit on a 1-1 tie), so the slice table
must order the sources amazon > yelp > imdb and land near those values.
"""

import csv

import numpy as np
import pytest

from analysis.models import AnalysisRun
from analysis.services.predictions import predictions_store
from analysis.services.run_recording import analysis_run
from analysis.services.slices import slices_job
from labeling.models import Annotation
from tests.factories import add_member, make_items

pytestmark = pytest.mark.django_db

ERROR_RATE = {"amazon": 0.05, "yelp": 0.15, "imdb": 0.30}
MODEL_ERROR = 0.12


def load_sentiment(project, sentiment_data, rng):
    truth, sources, texts = [], [], {}
    for source in ("amazon", "imdb", "yelp"):
        with open(sentiment_data / f"{source}.tsv", newline="") as f:
            for n, (text, label) in enumerate(
                csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            ):
                texts[f"{source}-{n}"] = text
                truth.append(int(label))
                sources.append(source)
    items = make_items(project, texts, metadata=lambda n: {"source": sources[n]})
    item_ids = np.array([item.pk for item in items], dtype=np.int64)
    truth, sources = np.array(truth), np.array(sources)
    label_ids = list(project.labels.values_list("id", flat=True))
    guideline = project.current_guideline()
    error = np.array([ERROR_RATE[s] for s in sources])
    annotations = []
    for name in ("sim-1", "sim-2", "sim-3"):
        user = add_member(project, name)
        given = np.where(rng.random(len(truth)) < error, 1 - truth, truth)
        annotations += [
            Annotation(project=project, item_id=int(i), annotator=user, guideline=guideline,
                       label_id=label_ids[g], lead_time_ms=int(rng.integers(2000, 9000)))
            for i, g in zip(item_ids, given, strict=True)
        ]  # fmt: skip
    Annotation.objects.bulk_create(annotations, batch_size=5000)
    predicted = np.where(rng.random(len(truth)) < MODEL_ERROR, 1 - truth, truth)
    probs = np.where(predicted[:, None] == np.arange(2), 0.85, 0.15)
    predictions_store(
        project=project, model="sim", classes=["negative", "positive"],
        item_ids=item_ids, probs=probs,
    )  # fmt: skip
    return truth, sources


def test_slice_table_recovers_per_source_hlp_ordering(project, sentiment_data):
    load_sentiment(project, sentiment_data, np.random.default_rng(2015))

    run = AnalysisRun.objects.create(project=project, kind="slices", params={"model": "sim"})
    with analysis_run(run.pk) as recorder:
        slices_job(recorder)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error

    rows = [r for r in run.result["rows"] if r["field"] == "source"]
    print("\nsource   n     share  HLP    expected  model  gap     potential_gain  alpha")
    for r in rows:
        e = ERROR_RATE[r["value"]]
        print(
            f"{r['value']:<8} {r['n']:<5} {r['share']:.3f}  {r['hlp']:.4f} "
            f"{(1 - e) ** 2 + e**2:.4f}    {r['model_accuracy']:.4f} {r['gap']:+.4f} "
            f"{r['potential_gain']:+.4f}         {r['alpha']:.4f}"
        )
    hlp = {r["value"]: r["hlp"] for r in rows}
    assert sorted(hlp, key=hlp.get, reverse=True) == ["amazon", "yelp", "imdb"]
    for source, value in hlp.items():
        e = ERROR_RATE[source]
        assert value == pytest.approx((1 - e) ** 2 + e**2, abs=0.03)
    assert all(r["n"] == 1000 and r["share"] == pytest.approx(1 / 3) for r in rows)
    assert all(r["reliable"] for r in rows)
    # The model is equally good everywhere, so the gap (and gain) is largest where humans are
    # best, and the table is sorted by potential gain.
    assert [r["value"] for r in rows] == ["amazon", "yelp", "imdb"]
    gains = [r["potential_gain"] for r in run.result["rows"] if r["potential_gain"] is not None]
    assert gains == sorted(gains, reverse=True)
    # Agreement falls with the error rate as well.
    alpha = {r["value"]: r["alpha"] for r in rows}
    assert alpha["amazon"] > alpha["yelp"] > alpha["imdb"]
    # Text length is always a dimension, in quantile bins.
    lengths = [r for r in run.result["rows"] if r["field"] == "text_length"]
    assert len(lengths) == 4 and sum(r["n"] for r in lengths) == 3000
