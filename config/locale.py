"""Language selection: Simplified Chinese unless the user chose English.

Django's ``LocaleMiddleware`` follows the browser's Accept-Language header, but
intranet machines often run English-language browsers while their users expect a
Chinese system. The language is therefore the one picked with the page's language
switcher (its cookie), and Chinese otherwise.
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


def chosen_language(cookies) -> str:
    """Return the language from the switcher's cookie, else ``LANGUAGE_CODE``."""
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME, "")
    supported = {code for code, _name in settings.LANGUAGES}
    return chosen if chosen in supported else settings.LANGUAGE_CODE


def activate_chosen_language(request) -> None:
    """Activate the language from the switcher's cookie, else ``LANGUAGE_CODE``."""
    translation.activate(chosen_language(request.COOKIES))
    request.LANGUAGE_CODE = translation.get_language()


class ChineseFirstLocaleMiddleware(LocaleMiddleware):
    """Activate the language from the switcher's cookie, else ``LANGUAGE_CODE``."""

    def process_request(self, request) -> None:
        """Activate the chosen language for this request."""
        activate_chosen_language(request)
