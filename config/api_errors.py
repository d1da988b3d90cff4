"""API errors as JSON that says what was wrong, in Chinese and English.

The body carries OGC API's exception fields (``code``, ``description``) beside
the registry's bilingual ``error``, so generic OGC clients and our own scripts
read the same answer.
"""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from registry.errors import BadQuery, NotFound, PermissionRefused, RegistryError

_STATUS = (
    (PermissionRefused, status.HTTP_403_FORBIDDEN, "Forbidden"),
    (NotFound, status.HTTP_404_NOT_FOUND, "NotFound"),
    (BadQuery, status.HTTP_400_BAD_REQUEST, "InvalidParameterValue"),
)


def bilingual_exception_handler(exc, context):
    """Turn registry refusals into 4xx JSON; leave the rest to DRF's handler."""
    if isinstance(exc, RegistryError):
        code, name = status.HTTP_400_BAD_REQUEST, type(exc).__name__
        for kind, kind_status, kind_name in _STATUS:
            if isinstance(exc, kind):
                code, name = kind_status, kind_name
                break
        body = {"code": name, "description": exc.en, "error": exc.as_dict()}
        if isinstance(exc, BadQuery):
            body["parameter"] = exc.parameter
        refusals = getattr(exc, "refusals", None)
        if refusals:
            body["refused"] = [
                {"code": code_, **error.as_dict()} for code_, error in refusals
            ]
        return Response(body, status=code)
    return exception_handler(exc, context)
