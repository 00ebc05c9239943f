"""Accounts and members from the product: staff create accounts and set passwords from the
Members page; managers add, re-role and remove members; a project keeps a manager."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Annotation, Lease, Membership
from labeling.services.accounts import account_create, account_password_set
from labeling.services.annotating import annotation_submit
from labeling.services.projects import LAST_MANAGER, member_remove, member_set
from labeling.services.queue import next_item
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-enough-password"


def roles(project) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# ---- services ------------------------------------------------------------------------------


def test_the_last_manager_can_be_neither_demoted_nor_removed(make_user):
    mia = make_user("mia")
    project = make_project(mia)
    with pytest.raises(ValidationError) as demoted:
        member_set(project=project, user=mia, role=Membership.Role.REVIEWER)
    assert demoted.value.message_dict == {"role": [LAST_MANAGER]}
    with pytest.raises(ValidationError) as removed:
        member_remove(project=project, user=mia)
    assert removed.value.message_dict == {"user": [LAST_MANAGER]}
    assert roles(project) == {"mia": "manager"}

    # With a second manager, either may step down.
    bo = add_member(project, "bo", Membership.Role.MANAGER)
    member_set(project=project, user=mia, role=Membership.Role.ANNOTATOR)
    with pytest.raises(ValidationError):
        member_remove(project=project, user=bo)
    assert roles(project) == {"mia": "annotator", "bo": "manager"}


def test_removing_a_member_keeps_their_labels_and_releases_their_claims(make_user):
    mia = make_user("mia")
    project = make_project(mia)
    make_items(project, ["t"] * 3)
    ann = add_member(project, "ann")
    labeled = next_item(project=project, annotator=ann)
    annotation_submit(item=labeled, annotator=ann, label="positive")
    claimed = next_item(project=project, annotator=ann)
    assert Lease.objects.filter(item=claimed, annotator=ann).exists()

    member_remove(project=project, user=ann)
    assert roles(project) == {"mia": "manager"}
    assert Annotation.objects.filter(annotator=ann, item=labeled).count() == 1
    assert not Lease.objects.filter(annotator=ann).exists()
    with pytest.raises(ValidationError, match="not a member"):
        member_remove(project=project, user=ann)


def test_staff_create_accounts_with_checked_usernames_and_passwords(make_user):
    staff = make_user("sam", is_staff=True)
    user = account_create(username=" newbie ", password=PASSWORD, created_by=staff)
    assert user.username == "newbie" and user.is_active and user.check_password(PASSWORD)
    for username, password, field in [
        ("newbie", PASSWORD, "username"),  # taken
        ("bad name!", PASSWORD, "username"),
        ("", PASSWORD, "username"),
        ("other", "short", "password"),
        ("other", "password123", "password"),  # too common
    ]:
        with pytest.raises(ValidationError) as refused:
            account_create(username=username, password=password, created_by=staff)
        assert list(refused.value.message_dict) == [field], (username, password)
    with pytest.raises(PermissionDenied):
        account_create(username="x", password=PASSWORD, created_by=make_user("mia"))
    assert not User.objects.filter(username__in=["other", "x", "bad name!"]).exists()


def test_a_new_password_locks_out_the_old_one_and_its_api_token(make_user):
    staff = make_user("sam", is_staff=True)
    ann = make_user("ann")
    token = Token.objects.create(user=ann)
    account_password_set(user=ann, password=PASSWORD, changed_by=staff)
    ann.refresh_from_db()
    assert ann.check_password(PASSWORD)
    assert not Token.objects.filter(pk=token.pk).exists()
    with pytest.raises(ValidationError):
        account_password_set(user=ann, password="123", changed_by=staff)


def test_only_a_superuser_sets_a_staff_or_superuser_password(make_user):
    staff = make_user("sam", is_staff=True)
    other_staff = make_user("sue", is_staff=True)
    root = make_user("root", is_staff=True, is_superuser=True)
    for target in (other_staff, root):
        with pytest.raises(PermissionDenied):
            account_password_set(user=target, password=PASSWORD, changed_by=staff)
    account_password_set(user=other_staff, password=PASSWORD, changed_by=root)
    other_staff.refresh_from_db()
    assert other_staff.check_password(PASSWORD)
    with pytest.raises(PermissionDenied):
        account_password_set(user=other_staff, password=PASSWORD, changed_by=make_user("mia"))


# ---- the Members page ----------------------------------------------------------------------


def test_add_member_form_defaults_to_annotator(client, make_user):
    mia = make_user("mia")
    project = make_project(mia)
    client.force_login(mia)
    html = client.get(f"/projects/{project.pk}/members/").content.decode()
    assert '<option value="annotator" selected>Annotator</option>' in html
    make_user("ann")
    client.post(f"/projects/{project.pk}/members/", {"username": "ann", "role": "annotator"})
    assert roles(project) == {"mia": "manager", "ann": "annotator"}
    unknown = client.post(
        f"/projects/{project.pk}/members/", {"username": "nobody", "role": "annotator"}
    )
    assert unknown.status_code == 400
    assert "No account has this name: ask a staff member to create it." in unknown.content.decode()


def test_manager_changes_a_role_and_removes_a_member_from_the_page(client, make_user):
    mia = make_user("mia")
    project = make_project(mia)
    ann = add_member(project, "ann")
    client.force_login(mia)
    base = f"/projects/{project.pk}/members"
    answer = client.post(f"{base}/{ann.pk}/role/", {"row-role": "reviewer"}, follow=True)
    assert "ann is now reviewer." in answer.content.decode()
    assert roles(project)["ann"] == "reviewer"
    answer = client.post(f"{base}/{ann.pk}/remove/", follow=True)
    assert "ann was removed from the project; their labels stay." in answer.content.decode()
    assert roles(project) == {"mia": "manager"}
    # gone from the project: its pages answer 404 to them
    client.force_login(ann)
    assert client.get(f"/projects/{project.pk}/").status_code == 404


def test_page_refuses_to_demote_or_remove_the_last_manager_with_a_message(client, make_user):
    mia = make_user("mia")
    project = make_project(mia)
    client.force_login(mia)
    base = f"/projects/{project.pk}/members"
    for url, data in [
        (f"{base}/{mia.pk}/role/", {"row-role": "annotator"}),
        (f"{base}/{mia.pk}/remove/", {}),
    ]:
        html = client.post(url, data, follow=True).content.decode()
        assert "A project needs at least one manager: make someone else manager first." in html
    html = client.post(f"{base}/", {"username": "mia", "role": "reviewer"}).content.decode()
    assert "A project needs at least one manager" in html
    assert roles(project) == {"mia": "manager"}


def test_a_manager_leaving_lands_on_the_project_list(client, make_user):
    mia = make_user("mia")
    project = make_project(mia)
    add_member(project, "bo", Membership.Role.MANAGER)
    client.force_login(mia)
    answer = client.post(f"/projects/{project.pk}/members/{mia.pk}/remove/")
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert roles(project) == {"bo": "manager"}


def test_staff_create_an_account_into_the_project_and_set_a_password(client, make_user):
    sam = make_user("sam", is_staff=True)
    project = make_project(sam)
    client.force_login(sam)
    base = f"/projects/{project.pk}/members"
    html = client.get(f"{base}/").content.decode()
    assert "Create an account" in html and "Set a new password" in html
    answer = client.post(
        f"{base}/accounts/",
        {"account-username": "newbie", "account-password": PASSWORD, "account-role": "reviewer"},
        follow=True,
    )
    assert "Account newbie created and added as reviewer." in answer.content.decode()
    newbie = User.objects.get(username="newbie")
    assert newbie.check_password(PASSWORD) and roles(project)["newbie"] == "reviewer"

    weak = client.post(
        f"{base}/accounts/",
        {"account-username": "other", "account-password": "short", "account-role": "annotator"},
    )
    assert weak.status_code == 400 and "This password is too short" in weak.content.decode()
    assert not User.objects.filter(username="other").exists()

    answer = client.post(
        f"{base}/password/",
        {"password-user": newbie.pk, "password-password": "another-long-password"},
        follow=True,
    )
    assert "New password set for newbie." in answer.content.decode()
    newbie.refresh_from_db()
    assert newbie.check_password("another-long-password")
    # Only members of this project can be chosen.
    outsider = make_user("outsider")
    refused = client.post(
        f"{base}/password/",
        {"password-user": outsider.pk, "password-password": "another-long-password"},
    )
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()


def test_a_manager_who_is_not_staff_gets_no_account_forms_and_403(client, make_user):
    mia = make_user("mia")
    project = make_project(mia)
    ann = add_member(project, "ann")
    client.force_login(mia)
    base = f"/projects/{project.pk}/members"
    html = client.get(f"{base}/").content.decode()
    assert "Create an account" not in html and "Ask a staff member" in html
    data = {"account-username": "x", "account-password": PASSWORD, "account-role": "annotator"}
    assert client.post(f"{base}/accounts/", data).status_code == 403
    data = {"password-user": ann.pk, "password-password": PASSWORD}
    assert client.post(f"{base}/password/", data).status_code == 403
    assert not User.objects.filter(username="x").exists()


# ---- the API -------------------------------------------------------------------------------


def test_api_removes_a_member_and_refuses_the_last_manager(make_user):
    mia = make_user("mia")
    project = make_project(mia)
    ann = add_member(project, "ann")
    api = api_for(mia)
    base = f"/api/v1/projects/{project.pk}/members"
    assert api.get(f"{base}/{ann.pk}/").json() == {
        "user_id": ann.pk,
        "username": "ann",
        "role": "annotator",
        "paused_at": None,
        "pause_reason": "",
        "onboarded_at": None,
    }
    assert api.delete(f"{base}/{ann.pk}/").status_code == 204
    assert api.delete(f"{base}/{ann.pk}/").status_code == 404
    last = api.delete(f"{base}/{mia.pk}/")
    assert last.status_code == 400 and last.json()["user"] == [LAST_MANAGER]
    demote = api.patch(f"{base}/{mia.pk}/", {"role": "annotator"}, format="json")
    assert demote.status_code == 400 and demote.json()["role"] == [LAST_MANAGER]
    demote = api.post(f"{base}/", {"username": "mia", "role": "reviewer"}, format="json")
    assert demote.status_code == 400 and demote.json()["role"] == [LAST_MANAGER]
    assert roles(project) == {"mia": "manager"}


def test_api_patch_changes_a_role(make_user):
    mia = make_user("mia")
    project = make_project(mia)
    ann = add_member(project, "ann")
    answer = api_for(mia).patch(
        f"/api/v1/projects/{project.pk}/members/{ann.pk}/", {"role": "reviewer"}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["role"] == "reviewer"
    assert roles(project)["ann"] == "reviewer"


def test_api_user_creation_goes_through_the_account_service(make_user):
    staff = api_for(make_user("sam", is_staff=True))
    created = staff.post("/api/v1/users/", {"username": "newbie", "password": PASSWORD})
    assert created.status_code == 201 and created.json()["username"] == "newbie"
    assert User.objects.get(username="newbie").check_password(PASSWORD)
    taken = staff.post("/api/v1/users/", {"username": "newbie", "password": PASSWORD})
    assert taken.status_code == 400 and "username" in taken.json()
    weak = staff.post("/api/v1/users/", {"username": "other", "password": "password"})
    assert weak.status_code == 400 and "password" in weak.json()
    refused = api_for(make_user("mia")).post(
        "/api/v1/users/", {"username": "x", "password": PASSWORD}
    )
    assert refused.status_code == 403
