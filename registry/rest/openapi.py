"""What the OpenAPI description says of every operation: how it refuses.

Every API answers a refusal with the same body (``config.api_errors``): OGC API's
``code`` and ``description`` beside the bilingual ``error``, and the parameter
or the refused items where there are any. The views declare what they answer
when all is well; this drf-spectacular post-processing hook adds the refusals
each operation can give, so that a client generated from the schema (or
schemathesis) knows every status it will meet.
"""

REFUSAL = {
    "type": "object",
    "description": "A refusal: what was wrong, in Chinese and English.",
    "required": ["code", "description", "error"],
    "properties": {
        "code": {"type": "string", "description": "the kind of refusal"},
        "description": {"type": "string", "description": "the message in English"},
        "error": {
            "type": "object",
            "required": ["zh", "en"],
            "properties": {"zh": {"type": "string"}, "en": {"type": "string"}},
        },
        "parameter": {"type": "string", "description": "the parameter refused"},
        "refused": {
            "type": "array",
            "description": "every item refused (all-or-nothing requests)",
            "items": {"type": "object"},
        },
    },
    # A form's field errors keep DRF's shape: one member per field.
    "additionalProperties": True,
}

# Every operation needs a login and a role, and refuses parameters it does not
# have; operations on one thing may not find it.
ALWAYS = {
    "400": "The request cannot be read: a parameter or the body is wrong.",
    "401": "No login and no valid token.",
    "403": "The user's roles do not allow this.",
}
BY_PATH = {"404": "There is no such thing."}
# An import batch that is not in the state a request needs.
IMPORTS = {"409": "The import batch is not in the state this request needs."}


def document_refusals(result, generator, request, public):
    """Add the refusal responses to every operation of the schema."""
    result.setdefault("components", {}).setdefault("schemas", {})["Refusal"] = REFUSAL
    reference = {"$ref": "#/components/schemas/Refusal"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            refusals = dict(ALWAYS)
            if "{" in path:
                refusals |= BY_PATH
            if path.startswith("/api/imports/") and method == "post":
                refusals |= IMPORTS
            responses = operation.setdefault("responses", {})
            for status, description in refusals.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
