"""Every form is protected against cross-site request forgery."""

import re
from pathlib import Path

import pytest
from django.test import Client

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
POST_FORM = re.compile(r"<form\b[^>]*method=[\"']post[\"'][^>]*>(.*?)</form>", re.I | re.S)


def post_forms():
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in POST_FORM.finditer(path.read_text()):
            yield path.relative_to(TEMPLATES), match.group(1)


def test_templates_have_post_forms_to_check():
    assert len(list(post_forms())) >= 2


@pytest.mark.parametrize("template,body", list(post_forms()), ids=lambda v: str(v)[:40])
def test_every_post_form_carries_the_csrf_token(template, body):
    assert "{% csrf_token %}" in body, f"{template} has a POST form without {{% csrf_token %}}"


@pytest.mark.django_db
def test_post_without_token_is_refused(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user())
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
