"""API errors as JSON that says what was wrong, in Chinese and English."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from registry.errors import PermissionRefused, RegistryError


def bilingual_exception_handler(exc, context):
    """Turn registry refusals into 4xx JSON; leave the rest to DRF's handler."""
    if isinstance(exc, RegistryError):
        code = (
            status.HTTP_403_FORBIDDEN
            if isinstance(exc, PermissionRefused)
            else status.HTTP_400_BAD_REQUEST
        )
        body = {"error": exc.as_dict()}
        refusals = getattr(exc, "refusals", None)
        if refusals:
            body["refused"] = [
                {"code": code_, **error.as_dict()} for code_, error in refusals
            ]
        return Response(body, status=code)
    return exception_handler(exc, context)
