"""A request that finds the database gone gets a clean 503, not a 500 or a stack trace."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_unreachable():
    original = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/concord.sqlite3"
    else:
        connection.settings_dict["PORT"] = 1  # nothing listens there
    yield
    connection.close()
    connection.settings_dict.update(original)


@pytest.fixture
def client_logged_in(client, make_user):
    user = make_user()
    client.force_login(user)
    return client


def test_page_answers_503_page(client_logged_in, database_unreachable):
    client_logged_in.raise_request_exception = False
    response = client_logged_in.get("/")
    assert response.status_code == 503
    body = response.content.decode()
    assert "Temporarily unavailable" in body
    assert "Traceback" not in body and "OperationalError" not in body


def test_api_answers_503_json(client_logged_in, database_unreachable):
    client_logged_in.raise_request_exception = False
    response = client_logged_in.get("/api/v1/runs/1/")
    assert response.status_code == 503
    assert "database is unavailable" in response.json()["detail"]
