"""The import parameters, declared once.

`ImportOptionsSerializer` is the only list of them, with their defaults and help: the API
validates uploads with it (and drf-spectacular documents it), the upload page's `ImportForm`
is made from its fields and checked by it, and `manage.py import_items` makes its flags from
them. `import_options()` turns a mapping of them into an `ImportOptions` for the parsers.
"""

from collections.abc import Mapping
from dataclasses import asdict, make_dataclass

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from labeling.importing.parsers import FORMAT_CHOICES
from labeling.importing.parsers.csv_file import DELIMITERS
from labeling.models import ImportBatch

DEFAULT_ID_COLUMN = "external_id"
TAB_SEPARATED_NAMES = (".tsv", ".tab")
# The batch keeps these two in their own columns; the rest are its `options`.
BATCH_COLUMNS = ("format", "kind")


@extend_schema_field(OpenApiTypes.STR)
class ColumnListField(serializers.Field):
    """Column names, comma-separated (a list is taken too) -> a tuple without blanks or repeats."""

    default_error_messages = {
        "invalid": "Give column names separated by commas.",
        "max_length": "Ensure this field has no more than {max_length} characters.",
    }

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> tuple[str, ...]:
        if isinstance(data, list | tuple) and all(isinstance(name, str) for name in data):
            names = list(data)
        elif isinstance(data, str):
            names = data.split(",")
        else:
            self.fail("invalid")
        if len(",".join(names)) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))

    def to_representation(self, value) -> str:
        return ",".join(value)


class ImportOptionsSerializer(serializers.Serializer):
    """How to read one uploaded file: its format, what it holds, where its columns are."""

    format = serializers.ChoiceField(choices=FORMAT_CHOICES, default="csv", label="Format")
    kind = serializers.ChoiceField(
        choices=ImportBatch.Kind.choices,
        default=ImportBatch.Kind.ITEMS,
        label="Kind",
        help_text=(
            "items; annotations (external_id, annotator, label); gold: the known answers of "
            "items already imported (external_id, label; labels or spans in JSON Lines)."
        ),
    )
    delimiter = serializers.ChoiceField(
        choices=[("", "Detect")] + [(name, name.capitalize()) for name in DELIMITERS],
        default="",
        label="CSV delimiter",
        help_text=(
            "CSV only. Not given: tab for a .tsv file, else detected from the first lines "
            "(tab, comma or semicolon)."
        ),
    )
    first_row_is_data = serializers.BooleanField(
        default=False,
        label="First row is data",
        help_text=(
            "CSV only: the file has no header row. Its columns are named by position, "
            "column1, column2, ... (give these names as the text, metadata or other "
            "columns), and its items are numbered by row."
        ),
    )
    id_column = serializers.CharField(
        default=DEFAULT_ID_COLUMN,
        allow_blank=True,
        max_length=255,
        label="Id column",
        help_text=(
            "The column holding each item's id. Empty: items are numbered by their row in the "
            "file (the row numbers that errors give). When the first row is data, items are "
            "numbered unless this names a column by position (column1, column2, ...)."
        ),
    )
    text_column = serializers.CharField(
        default="text",
        max_length=255,
        label="Text column",
        help_text="Text projects: the column holding the text.",
    )
    image_column = serializers.CharField(
        default="image",
        max_length=255,
        label="Image URL column",
        help_text="Image projects: the column holding the image URL.",
    )
    metadata_columns = ColumnListField(
        default=(),
        max_length=2000,
        label="Metadata columns",
        help_text="Comma-separated; they become slice attributes (source, device, region...).",
    )
    annotator_column = serializers.CharField(
        default="annotator",
        max_length=255,
        label="Annotator column",
        help_text="Annotations: the column holding the annotator's user name.",
    )
    label_column = serializers.CharField(
        default="label",
        max_length=255,
        label="Label column",
        help_text="Annotations: the column holding the label.",
    )
    annotator = serializers.CharField(
        default="",
        allow_blank=True,
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        label="Annotator",
        help_text=(
            "Span projects: whose spans the file holds, for rows that name no annotator. A JSON "
            "Lines file of texts with spans (the Prodigy/spaCy shape) or a CoNLL file of items "
            "becomes this annotator's annotations too; a CoNLL file of annotations needs it."
        ),
    )
    on_duplicate = serializers.ChoiceField(
        choices=[("error", "Refuse the file"), ("skip", "Skip them"), ("update", "Update them")],
        default="error",
        label="Items or annotations that already exist",
        help_text=(
            "error refuses the file; skip keeps them as they are; update replaces an item's "
            "data and metadata, or an annotation's label."
        ),
    )

    def validate(self, attrs: dict) -> dict:
        headerless = attrs["format"] == "csv" and attrs["first_row_is_data"]
        if (
            headerless
            and attrs["kind"] == ImportBatch.Kind.ITEMS
            and attrs["id_column"] == DEFAULT_ID_COLUMN
        ):
            # A file without a header has no column of that name: number its items instead.
            attrs["id_column"] = ""
        if not attrs["id_column"] and attrs["kind"] == ImportBatch.Kind.ANNOTATIONS:
            raise serializers.ValidationError(
                {"id_column": "Annotations name the items they label: give the id column."}
            )
        if not attrs["id_column"] and attrs["kind"] == ImportBatch.Kind.GOLD:
            raise serializers.ValidationError(
                {"id_column": "Gold labels name the items they answer: give the id column."}
            )
        if (
            attrs["format"] == "conll"
            and attrs["kind"] == ImportBatch.Kind.ANNOTATIONS
            and not attrs["annotator"]
        ):
            raise serializers.ValidationError(
                {"annotator": "A CoNLL file of annotations is one annotator's: give the annotator."}
            )
        if attrs["id_column"] and attrs["id_column"] in attrs["metadata_columns"]:
            raise serializers.ValidationError(
                {"metadata_columns": "The id column cannot also be a metadata column."}
            )
        return attrs


# The validated options as attributes (`options.id_column`), one per serializer field.
ImportOptions = make_dataclass("ImportOptions", list(ImportOptionsSerializer().fields), frozen=True)
# The options a batch keeps in its `options` (all but its own columns).
OPTION_NAMES = [name for name in ImportOptionsSerializer().fields if name not in BATCH_COLUMNS]


def import_options(
    *, format: str | None, kind: str | None, options: Mapping | None, filename: str = ""
) -> ImportOptions:
    """Validated options for one file; raises Django's ValidationError naming each bad option.

    A value of None, or an empty one where the option gives emptiness no meaning, is left out
    (its default applies). Unknown names are ignored.
    """
    fields = ImportOptionsSerializer().fields
    given = {**(options or {}), "format": format, "kind": kind}
    data = {
        name: value
        for name, value in given.items()
        if name in fields
        and value is not None
        and (value != "" or getattr(fields[name], "allow_blank", False))
    }
    serializer = ImportOptionsSerializer(data=data)
    if not serializer.is_valid():
        raise ValidationError(
            {
                name: [str(message) for message in messages]
                for name, messages in serializer.errors.items()
            }
        )
    values = serializer.validated_data
    if not values["delimiter"] and filename.lower().endswith(TAB_SEPARATED_NAMES):
        values["delimiter"] = "tab"
    return ImportOptions(**values)


def options_in(values: Mapping) -> dict:
    """The import options among `values` (a form's or a serializer's data, command flags):
    each one given a value, but format and kind, which an import takes on their own."""
    return {name: values[name] for name in OPTION_NAMES if values.get(name) is not None}


def options_stored(options: ImportOptions) -> dict:
    """The options as a batch keeps them (JSON); `import_options` reads them back."""
    values = asdict(options)
    return {
        name: list(values[name]) if isinstance(values[name], tuple) else values[name]
        for name in OPTION_NAMES
    }
