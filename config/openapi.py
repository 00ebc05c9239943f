"""OpenAPI post-processing: document the error answers every endpoint can give.

Every API error is JSON `{"detail": ..., <field>: [messages]}` (see `labeling.api.errors`), so
instead of repeating the same responses on each view, they are added to every operation here.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` says what went wrong; field errors are keyed by field name.",
    "properties": {"detail": {}},
    "additionalProperties": True,
}

ERROR_STATUSES = {
    "400": "Invalid input.",
    "401": "Not authenticated.",
    "403": "Your role in the project does not allow this.",
    "404": "Not found, or not a member of the project.",
    "409": "Conflicts with the current state.",
    "413": "Upload too large.",
    "429": "Too many requests.",
    "503": "A backing service (database or job broker) is unavailable.",
}


def document_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERROR_STATUSES.items():
                operation["responses"].setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
