"""The export's query parameters, declared once.

`PARAMETERS` is the only declaration: `export_params_parse` validates a query with it, the
REST view documents it in the OpenAPI schema (`api.py`), the export page builds its form from
it (`views.py`), and `ExportParams.as_query()` writes a query back (the page's links,
bench/export.py). A new parameter is one `ExportParameter` here and one field of
`ExportParams`, in the same order.

List parameters (`exclude`, `include`) take `a,b` and repeated `?x=a&x=b` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from analysis.exports.formats import FORMATS
from labeling.models import Project


@dataclass(frozen=True)
class ExportParameter:
    """One query parameter: its parsed type, allowed values, default and page labels.

    type: str, int or float, the parsed value's type. choices: the allowed values, or a
    function of the project giving them (None: any value of `type`). many: a list of choices.
    minimum/maximum/step: the range of a number and the page's step. default(project): the
    value when the query leaves the parameter out. On the page: title labels the field,
    titles(choice) or titles[choice] each choice (else the value itself), placeholder stands
    for no value. refused(project): choices that exist but do not apply to this project (a
    span project, a classification project), each with the reason a 400 gives.
    """

    name: str
    type: type
    title: str
    description: str
    choices: tuple | Callable[[Project], tuple] | None = None
    titles: Mapping[str, str] | Callable[[object], str] = field(default_factory=dict)
    many: bool = False
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    placeholder: str = ""
    default: Callable[[Project], object] = lambda project: None
    refused: Callable[[Project], Mapping[str, str]] = lambda project: {}

    def choices_for(self, project: Project) -> tuple | None:
        """The allowed values in this project, None for any value."""
        return self.choices(project) if callable(self.choices) else self.choices

    def offered(self, project: Project) -> tuple:
        """The choices the export page offers in this project (the refused ones left out)."""
        refused = self.refused(project)
        return tuple(c for c in self.choices_for(project) or () if c not in refused)

    def choice_title(self, choice) -> str:
        if callable(self.titles):
            return self.titles(choice)
        return self.titles.get(choice, str(choice))


def published_versions(project: Project) -> tuple[int, ...]:
    return tuple(
        project.guidelines.published().order_by("version").values_list("version", flat=True)
    )


def formats_refused(project: Project) -> dict[str, str]:
    if project.is_spans:
        return {}
    return {"conll": "format=conll writes the IOB2 tags of span projects; this project "
                     "labels whole items: use csv, jsonl, parquet or labelstudio."}  # fmt: skip


def labels_refused(project: Project) -> dict[str, str]:
    if not project.is_spans:
        return {}
    return {"crowdlab": "labels=crowdlab scores one class per item and does not apply to span "
                        "projects: use majority, dawid_skene or reviewed."}  # fmt: skip


def span_default_strategy(project: Project) -> str:
    strategy = project.default_label_strategy
    return "majority" if project.is_spans and strategy == "crowdlab" else strategy


PARAMETERS: tuple[ExportParameter, ...] = (
    ExportParameter(
        "format",
        str,
        "Format",
        "File format (default csv); conll for span projects only.",
        choices=tuple(FORMATS),
        default=lambda project: "csv",
        refused=formats_refused,
    ),
    ExportParameter(
        "labels",
        str,
        "Labels",
        "Label strategy (default: the project's); a reviewer's label always wins. Span "
        "projects decide per token (majority, dawid_skene) and decode back to spans.",
        choices=tuple(Project.LabelStrategy.values),
        default=span_default_strategy,
        refused=labels_refused,
    ),
    ExportParameter(
        "exclude",
        str,
        "Exclude",
        "Items to leave out, comma-separated.",
        choices=("open_issues", "ambiguous", "unresolved"),
        titles={
            "open_issues": "Open label issues",
            "ambiguous": "Marked ambiguous",
            "unresolved": "Unresolved (ties, below overlap)",
        },
        many=True,
        # In a span project an item is unresolved when a majority tie left any token
        # undecided (`tied_tokens` > 0), when it has no decision, or is below overlap.
    ),
    ExportParameter(
        "min_agreement",
        float,
        "Minimum agreement",
        "0..1; reviewed items always pass.",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        placeholder="0–1",
    ),
    ExportParameter(
        "guideline_version",
        int,
        "Guideline version",
        "Only annotations of this version.",
        choices=published_versions,
        titles=lambda version: f"v{version}",
        placeholder="all versions",
    ),
    ExportParameter(
        "include",
        str,
        "Rows",
        "`annotations`: one row per annotation.",
        choices=("annotations",),
        titles={"annotations": "One row per annotation"},
        many=True,
    ),
)
BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


@dataclass(frozen=True)
class ExportParams:
    """Parsed export parameters (fields in the order of PARAMETERS)."""

    format: str
    labels: str
    exclude: tuple[str, ...] = ()
    min_agreement: float | None = None
    guideline_version: int | None = None
    include: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """As stored on a DatasetVersion: lists for list parameters, None where not given."""
        return {
            p.name: list(getattr(self, p.name)) if p.many else getattr(self, p.name)
            for p in PARAMETERS
        }

    def as_query(self) -> dict[str, str]:
        """As query parameters that parse back to these (list values comma-joined)."""
        query = {}
        for p in PARAMETERS:
            value = getattr(self, p.name)
            if p.many and value:
                query[p.name] = ",".join(value)
            elif not p.many and value is not None:
                query[p.name] = str(value)
        return query

    @classmethod
    def from_stored(cls, stored: Mapping) -> ExportParams:
        """The parameters a DatasetVersion recorded (see `as_dict`)."""
        return cls(
            **{
                p.name: tuple(stored.get(p.name) or ()) if p.many else stored.get(p.name)
                for p in PARAMETERS
            }
        )


def query_values(query: Mapping) -> dict[str, list[str]]:
    """Every parameter's raw values: `a,b` and repeated `?x=a&x=b` both give [a, b]."""
    out = {}
    for p in PARAMETERS:
        raw = query.getlist(p.name) if hasattr(query, "getlist") else query.get(p.name)
        if raw is None:
            raw = []
        elif isinstance(raw, str):
            raw = [raw]
        out[p.name] = [part.strip() for value in raw for part in str(value).split(",")]
        out[p.name] = [part for part in out[p.name] if part]
    return out


def _number(p: ExportParameter, raw: str, errors: dict):
    try:
        value = p.type(raw)
    except ValueError:
        value = None
    if p.minimum is not None and p.maximum is not None:
        if value is None or not p.minimum <= value <= p.maximum:
            errors[p.name] = f"{p.name} must be a number from {p.minimum:g} to {p.maximum:g}."
    return value


def export_params_parse(query: Mapping, *, project: Project) -> ExportParams:
    """Validate export parameters; a ValidationError lists the allowed values per field."""
    errors: dict[str, str] = {}
    values = {}
    for p, raw in zip(PARAMETERS, query_values(query).values(), strict=True):
        allowed = p.choices_for(project)
        shown = ", ".join(str(choice) for choice in p.offered(project)) or "none published"
        refused = p.refused(project)
        if not p.many and raw and raw[0] in refused:
            errors[p.name] = refused[raw[0]]
            values[p.name] = raw[0]
        elif p.many:
            bad = [value for value in raw if value not in allowed]
            if bad:
                errors[p.name] = f"Unknown {p.name} {', '.join(bad)}; allowed: {shown}."
            values[p.name] = tuple(sorted(set(raw)))
        elif not raw:
            values[p.name] = p.default(project)
        elif p.type is str:
            if raw[0] not in allowed:
                errors[p.name] = f"Unknown {p.name} {raw[0]!r}; allowed: {shown}."
            values[p.name] = raw[0]
        else:
            values[p.name] = _number(p, raw[0], errors)
            if allowed is not None and values[p.name] not in allowed:
                errors[p.name] = f"Unknown {p.name} {raw[0]!r}; allowed: {shown}."
    if project.is_multi_label and not errors:
        errors["labels"] = "Exports of multi-label projects are not supported yet."
    if values.get("format") == "conll" and "annotations" in values.get("include", ()):
        errors["include"] = (
            "format=conll holds one tag per token, one set of spans per item: export "
            "include=annotations as jsonl, csv, parquet or labelstudio."
        )
    if errors:
        raise ValidationError(errors)
    return ExportParams(**values)
