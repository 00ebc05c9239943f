"""Export parameters (analysis/exports/params.py): one declaration, validated with the allowed
values named, documented in the OpenAPI schema and shown by the export page's form."""

from dataclasses import fields

import pytest
import yaml
from django.http import QueryDict

from analysis.exports.formats import FORMATS
from analysis.exports.params import BY_NAME, PARAMETERS, ExportParams, export_params_parse
from tests.analysis.exports.voted_project import get, make_voted_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(manager):
    return make_voted_project(manager)


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"format": "xml"}, "format", "csv, jsonl, parquet, labelstudio"),
        ({"labels": "vote"}, "labels", "majority, dawid_skene, crowdlab, reviewed"),
        ({"exclude": "unresolved,junk"}, "exclude", "open_issues, ambiguous, unresolved"),
        ({"include": "everything"}, "include", "annotations"),
        ({"min_agreement": "1.5"}, "min_agreement", "0 to 1"),
        ({"min_agreement": "high"}, "min_agreement", "0 to 1"),
        ({"guideline_version": "7"}, "guideline_version", "1, 2"),
        ({"labels": "crowdlab"}, "labels", "label-issue run"),
    ],
)
def test_bad_parameters_answer_400_with_the_allowed_values(project, params, field, allowed):
    response = get(project, **params)
    assert response.status_code == 400
    assert allowed in str(response.json()[field])
    assert "detail" in response.json()


def test_annotators_get_403(project):
    assert get(project, user=project.annotators[0]).status_code == 403


def test_the_parameters_are_declared_once(project):
    assert [f.name for f in fields(ExportParams)] == [p.name for p in PARAMETERS]
    assert BY_NAME["format"].choices == tuple(FORMATS)
    assert tuple(FORMATS) == ("csv", "jsonl", "parquet", "labelstudio", "conll")
    assert BY_NAME["guideline_version"].choices_for(project) == (1, 2)


def test_a_query_written_from_parameters_parses_back_to_them(project):
    params = ExportParams(
        format="parquet",
        labels="dawid_skene",
        exclude=("ambiguous", "open_issues"),
        min_agreement=0.75,
        guideline_version=2,
        include=("annotations",),
    )
    query = params.as_query()
    assert query["exclude"] == "ambiguous,open_issues"
    assert export_params_parse(query, project=project) == params
    assert ExportParams.from_stored(params.as_dict()) == params
    defaults = export_params_parse({}, project=project)
    assert (defaults.format, defaults.labels, defaults.exclude) == ("csv", "majority", ())


def test_repeated_and_comma_separated_values_are_the_same(project):
    repeated = QueryDict("exclude=unresolved&exclude=ambiguous")
    comma = QueryDict("exclude=ambiguous,unresolved")
    assert export_params_parse(repeated, project=project).exclude == ("ambiguous", "unresolved")
    assert export_params_parse(comma, project=project).exclude == ("ambiguous", "unresolved")


def test_the_openapi_schema_documents_every_parameter(project, api_client_for):
    client = api_client_for(project.manager)
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/projects/{project_id}/export/"]["get"]
    documented = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(documented) == set(BY_NAME)
    assert sorted(documented["format"]["schema"]["enum"]) == sorted(FORMATS)
    exclude = documented["exclude"]["schema"]["items"]["enum"]
    assert sorted(exclude) == sorted(BY_NAME["exclude"].choices)
    assert documented["exclude"]["explode"] is False
    assert documented["min_agreement"]["schema"]["type"] == "number"
