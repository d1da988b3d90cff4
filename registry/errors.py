"""Errors the registry raises to users, always readable in Chinese and in English.

Officials read the Chinese; suppliers' engineers and logs often need the English.
A message is kept as a lazy translatable template plus parameters and rendered in
both languages on demand, so one ``.po`` catalogue serves both and a message can
never exist in one language only.
"""

from collections.abc import Mapping
from typing import Any

from django.http import JsonResponse
from django.utils import translation
from django.utils.functional import Promise


class RegistryError(Exception):
    """Base of every refusal the registry explains to a user."""

    status = 400
    """The HTTP status an API answers this refusal with."""

    def __init__(self, template: Promise | str, **params: Any) -> None:
        self.template = template
        self.params = params
        super().__init__(self.bilingual)

    def render(self, language: str) -> str:
        """Return the message in ``language`` ("zh-hans" or "en")."""
        with translation.override(language):
            return str(self.template) % _render_params(self.params)

    @property
    def zh(self) -> str:
        """The message in Simplified Chinese."""
        return self.render("zh-hans")

    @property
    def en(self) -> str:
        """The message in English."""
        return self.render("en")

    @property
    def bilingual(self) -> str:
        """The message as ``中文 / English``, for logs and command output."""
        return f"{self.zh} / {self.en}"

    def as_dict(self) -> dict[str, str]:
        """Return the message as a JSON-ready mapping of language to text."""
        return {"zh": self.zh, "en": self.en}

    def body(self, code: str | None = None) -> dict:
        """Return the JSON body an API answers with (``code`` names the kind).

        OGC API's exception members (``code``, ``description``) beside the
        bilingual ``error``, and what names the culprit when there is one.
        """
        body = {
            "code": code or type(self).__name__,
            "description": self.en,
            "error": self.as_dict(),
        }
        parameter = getattr(self, "parameter", None)
        if parameter is not None:
            body["parameter"] = parameter
        refusals = getattr(self, "refusals", None)
        if refusals:
            body["refused"] = [
                {"code": code_, **error.as_dict()} for code_, error in refusals
            ]
        return body

    def response(self, code: str | None = None):
        """Return the JSON answer to this refusal (``body``, with its status)."""
        return JsonResponse(
            self.body(code),
            status=self.status,
            json_dumps_params={"ensure_ascii": False},
        )


def _render_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Render lazy parameters (status labels, say) in the active language."""
    return {key: str(value) for key, value in params.items()}


class NotLoggedIn(RegistryError):
    """Nobody is logged in and no valid token was given."""

    status = 401


class PermissionRefused(RegistryError):
    """The user's role or project does not allow the change."""

    status = 403


class NotFound(RegistryError):
    """What the user asked for does not exist (or is not theirs to see)."""

    status = 404


class BadQuery(RegistryError):
    """A query parameter or body that cannot be read; ``parameter`` names it."""

    def __init__(self, template: Promise | str, *, parameter: str, **params: Any):
        self.parameter = parameter
        super().__init__(template, parameter=parameter, **params)


class TransitionRefused(RegistryError):
    """The workflow does not allow the change, or a precondition is not met."""


class BulkTransitionRefused(RegistryError):
    """At least one parcel of a bulk change was refused; nothing was changed."""

    def __init__(self, template, refusals: list[tuple[str, RegistryError]], **params):
        self.refusals = refusals
        super().__init__(template, **params)
