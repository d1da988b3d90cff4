"""Reading JSON request bodies, refusing the unreadable ones bilingually.

DRF's JSON parser answers a malformed body with an English-only message and
lets a body nested deeper than Python recurses (``[[[[…]]]]``, a few hundred
kilobytes) escape as a ``RecursionError``, a 500. This one refuses both as a
``BadQuery`` naming the body, in Chinese and English.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers

from registry.errors import BadQuery


class JSONParser(parsers.JSONParser):
    """DRF's strict JSON parser with bilingual refusals."""

    def parse(self, stream, media_type=None, parser_context=None):
        """Return the parsed body, or raise ``BadQuery``."""
        try:
            return super().parse(stream, media_type, parser_context)
        except exceptions.ParseError as error:
            raise BadQuery(
                _("The request body is not JSON: %(detail)s"),
                parameter="body",
                detail=str(error.detail).removeprefix("JSON parse error - ")[:200],
            ) from error
        except RecursionError as error:
            raise BadQuery(
                _("The request body nests arrays or objects too deeply to read."),
                parameter="body",
            ) from error
