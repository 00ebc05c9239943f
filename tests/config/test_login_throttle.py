"""Repeated failed logins from one address are refused for a while."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_eleventh_failed_attempt_is_throttled_even_with_the_right_password(
    client, make_user, settings
):
    settings.CONCORD_LOGIN_ATTEMPTS = 10
    make_user("grace", password="right-password-123")
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": "grace", "password": "wrong"})
        assert response.status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "grace", "password": "right-password-123"}
    )
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()


def test_a_few_typos_do_not_lock_anyone_out(client, make_user):
    make_user("linus", password="right-password-123")
    for _ in range(3):
        client.post("/accounts/login/", {"username": "linus", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "linus", "password": "right-password-123"}
    )
    assert response.status_code == 302
