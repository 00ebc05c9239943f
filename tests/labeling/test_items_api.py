"""Items over REST (reviewers and managers): metadata, label and status filters, pagination."""

import pytest

from labeling.models import Annotation, Item, Membership, Review
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    project = make_project(manager, labels=("negative", "positive"), overlap=2)
    sources = ["amazon", "imdb", "yelp"]
    make_items(
        project,
        [f"review {i}" for i in range(30)],
        prefix="r",
        metadata=lambda i: {"source": sources[i % 3], "stars": i % 5, "verified": i % 2 == 0},
    )
    return project


@pytest.fixture
def api(manager, api_client_for):
    return api_client_for(manager)


def ids(answer) -> list[str]:
    assert answer.status_code == 200, answer.json()
    return [row["external_id"] for row in answer.json()["results"]]


def test_items_list_has_contract_fields_and_counts(project, api):
    body = api.get(f"/api/v1/projects/{project.pk}/items/?page_size=2").json()
    assert body["count"] == 30
    assert body["previous"] is None
    assert "page=2" in body["next"] and "page_size=2" in body["next"]
    first = body["results"][0]
    assert set(first) >= {"id", "external_id", "data", "metadata", "n_annotations"}
    assert first["external_id"] == "r0"
    assert first["metadata"] == {"source": "amazon", "stars": 0, "verified": True}
    assert (first["n_annotations"], first["status"]) == (0, "unlabeled")


def test_filter_by_metadata_in_every_spelling(project, api):
    url = f"/api/v1/projects/{project.pk}/items/?page_size=100"
    amazon = [f"r{i}" for i in range(0, 30, 3)]
    assert ids(api.get(f"{url}&meta_source=amazon")) == amazon
    assert ids(api.get(f"{url}&metadata.source=amazon")) == amazon
    assert ids(api.get(f"{url}&metadata__source=amazon")) == amazon
    # numbers and booleans match their JSON values; keys combine with AND, repeats with OR
    assert ids(api.get(f"{url}&meta_stars=4")) == ["r4", "r9", "r14", "r19", "r24", "r29"]
    assert ids(api.get(f"{url}&meta_stars=4&meta_verified=true")) == ["r4", "r14", "r24"]
    assert ids(api.get(f"{url}&meta_source=imdb&meta_source=yelp&meta_stars=0")) == [
        "r5",
        "r10",
        "r20",
        "r25",
    ]
    assert ids(api.get(f"{url}&meta_source=nowhere")) == []
    assert ids(api.get(f"{url}&meta_odd%22key'=x")) == []  # any key is safe


def test_filter_by_label_covers_annotations_and_reviews(project, api, make_user):
    guideline = project.current_guideline()
    negative, positive = project.labels.all()
    ann = add_member(project, "ann", Membership.Role.ANNOTATOR)
    items = {item.external_id: item for item in project.items.all()}
    Annotation.objects.create(
        project=project, item=items["r1"], annotator=ann, guideline=guideline, label=positive
    )
    Annotation.objects.create(
        project=project, item=items["r2"], annotator=ann, guideline=guideline, label=negative
    )
    Review.objects.create(item=items["r3"], label=positive)
    url = f"/api/v1/projects/{project.pk}/items/"
    assert ids(api.get(f"{url}?label=positive")) == ["r1", "r3"]
    assert ids(api.get(f"{url}?label=negative")) == ["r2"]
    assert ids(api.get(f"{url}?label=positive&meta_source=imdb")) == ["r1"]
    unknown = api.get(f"{url}?label=maybe")
    assert unknown.status_code == 400 and "label" in unknown.json()


def test_filter_by_status_follows_overlap_and_reviews(project, api, make_user):
    guideline = project.current_guideline()
    negative = project.labels.first()
    items = {item.external_id: item for item in project.items.all()}
    a, b = make_user("a"), make_user("b")
    for item_id, annotators in (("r0", [a]), ("r1", [a, b]), ("r2", [a, b])):
        for user in annotators:
            Annotation.objects.create(
                project=project, item=items[item_id], annotator=user, guideline=guideline,
                label=negative,
            )  # fmt: skip
    Review.objects.create(item=items["r2"], label=negative)
    url = f"/api/v1/projects/{project.pk}/items/?page_size=100"
    assert ids(api.get(f"{url}&status=in_progress")) == ["r0"]
    assert ids(api.get(f"{url}&status=complete")) == ["r1"]
    assert ids(api.get(f"{url}&status=reviewed")) == ["r2"]
    assert len(ids(api.get(f"{url}&status=unlabeled"))) == 27
    assert api.get(f"{url}&status=done").status_code == 400
    detail = api.get(f"/api/v1/projects/{project.pk}/items/{items['r1'].pk}/").json()
    assert detail["n_annotations"] == 2 and detail["status"] == "complete"
    assert sorted(row["annotator"] for row in detail["annotations"]) == ["a", "b"]
    assert {row["label"] for row in detail["annotations"]} == {"negative"}
    assert {row["guideline_version"] for row in detail["annotations"]} == {1}


def test_page_size_is_capped_at_1000(manager, api_client_for):
    project = make_project(manager)
    make_items(project, ["t"] * 1005, prefix="")
    client = api_client_for(manager)
    url = f"/api/v1/projects/{project.pk}/items/"
    big = client.get(f"{url}?page_size=5000").json()
    assert big["count"] == 1005 and len(big["results"]) == 1000
    assert len(client.get(f"{url}?page_size=1000&page=2").json()["results"]) == 5
    assert len(client.get(url).json()["results"]) == 100
    assert client.get(f"{url}?page=99").status_code == 404


def test_item_of_another_project_is_not_found(project, api, make_user):
    other = make_project(make_user("zed"), name="Other")
    foreign = Item.objects.create(project=other, external_id="x", data={"text": "t"})
    answer = api.get(f"/api/v1/projects/{project.pk}/items/{foreign.pk}/")
    assert answer.status_code == 404
