"""How a page shows an item's data: its text, its image, or a table of its fields.

One home for the rule, used by the annotator page and by every page that lists items
(Items, Disagreements, Issues, the item page, guideline examples, the export preview), so an
image item is shown as an image everywhere and never as its `data:` URL text.
"""

import json
from dataclasses import dataclass

from labeling.models import Item, Project, WorkedExample

IMAGE_KEYS = ("image", "image_url", "url")


def image_src(value) -> str | None:
    """An item's image as an <img src>: http(s) URLs, site paths and data:image URIs only."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith(("http://", "https://", "data:image/")) or (
        value.startswith("/") and not value.startswith("//")
    ):
        return value
    return None


def field_text(value) -> str:
    """A field's value as text; a data: URL is named, never printed (it can be megabytes)."""
    if isinstance(value, str):
        return "(image)" if value.startswith("data:") else value
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ItemDisplay:
    item: Item
    kind: str  # "text", "image" or "table"
    text: str | None
    image: str | None
    fields: list[tuple[str, str]]  # every data field except the image, as text


def item_display(project: Project, item: Item | None) -> ItemDisplay | None:
    if item is None:
        return None
    data = item.data if isinstance(item.data, dict) else {"value": item.data}
    image, image_key = None, None
    # The usual names first; an image project may have called its image column anything.
    keys = [*IMAGE_KEYS, *data] if project.data_type == Project.DataType.IMAGE else IMAGE_KEYS
    for key in keys:
        if image is None and image_src(data.get(key)):
            image, image_key = image_src(data.get(key)), key
    text = data.get("text") if isinstance(data.get("text"), str) else None
    if project.data_type == Project.DataType.IMAGE and image:
        kind = "image"
    elif project.data_type == Project.DataType.TABULAR or (text is None and not image):
        kind = "table"
    elif text is not None:
        kind = "text"
    else:
        kind = "image"
    fields = [(key, field_text(value)) for key, value in data.items() if key != image_key]
    return ItemDisplay(item=item, kind=kind, text=text, image=image, fields=fields)


def worked_example_display(project: Project, example: WorkedExample) -> ItemDisplay:
    """A worked example's content: its item, or the content kept with it once the item is gone."""
    item = example.item
    if item is None:
        kept = example.text or ""
        data = {"image": kept} if image_src(kept) else {"text": field_text(kept)}
        item = Item(project=project, external_id="(deleted item)", data=data)
    return item_display(project, item)
