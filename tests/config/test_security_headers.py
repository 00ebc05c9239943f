"""Every page carries the security headers a browser needs to contain mistakes."""

import pytest

pytestmark = pytest.mark.django_db


def test_login_page_sends_csp_and_the_standard_headers(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_api_answers_carry_them_too(client):
    response = client.get("/api/v1/projects/")
    assert response.status_code in (401, 403)
    assert "Content-Security-Policy" in response
    assert response["X-Content-Type-Options"] == "nosniff"
