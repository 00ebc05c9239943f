"""A failed login keeps the username typed; `/favicon.ico` answers with Concord's icon."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()  # failed logins are counted in the cache (see config/auth.py)
    yield
    cache.clear()


def test_failed_login_keeps_the_username_and_focuses_the_password(client, make_user):
    make_user("grace", password="right-password-123")
    page = client.post("/accounts/login/", {"username": "grace", "password": "wrong"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "didn't match" in html
    assert 'name="username" autocomplete="username" value="grace"' in html
    assert 'autocomplete="current-password" autofocus' in html
    assert "wrong" not in html  # the password is never sent back


def test_the_kept_username_is_escaped(client):
    html = client.post(
        "/accounts/login/", {"username": '"><script>x</script>', "password": "nope"}
    ).content.decode()
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert "<script>x</script>" not in html


def test_a_fresh_login_page_focuses_the_username(client):
    html = client.get("/accounts/login/").content.decode()
    assert 'value="" autofocus' in html


def test_favicon_ico_leads_to_the_svg_icon(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302
    assert answer["Location"] == "/static/concord/favicon.svg"
    icon = client.get(answer["Location"])
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)
