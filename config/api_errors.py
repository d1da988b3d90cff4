"""API errors as JSON that says what was wrong, in Chinese and English.

The body carries OGC API's exception fields (``code``, ``description``) beside
the registry's bilingual ``error``, so generic OGC clients and our own scripts
read the same answer, whether the refusal is the registry's own or one of the
framework's (no login, wrong method, unreadable body).
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from registry.errors import BadQuery, NotFound, PermissionRefused, RegistryError

# OGC API's names for the kinds of refusal (the HTTP status is the error's own).
_OGC_CODES = (
    (PermissionRefused, "Forbidden"),
    (NotFound, "NotFound"),
    (BadQuery, "InvalidParameterValue"),
)
# The framework's refusals whose message is its default text (with at most the
# request's method in it): rendered afresh in each language.
_FRAMEWORK = {
    exceptions.NotAuthenticated: "NotAuthenticated",
    exceptions.AuthenticationFailed: "AuthenticationFailed",
    exceptions.MethodNotAllowed: "MethodNotAllowed",
    exceptions.NotAcceptable: "NotAcceptable",
    exceptions.UnsupportedMediaType: "UnsupportedMediaType",
    exceptions.ParseError: "ParseError",
    exceptions.PermissionDenied: "Forbidden",
    exceptions.NotFound: "NotFound",
}


def bilingual_exception_handler(exc, context):
    """Turn refusals into 4xx JSON with the message in both languages."""
    if isinstance(exc, RegistryError):
        return _registry_refusal(exc)
    if isinstance(exc, RequestDataTooBig):
        # Django's own size limit, met while DRF reads the body.
        return _registry_refusal(
            BadQuery(
                _("The request body is larger than %(limit)s bytes."),
                parameter="body",
                limit=f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}",
            )
        )
    # Django's own 404 and 403 (get_object_or_404, PermissionDenied), as DRF's
    # handler maps them, so that they get the bilingual body too.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    name = next((n for kind, n in _FRAMEWORK.items() if isinstance(exc, kind)), None)
    if name is not None and not isinstance(exc.detail, dict | list):
        zh, en = (
            _default_text(exc, context, language) for language in ("zh-hans", "en")
        )
        if str(exc.detail) not in (zh, en):
            # A custom message (not the framework's default): keep it as given.
            zh = en = str(exc.detail)
        response.data = {"code": name, "description": en, "error": {"zh": zh, "en": en}}
        return response
    with translation.override("zh-hans"):
        zh = str(exceptions.ValidationError.default_detail)
    with translation.override("en"):
        en = str(exceptions.ValidationError.default_detail)
    # Field errors stay where DRF puts them (one key per field), beside the
    # common members, so scripts written against either shape keep working.
    fields = exc.detail if isinstance(exc.detail, dict) else {"fields": exc.detail}
    response.data = {
        **fields,
        "code": "InvalidParameterValue",
        "description": en,
        "error": {"zh": zh, "en": en},
    }
    return response


def _default_text(exc, context, language: str) -> str:
    with translation.override(language):
        text = str(type(exc).default_detail)
        request = context.get("request")
        if isinstance(exc, exceptions.MethodNotAllowed) and request is not None:
            text = text.format(method=request.method)
        return text


def _registry_refusal(exc: RegistryError) -> Response:
    code = next((name for kind, name in _OGC_CODES if isinstance(exc, kind)), None)
    return Response(exc.body(code), status=exc.status)


# Where every answer is JSON: a URL there that matches no route is refused like
# any other request, not with the site's HTML page.
API_PREFIXES = ("/api/", "/ogcapi/", "/tiles/")


def page_not_found(request, exception):
    """Answer a URL that matches no route: bilingual JSON under the APIs.

    Django's ``handler404``; elsewhere the site's own 404 page.
    """
    if not request.path.startswith(API_PREFIXES):
        return defaults.page_not_found(request, exception)
    error = NotFound(_("There is nothing at %(path)s."), path=request.path[:200])
    return error.response("NotFound")
