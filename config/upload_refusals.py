"""Refuse an upload the server cannot receive before the CSRF check reads it.

Django reads a multipart body the first time ``request.POST`` is asked for; for
a page the CSRF check protects, that is the check, before any view runs. An
upload refused while it is read (``importers.errors.NoRoom``: the disk is full)
would then escape as an error page. This middleware, placed before
``CsrfViewMiddleware``, reads such a body itself and answers the refusal as
every other one is answered: JSON under the APIs, a page elsewhere, in both
languages and with its own status.
"""

from django.template.response import TemplateResponse

from config.api_errors import API_PREFIXES
from registry.errors import RegistryError

# Where uploads are answered in JSON: the APIs, and scripts' orthophoto uploads.
JSON_PATHS = (*API_PREFIXES, "/imagery/api/")


class UploadRefusalMiddleware:
    """Answer a refused upload (e.g. no room to spool it) with its reason."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        """Pass the request on (the work is in ``process_view``)."""
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        """Read a multipart body now; answer a refusal raised while reading."""
        if request.method != "POST" or not request.content_type.startswith(
            "multipart/"
        ):
            return None
        if getattr(view, "csrf_exempt", False):
            # The CSRF check will not read this body: the view does, after
            # setting its own upload handlers (the APIs, the size-limited
            # orthophoto upload), and answers refusals itself.
            return None
        try:
            request.POST  # noqa: B018 -- reading it is the point
        except RegistryError as error:
            if request.path.startswith(JSON_PATHS):
                return error.response()
            return TemplateResponse(
                request, "refusal.html", {"error": error}, status=error.status
            ).render()
        return None
