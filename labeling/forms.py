"""Forms of the HTML pages; services do the writing."""

from django import forms
from django.utils.safestring import mark_safe
from rest_framework import serializers
from rest_framework.fields import empty

from labeling.importing.options import (
    OPTION_NAMES,
    ImportOptionsSerializer,
    import_options,
    options_in,
)
from labeling.models import Membership, Project
from labeling.services.projects import EDITABLE_FIELDS
from labeling.services.webhooks import EVENTS, MAX_SECRET_CHARS

# ---- projects, members, guidelines (projects helper) --------------------------------------


def parse_label_lines(text: str) -> list[dict]:
    """One label per line, optionally `name | key`: [{"name", "key"}]."""
    labels = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, key = line.partition("|")
        labels.append({"name": name.strip(), "key": key.strip()})
    return labels


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    data_type = forms.ChoiceField(choices=Project.DataType.choices)
    task_type = forms.ChoiceField(choices=Project.TaskType.choices)
    # 2 by default: agreement, disagreements and the annotator-based checks need two labels
    # per item; 1 is for a team that only needs the labels.
    overlap = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=2,
        help_text=(
            "How many annotators label each item. Agreement (Krippendorff's alpha, kappa), "
            "the disagreements list and human-level baselines need at least 2; "
            "1 labels each item once: quicker, with nothing to compare."
        ),
    )
    ordered = forms.BooleanField(required=False, help_text="The classes are ordinal.")
    labels = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "negative | n\npositive | p"}),
        help_text=mark_safe(  # noqa: S308 - a constant
            "One label per line, in order. Add a shortcut key after a bar, as in "
            "<code>spam | s</code>; without one, labels get 1-9 and 0."
        ),
    )

    def clean_labels(self):
        labels = parse_label_lines(self.cleaned_data["labels"])
        if not labels:
            raise forms.ValidationError("Give at least one label.")
        if any(len(label["name"]) > 100 for label in labels):
            raise forms.ValidationError("Label names may have at most 100 characters.")
        return labels


class ProjectEditForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = list(EDITABLE_FIELDS)
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class LabelRowForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(max_length=100, required=False)
    key = forms.CharField(max_length=1, required=False, label="Shortcut key")


LabelFormSet = forms.formset_factory(LabelRowForm, extra=2, can_delete=True, max_num=1000)


def label_rows(formset) -> list[dict]:
    """The label list a valid formset describes (blank new rows and deleted rows left out)."""
    rows = []
    for form in formset.forms:
        data = form.cleaned_data
        if not data or data.get("DELETE"):
            continue
        if not data.get("name") and data.get("id") is None:
            continue
        rows.append({"id": data.get("id"), "name": data.get("name", ""), "key": data.get("key")})
    return rows


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing account.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.org/concord-hook"}),
        help_text="Receives a signed JSON POST per event.",
    )
    secret = forms.CharField(
        max_length=MAX_SECRET_CHARS,
        required=False,
        help_text="Signs every delivery. Leave empty to have one generated (shown once).",
    )
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {meaning}") for name, meaning in EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENTS),
    )


class MemberRoleForm(forms.Form):
    """One row of the members table: that member's new role."""

    role = forms.ChoiceField(choices=Membership.Role.choices)


class AccountCreateForm(forms.Form):
    """Staff: a new account, added to the project with a role."""

    username = forms.CharField(max_length=150)
    password = forms.CharField(
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password. Tell the person in person.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class PasswordSetForm(forms.Form):
    """Staff: a new password for a member who forgot theirs."""

    user = forms.TypedChoiceField(coerce=int, label="Member")
    password = forms.CharField(
        strip=False,
        max_length=128,
        label="New password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, members: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = members


class GuidelineDraftForm(forms.Form):
    body = forms.CharField(
        required=False,
        strip=False,
        max_length=200_000,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "true"}),
        help_text="Markdown. Raw HTML is sanitized when shown.",
    )
    changelog = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


class GuidelinePublishForm(forms.Form):
    changelog = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed, for the annotators.",
    )


class WorkedExampleForm(forms.Form):
    external_id = forms.CharField(max_length=255, label="Item (external id)")
    label = forms.ChoiceField(choices=())
    why = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [
            (name, name) for name in project.labels.values_list("name", flat=True)
        ]


class DashboardForm(forms.Form):
    """Which guideline version's annotations the dashboard counts (blank: every version)."""

    version = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Guideline version"
    )

    def __init__(self, *args, versions: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "All versions")] + [
            (v, f"v{v}") for v in sorted(versions, reverse=True)
        ]


# ---- imports (imports helper) ---------------------------------------------------------------


def _page_field(field: serializers.Field) -> forms.Field:
    """The upload page's field for one import option, as the serializer declares it."""
    common = {"label": field.label, "help_text": field.help_text or "", "required": False}
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**common)
    initial = None if field.default is empty else field.to_representation(field.default)
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=list(field.choices.items()), initial=initial, **common)
    return forms.CharField(initial=initial, max_length=getattr(field, "max_length", None), **common)


class ImportForm(forms.Form):
    """The upload page's form: the file, then ImportOptionsSerializer's fields, which also
    checks them (the API's and the command's options are the same)."""

    file = forms.FileField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in ImportOptionsSerializer().fields.items():
            self.fields[name] = _page_field(field)

    @property
    def option_fields(self) -> list:
        """The bound fields of the options under "Columns and options"."""
        return [self[name] for name in OPTION_NAMES]

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        try:
            import_options(
                format=cleaned.get("format"),
                kind=cleaned.get("kind"),
                options=self.options(),
                filename=getattr(upload, "name", ""),
            )
        except forms.ValidationError as exc:
            for name, messages in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def options(self) -> dict:
        """The options as the import service takes them."""
        return options_in(self.cleaned_data)
