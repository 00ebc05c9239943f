import json
import uuid

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from config.celery import JobQueueUnavailable
from labeling import selectors
from labeling.filters import ItemFilter, ItemStatus, item_status, with_counts
from labeling.forms import (
    AccountCreateForm,
    DashboardForm,
    GuidelineDraftForm,
    GuidelinePublishForm,
    ImportForm,
    LabelFormSet,
    MemberForm,
    MemberRoleForm,
    PasswordSetForm,
    ProjectCreateForm,
    ProjectEditForm,
    WebhookForm,
    WorkedExampleForm,
    label_rows,
)
from labeling.gold_scores import gold_accuracy, gold_mistakes
from labeling.importing.jobs import import_submit
from labeling.item_display import item_display
from labeling.models import (
    Annotation,
    GuidelineSeen,
    ImportBatch,
    Item,
    Membership,
    Project,
    Review,
    Webhook,
)
from labeling.permissions import (
    ANNOTATOR,
    MANAGER,
    REVIEWER,
    ProjectAccess,
    project_for,
    projects_visible_to,
)
from labeling.services import queue_scores
from labeling.services.accounts import account_create, account_password_set
from labeling.services.annotating import (
    ItemFull,
    annotation_skip,
    annotation_submit,
    annotation_undo_last,
)
from labeling.services.gold import AnnotatorPaused, membership_continue
from labeling.services.guidelines import (
    guideline_diff,
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
    worked_example_remove,
)
from labeling.services.projects import (
    member_remove,
    member_set,
    project_create,
    project_labels_set,
    project_update,
)
from labeling.services.queue import next_item
from labeling.services.webhooks import (
    webhook_create,
    webhook_delete,
    webhook_test,
    webhook_update,
)

User = get_user_model()


@login_required
def project_list(request):
    projects = projects_visible_to(request.user).prefetch_related("labels")
    return render(request, "labeling/project_list.html", {"projects": projects})


# ---- projects, members, guidelines, items (projects helper) -------------------------------

ITEMS_PAGE_SIZE = 50


def _form_errors_from(exc: ValidationError, form) -> None:
    """Show a service's ValidationError on the form (field errors where the field exists)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
def project_create_page(request):
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(**form.cleaned_data, created_by=request.user)
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("labeling:project_detail", pk=project.pk)
    return render(request, "labeling/project_create.html", {"form": form})


@login_required
def project_detail(request, pk):
    access = project_for(request.user, pk, min_role=ANNOTATOR)
    project = access.project
    items = Item.objects.filter(project=project)
    annotations = Annotation.objects.filter(project=project)
    members = dict(
        project.memberships.values_list("role").annotate(n=Count("id")).values_list("role", "n")
    )
    context = {
        "access": access,
        "project": project,
        "labels": project.labels.all(),
        "guideline": project.current_guideline(),
        "n_items": items.count(),
        "n_annotations": annotations.count(),
        "n_mine": annotations.filter(annotator=request.user).count(),
        "members": [(role.label, members.get(role.value, 0)) for role in Membership.Role],
    }
    if access.at_least(REVIEWER):
        context["n_reviewed"] = Review.objects.filter(item__project=project).count()
    return render(request, "labeling/project_detail.html", context)


@login_required
def project_edit(request, pk):
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    form = ProjectEditForm(request.POST or None, instance=Project.objects.get(pk=project.pk))
    initial = list(project.labels.values("id", "name", "key"))
    labels = LabelFormSet(request.POST or None, initial=initial, prefix="labels")
    if request.method == "POST" and form.is_valid() and labels.is_valid():
        try:
            with transaction.atomic():
                fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
                project_update(project=project, user=request.user, **fields)
                project_labels_set(project=project, labels=label_rows(labels))
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            messages.success(request, "Project saved.")
            return redirect("labeling:project_detail", pk=project.pk)
    return render(
        request,
        "labeling/project_edit.html",
        {
            "access": access,
            "project": project,
            "form": form,
            "labels": labels,
            "n_suggestions": selectors.suggestion_count(project=project),
        },
    )


def _members_page(request, access: ProjectAccess, status=200, **forms_by_name):
    """The members page; forms given by name (bound, with errors) replace the blank ones."""
    project = access.project
    memberships = list(project.memberships.select_related("user").order_by("user__username"))
    members = [(m.user_id, m.user.username) for m in memberships]
    context = {
        "access": access,
        "project": project,
        "memberships": memberships,
        "roles": Membership.Role.choices,
        "n_managers": sum(m.role == Membership.Role.MANAGER for m in memberships),
        "form": forms_by_name.get("form") or MemberForm(),
    }
    if request.user.is_staff:
        context["account_form"] = forms_by_name.get("account_form") or AccountCreateForm(
            prefix="account"
        )
        context["password_form"] = forms_by_name.get("password_form") or PasswordSetForm(
            prefix="password", members=members
        )
    return render(request, "labeling/members.html", context, status=status)


@login_required
def members(request, pk):
    """Managers: who works in the project; add a member by username or change their role."""
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    if request.method != "POST":
        return _members_page(request, access)
    form = MemberForm(request.POST)
    if form.is_valid():
        user = User.objects.filter(username=form.cleaned_data["username"]).first()
        if user is None:
            hint = (
                "create it under “Create an account”"
                if request.user.is_staff
                else "ask a staff member to create it"
            )
            form.add_error("username", f"No account has this name: {hint}.")
        else:
            try:
                member_set(project=project, user=user, role=form.cleaned_data["role"])
            except ValidationError as exc:
                _form_errors_from(exc, form)
            else:
                messages.success(request, f"{user.username} is now {form.cleaned_data['role']}.")
                return redirect("labeling:members", pk=project.pk)
    return _members_page(request, access, status=400, form=form)


def _member(project, user_id):
    membership = project.memberships.select_related("user").filter(user_id=user_id).first()
    if membership is None:
        raise Http404("This user is not a member of the project.")
    return membership


@login_required
@require_POST
def member_role(request, pk, user_id):
    """Managers: change one member's role (the last manager keeps theirs)."""
    project = project_for(request.user, pk, min_role=MANAGER).project
    membership = _member(project, user_id)
    form = MemberRoleForm(request.POST, prefix="row")
    if form.is_valid():
        try:
            member_set(project=project, user=membership.user, role=form.cleaned_data["role"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            role = form.cleaned_data["role"]
            messages.success(request, f"{membership.user.username} is now {role}.")
    else:
        messages.error(request, "Choose a role: manager, reviewer or annotator.")
    return redirect("labeling:members", pk=project.pk)


@login_required
@require_POST
def member_remove_page(request, pk, user_id):
    """Managers: take someone out of the project (their annotations stay)."""
    project = project_for(request.user, pk, min_role=MANAGER).project
    membership = _member(project, user_id)
    try:
        member_remove(project=project, user=membership.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("labeling:members", pk=project.pk)
    username = membership.user.username
    if membership.user == request.user and not request.user.is_superuser:
        messages.success(request, f"You left “{project.name}”.")
        return redirect("labeling:project_list")
    messages.success(request, f"{username} was removed from the project; their labels stay.")
    return redirect("labeling:members", pk=project.pk)


@login_required
@require_POST
def member_continue_page(request, pk, user_id):
    """Managers: let a paused annotator label again (see labeling.services.gold)."""
    project = project_for(request.user, pk, min_role=MANAGER).project
    membership = _member(project, user_id)
    try:
        membership_continue(project=project, user=membership.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user.username} may label again.")
    return redirect("labeling:members", pk=project.pk)


def _staff_only(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff create accounts and set passwords.")


@login_required
@require_POST
def account_create_page(request, pk):
    """Staff managing a project: create an account and add it to the project in one step."""
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    _staff_only(request)
    form = AccountCreateForm(request.POST, prefix="account")
    if form.is_valid():
        try:
            with transaction.atomic():
                user = account_create(
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password"],
                    created_by=request.user,
                )
                member_set(project=project, user=user, role=form.cleaned_data["role"])
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            role = form.cleaned_data["role"]
            messages.success(request, f"Account {user.username} created and added as {role}.")
            return redirect("labeling:members", pk=project.pk)
    return _members_page(request, access, status=400, account_form=form)


@login_required
@require_POST
def account_password_page(request, pk):
    """Staff managing a project: a new password for one of its members."""
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    _staff_only(request)
    members = list(
        project.memberships.order_by("user__username").values_list("user_id", "user__username")
    )
    form = PasswordSetForm(request.POST, prefix="password", members=members)
    if form.is_valid():
        user = User.objects.get(pk=form.cleaned_data["user"])
        try:
            account_password_set(
                user=user, password=form.cleaned_data["password"], changed_by=request.user
            )
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            messages.success(request, f"New password set for {user.username}.")
            return redirect("labeling:members", pk=project.pk)
    return _members_page(request, access, status=400, password_form=form)


def _guideline_context(access: ProjectAccess, **forms_by_name):
    project = access.project
    guidelines = project.guidelines.select_related("created_by")
    is_manager = access.at_least(MANAGER)
    draft = guidelines.drafts().first() if is_manager else None
    current = project.current_guideline()
    shown = draft or current
    context = {
        "access": access,
        "project": project,
        "draft": draft,
        "current": current,
        "versions": guidelines.published().order_by("-version"),
        "examples": shown.examples.select_related("item", "label") if shown else [],
        "is_manager": is_manager,
    }
    if is_manager:
        source = draft or current
        context["draft_form"] = forms_by_name.get("draft_form") or GuidelineDraftForm(
            initial={
                "body": source.body if source else "",
                "changelog": draft.changelog if draft else "",
            }
        )
        context["publish_form"] = forms_by_name.get("publish_form") or GuidelinePublishForm(
            initial={"changelog": draft.changelog if draft else ""}
        )
        context["example_form"] = forms_by_name.get("example_form") or WorkedExampleForm(
            project=project
        )
    return context


@login_required
def guidelines(request, pk):
    """Everyone reads the current version; managers edit the draft here (POST saves it)."""
    access = project_for(
        request.user, pk, min_role=MANAGER if request.method == "POST" else ANNOTATOR
    )
    project = access.project
    form = None
    if request.method == "POST":
        form = GuidelineDraftForm(request.POST)
        if form.is_valid():
            try:
                guideline_draft_update(project=project, user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _form_errors_from(exc, form)
            else:
                messages.success(request, "Draft saved.")
                return redirect("labeling:guidelines", pk=project.pk)
    context = _guideline_context(access, draft_form=form)
    return render(request, "labeling/guidelines.html", context)


@login_required
@require_POST
def guideline_preview(request, pk):
    """The draft body rendered and sanitized, for the editor's live preview (htmx)."""
    project_for(request.user, pk, min_role=MANAGER)
    body = request.POST.get("body", "")[:200_000]
    return render(request, "labeling/_guideline_body.html", {"body": body})


@login_required
@require_POST
def guideline_publish_page(request, pk):
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    form = GuidelinePublishForm(request.POST)
    if form.is_valid():
        try:
            published = guideline_publish(
                project=project, user=request.user, changelog=form.cleaned_data["changelog"]
            )
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            messages.success(request, f"Version {published.version} published.")
            return redirect("labeling:guidelines", pk=project.pk)
    context = _guideline_context(access, publish_form=form)
    return render(request, "labeling/guidelines.html", context, status=400)


@login_required
def guideline_version(request, pk, version):
    """One published version with its changelog, examples and the diff from the previous one."""
    access = project_for(request.user, pk, min_role=ANNOTATOR)
    project = access.project
    guideline = get_object_or_404(
        project.guidelines.published().select_related("created_by"), version=version
    )
    previous = project.guidelines.filter(version=version - 1).first()
    return render(
        request,
        "labeling/guideline_version.html",
        {
            "access": access,
            "project": project,
            "guideline": guideline,
            "examples": guideline.examples.select_related("item", "label"),
            "diff": guideline_diff(previous, guideline) if previous else "",
            "previous": previous,
        },
    )


@login_required
@require_POST
def worked_example_add_page(request, pk):
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    form = WorkedExampleForm(request.POST, project=project)
    if form.is_valid():
        item = project.items.filter(external_id=form.cleaned_data["external_id"]).first()
        if item is None:
            form.add_error("external_id", "No item of this project has this external id.")
        else:
            try:
                worked_example_add(
                    project=project,
                    item=item,
                    label=form.cleaned_data["label"],
                    why=form.cleaned_data["why"],
                    user=request.user,
                )
            except ValidationError as exc:
                _form_errors_from(exc, form)
            else:
                messages.success(request, "Worked example added to the draft.")
                return redirect("labeling:guidelines", pk=project.pk)
    context = _guideline_context(access, example_form=form)
    return render(request, "labeling/guidelines.html", context, status=400)


@login_required
@require_POST
def worked_example_remove_page(request, pk, example_pk):
    project = project_for(request.user, pk, min_role=MANAGER).project
    try:
        worked_example_remove(project=project, example_id=example_pk, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Worked example removed from the draft.")
    return redirect("labeling:guidelines", pk=project.pk)


@login_required
def items(request, pk):
    """Items browser (reviewers and managers): filters, keyset pages of 50 by id."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    params = request.GET.copy()
    # The form's free key/value pair becomes a `meta_<key>` filter.
    key, value = params.get("field", "").strip(), params.get("value", "")
    if key and value != "":
        params.setlist(f"meta_{key}", [*params.getlist(f"meta_{key}"), value])
    queryset = Item.objects.filter(project=project)
    item_filter = ItemFilter(params, queryset=queryset, project=project)
    rows, errors, has_next = [], None, False
    if item_filter.is_valid():
        after = params.get("after", "")
        filtered = item_filter.qs.order_by("id")
        if after.isdigit():
            filtered = filtered.filter(id__gt=int(after))
        page = list(with_counts(filtered)[: ITEMS_PAGE_SIZE + 1])
        has_next = len(page) > ITEMS_PAGE_SIZE
        for item in page[:ITEMS_PAGE_SIZE]:
            item.status = item_status(item, overlap=project.overlap)
            rows.append(item)
    else:
        errors = item_filter.errors
    next_query = None
    if has_next:
        following = request.GET.copy()
        following["after"] = rows[-1].pk
        next_query = following.urlencode()
    first_query = request.GET.copy()
    first_query.pop("after", None)
    return render(
        request,
        "labeling/items.html",
        {
            "access": access,
            "project": project,
            "rows": rows,
            "errors": errors,
            "next_query": next_query,
            "first_query": first_query.urlencode() if "after" in request.GET else None,
            "statuses": ItemStatus.CHOICES,
            "labels": project.labels.all(),
            "active_metadata": item_filter.metadata,
            "total": Item.objects.filter(project=project).count(),
        },
    )


# ---- annotating and the labeling dashboard (workflow helper) ------------------------------


def _guideline_panel(guideline) -> dict | None:
    if guideline is None:
        return None
    examples = list(guideline.examples.select_related("label", "item"))
    return {"guideline": guideline, "examples": examples}


def _draft_spans(posted, labels) -> list[list[int]]:
    """Spans a refused submission posted (`[{start, end, label}]`), as `[start, end, label_id]`
    for the editor to start from again: nothing the annotator marked is lost. Spans naming no
    label of the project are left out (the notice names them)."""
    ids = {label.name: label.pk for label in labels}
    kept = []
    for span in posted if isinstance(posted, list) else []:
        if not isinstance(span, dict):
            continue
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if isinstance(start, int) and isinstance(end, int) and label in ids:
            kept.append([start, end, ids[label]])
    return kept


def _annotate_context(
    request, access: ProjectAccess, *, current: Item | None = None, notice="", draft=None
):
    """The annotator page's context. draft: what a refused submission posted (`spans`,
    `unsure`, `comment`), shown again with the notice (an error) instead of the stored answer."""
    project, annotator = access.project, request.user
    guideline = selectors.current_guideline(access=access)
    item = current or next_item(project=project, annotator=annotator, guideline=guideline)
    prefetch = None
    if item is not None:
        prefetch = next_item(
            project=project, annotator=annotator, exclude_item_ids=[item.pk], guideline=guideline
        )
    previous = None
    if item is not None and guideline is not None:
        previous = Annotation.objects.filter(
            item=item, annotator=annotator, guideline=guideline
        ).first()
    # The "guidelines updated" banner: once per annotator per version, never on a first visit.
    banner = None
    if guideline is not None:
        seen, created = GuidelineSeen.objects.get_or_create(
            project=project, user=annotator, defaults={"version": guideline.version}
        )
        if not created and seen.version < guideline.version:
            banner = guideline
            GuidelineSeen.objects.filter(pk=seen.pk).update(version=guideline.version)
    labels = list(project.labels.all())
    chosen = set()
    if previous is not None:
        chosen = set(previous.labels) | ({previous.label_id} if previous.label_id else set())
    initial_spans = []
    if project.is_spans:
        if draft is not None:
            initial_spans = _draft_spans(draft.get("spans"), labels)
        elif previous is not None:
            initial_spans = previous.spans
    # The model's suggestion (never another annotator's label); a prefill starts the answer
    # unless the annotator's own earlier answer or refused draft is on the page.
    suggestion = None
    if item is not None:
        suggestion = selectors.suggestion_shown(
            project=project, item_id=item.pk, annotator_id=annotator.pk
        )
    prefilled = suggestion is not None and suggestion.prefill and previous is None and not draft
    if prefilled:
        if project.is_spans:
            initial_spans = suggestion.spans
        elif suggestion.label_id is not None:
            chosen = {suggestion.label_id}
    return {
        "access": access,
        "project": project,
        "guideline": guideline,
        "panel": _guideline_panel(guideline),
        "initial_spans": initial_spans,
        "draft": draft,
        "notice_error": draft is not None,
        "current": item_display(project, item),
        "prefetch": item_display(project, prefetch),
        "previous": previous,
        "chosen": chosen,
        "labels": labels,
        "multi": project.is_multi_label,
        "progress": selectors.labeling_progress(
            project=project, annotator=annotator, guideline=guideline
        )
        if guideline
        else None,
        "banner": banner,
        "notice": notice,
        "request_id": uuid.uuid4().hex,
        "skip_reasons": SKIP_REASONS,
        "suggestion": suggestion,
        "prefilled": prefilled,
        "suggestions_missing": _suggestions_missing(access),
    }


def _suggestions_missing(access: ProjectAccess) -> bool:
    """Managers are told when suggestions are on but the chosen model has none to show."""
    project = access.project
    return (
        access.role == MANAGER
        and project.suggestions != Project.Suggestions.OFF
        and selectors.suggestion_count(project=project) == 0
    )


SKIP_REASONS = ["Unclear or ambiguous", "Not enough information", "Broken or unreadable item"]


def _annotator_access(request, pk) -> ProjectAccess:
    """Any member may label (see labeling.services.annotating)."""
    return project_for(request.user, pk, min_role=ANNOTATOR)


def _posted_item(request, project) -> Item | None:
    raw = request.POST.get("item", "")
    item = Item.objects.filter(project=project, pk=int(raw)).first() if raw.isdigit() else None
    if item is not None:
        item.project = project
    return item


def _paused_page(request, access: ProjectAccess, paused: AnnotatorPaused):
    """What a paused annotator sees instead of items: why, their mistakes on the gold
    questions next to the gold answers, and the guideline's worked examples."""
    project = access.project
    guideline = selectors.current_guideline(access=access)
    examples = guideline.examples.select_related("item", "label") if guideline else []
    mistakes = [
        {**row, "shown": item_display(project, row["item"])}
        for row in gold_mistakes(project=project, annotator=request.user)
    ]
    context = {
        "access": access,
        "project": project,
        "membership": paused.membership,
        "guideline": guideline,
        "mistakes": mistakes,
        "examples": examples,
    }
    return render(request, "labeling/paused.html", context)


@login_required
@require_GET
def annotate(request, pk):
    """The annotator page: one item at a time, keyboard first (see annotate.js)."""
    access = _annotator_access(request, pk)
    try:
        context = _annotate_context(request, access)
    except AnnotatorPaused as paused:
        return _paused_page(request, access, paused)
    return render(request, "labeling/annotate.html", context)


def _workspace(request, access: ProjectAccess, **kwargs):
    if not request.htmx:  # a plain form post (no JavaScript): back to the page
        if kwargs.get("notice"):
            messages.info(request, kwargs["notice"])
        return redirect("labeling:annotate", pk=access.project.pk)
    try:
        context = _annotate_context(request, access, **kwargs)
    except AnnotatorPaused:
        # The whole page changes: htmx follows the redirect header to the paused page.
        return HttpResponseClientRedirect(reverse("labeling:annotate", args=[access.project.pk]))
    return render(request, "labeling/annotate_workspace.html", context)


@login_required
@require_POST
def annotate_submit(request, pk):
    """htmx: store the label(s), answer with the next item (already prefetched and leased)."""
    access = _annotator_access(request, pk)
    project = access.project
    item = _posted_item(request, project)
    if item is None:
        return _workspace(request, access, notice="That item is not in this project.")
    lead = request.POST.get("lead_time_ms") or None
    spans, draft = None, None
    if project.is_spans:
        draft = {
            "spans": [],
            "unsure": request.POST.get("unsure") in ("1", "on", "true"),
            "comment": request.POST.get("comment", ""),
        }
        try:
            spans = draft["spans"] = json.loads(request.POST.get("spans") or "null")
        except ValueError:
            notice = "Could not read the spans sent; nothing was stored. Mark them again."
            return _workspace(request, access, current=item, notice=notice, draft=draft)
    try:
        annotation_submit(
            item=item,
            annotator=request.user,
            label=None if project.is_multi_label or project.is_spans else request.POST.get("label"),
            labels=request.POST.getlist("labels") if project.is_multi_label else None,
            spans=spans,
            request_id=request.POST.get("request_id") or None,
            unsure=request.POST.get("unsure") in ("1", "on", "true"),
            comment=request.POST.get("comment", ""),
            lead_time_ms=int(lead) if lead and lead.isdigit() else None,
            guideline=selectors.current_guideline(access=access, with_text=False),
        )
    except ItemFull:
        notice = "That item was already complete; here is the next."
        return _workspace(request, access, notice=notice)
    except ValidationError as exc:
        notice = " ".join(exc.messages)
        if draft is not None:
            notice = (
                f"Not stored: {notice} Your spans are still here; correct them and submit again."
            )
        return _workspace(request, access, current=item, notice=notice, draft=draft)
    return _workspace(request, access)


@login_required
@require_POST
def annotate_skip(request, pk):
    access = _annotator_access(request, pk)
    item = _posted_item(request, access.project)
    if item is None:
        return _workspace(request, access, notice="That item is not in this project.")
    try:
        annotation_skip(item=item, annotator=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        return _workspace(request, access, current=item, notice=" ".join(exc.messages))
    return _workspace(request, access, notice="Skipped.")


@login_required
@require_POST
def annotate_undo(request, pk):
    """Reopen the last labeled (or skipped) item; submitting again changes the label."""
    access = _annotator_access(request, pk)
    item = annotation_undo_last(project=access.project, annotator=request.user)
    if item is None:
        return _workspace(request, access, notice="Nothing to undo.")
    notice = "Reopened your last item: choose a label to change it, or Enter to keep it."
    if access.project.is_spans:
        notice = "Reopened your last item with your spans: change them, or Enter to keep them."
    return _workspace(request, access, current=item, notice=notice)


@login_required
def dashboard(request, pk):
    """Managers and reviewers: items by state, per-annotator pace, throughput over time.

    `?version=N` counts the annotations made under guideline version N; by default every
    version counts, so publishing a new version does not empty the page.
    """
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    versions = {g.version: g for g in project.guidelines.published().only("version")}
    form = DashboardForm(request.GET or None, versions=list(versions))
    chosen = None
    if form.is_valid():
        chosen = versions.get(form.cleaned_data["version"])
    stats = selectors.labeling_dashboard(project=project, guideline=chosen)
    figure = None
    if stats["throughput"]:
        figure = {
            "data": [
                {
                    "type": "bar",
                    "x": [row["period"] for row in stats["throughput"]],
                    "y": [row["n"] for row in stats["throughput"]],
                    "marker": {"color": "#3b5bdb"},
                    "name": "annotations",
                }
            ],
            "layout": {
                "margin": {"l": 50, "r": 10, "t": 10, "b": 60},
                "yaxis": {"title": {"text": "annotations"}, "rangemode": "tozero"},
                "xaxis": {"type": "category"},
                "height": 320,
            },
        }
    total = stats["total"] or 1
    states = [
        ("Not started", stats["states"]["not_started"], "var(--line)"),
        ("In progress", stats["states"]["in_progress"], "var(--warn)"),
        ("Complete", stats["states"]["complete"], "var(--ok)"),
    ]
    return render(
        request,
        "labeling/dashboard.html",
        {
            "access": access,
            "project": project,
            "current": selectors.current_guideline(access=access, with_text=False),
            "chosen": chosen,
            "form": form,
            "stats": stats,
            "states": [(name, n, round(100 * n / total, 1), color) for name, n, color in states],
            "figure": figure,
            "until_refresh": queue_scores.annotations_until_refresh(project),
            "gold": _gold_panel(project),
        },
    )


def _gold_panel(project) -> dict:
    """Per-annotator gold accuracy, with each annotator's onboarding state."""
    gold = gold_accuracy(project=project)
    states = {
        m.user_id: m for m in project.memberships.only("user_id", "paused_at", "onboarded_at")
    }
    for row in gold["annotators"]:
        membership = states.get(row["annotator_id"])
        row["paused"] = membership is not None and membership.paused_at is not None
        row["onboarded"] = membership is not None and membership.onboarded_at is not None
    return gold


# ---- imports (imports helper) ---------------------------------------------------------------


@login_required
def imports(request, pk):
    """Upload items or annotations; see why a file was rejected; follow running import jobs."""
    access = project_for(request.user, pk, min_role=MANAGER)
    project = access.project
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            batch = import_submit(
                project=project,
                fileobj=upload,
                filename=upload.name,
                format=form.cleaned_data["format"],
                kind=form.cleaned_data["kind"],
                options=form.options(),
                user=request.user,
            )
        except ValidationError as exc:
            _form_errors_from(exc, form)
        except JobQueueUnavailable as exc:
            messages.error(request, str(exc))
        else:
            # The result card says how it went (one message: rows, or the rejected rows).
            return redirect(f"{request.path}?show={batch.pk}")
    batches = ImportBatch.objects.filter(project=project).defer("errors", "options")[:50]
    shown = None
    if request.GET.get("show", "").isdigit():
        shown = ImportBatch.objects.filter(project=project, pk=request.GET["show"]).first()
    return render(
        request,
        "labeling/imports.html",
        {"access": access, "project": project, "form": form, "batches": batches, "shown": shown},
    )


@login_required
def import_status(request, pk, import_id):
    """The progress of one import, polled by htmx every second while it runs."""
    project = project_for(request.user, pk, min_role=MANAGER).project
    batch = get_object_or_404(ImportBatch.objects.defer("errors"), project=project, pk=import_id)
    return render(request, "labeling/imports_status.html", {"project": project, "batch": batch})


def _webhooks_page(request, access: ProjectAccess, form=None, status=200):
    return render(
        request,
        "labeling/webhooks.html",
        {
            "access": access,
            "project": access.project,
            "webhooks": selectors.webhooks_with_log(project=access.project),
            "log_shown": selectors.WEBHOOK_LOG_SHOWN,
            "form": form or WebhookForm(),
        },
        status=status,
    )


@login_required
def webhooks(request, pk):
    """Managers: the project's webhooks and their delivery logs; add one."""
    access = project_for(request.user, pk, min_role=MANAGER)
    if request.method != "POST":
        return _webhooks_page(request, access)
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            webhook = webhook_create(project=access.project, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors_from(exc, form)
        else:
            generated = "" if form.cleaned_data["secret"] else f" Its secret: {webhook.secret}"
            messages.success(
                request,
                f"Webhook added for {webhook.url}.{generated}"
                + (" (copy it now: it is not shown again)." if generated else ""),
            )
            return redirect("labeling:webhooks", pk=pk)
    return _webhooks_page(request, access, form=form, status=400)


def _webhook(request, pk, webhook_id) -> Webhook:
    project = project_for(request.user, pk, min_role=MANAGER).project
    return get_object_or_404(Webhook, pk=webhook_id, project=project)


@login_required
@require_POST
def webhook_active(request, pk, webhook_id):
    """Managers: pause a webhook or turn it on again."""
    webhook = _webhook(request, pk, webhook_id)
    webhook_update(webhook=webhook, active=not webhook.active)
    state = "on" if webhook.active else "paused: no events are sent to it"
    messages.success(request, f"Webhook {webhook.url} is {state}.")
    return redirect("labeling:webhooks", pk=pk)


@login_required
@require_POST
def webhook_delete_page(request, pk, webhook_id):
    webhook = _webhook(request, pk, webhook_id)
    webhook_delete(webhook=webhook)
    messages.success(request, f"Webhook {webhook.url} deleted with its delivery log.")
    return redirect("labeling:webhooks", pk=pk)


@login_required
@require_POST
def webhook_test_page(request, pk, webhook_id):
    """Managers: queue a `ping` event to the webhook; the log shows the attempt."""
    webhook = _webhook(request, pk, webhook_id)
    try:
        webhook_test(webhook=webhook)
    except JobQueueUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Test event queued: reload in a moment to see it in the log.")
    return redirect("labeling:webhooks", pk=pk)
