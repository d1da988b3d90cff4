"""Production settings: `check --deploy` clean, and nothing insecure by accident.

``DJANGO_ENV=production`` is how a server behind TLS runs (README, "Running in
production"); the checks run in a fresh process because settings are read once
per process.
"""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from config.settings import BASE_DIR


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a new process with ``env`` over a clean environment."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "SECRET_KEY", "DEBUG", "SECURE_"))
        and not name.endswith("_COOKIE_SECURE")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**env: str) -> dict[str, str]:
    return {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "registry.guangming.example",
        **env,
    }


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production())

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_behind_a_tls_proxy_the_forwarded_scheme_counts_and_checks_stay_clean():
    env = production(
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        CSRF_TRUSTED_ORIGINS="https://registry.guangming.example",
    )
    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS)",
        **env,
    )
    checked = manage("check", "--deploy", "--fail-level", "WARNING", **env)

    assert shown.stdout.strip().splitlines()[-1] == (
        "('HTTP_X_FORWARDED_PROTO', 'https') "
        "['https://registry.guangming.example'] True True True 31536000"
    ), shown.stderr
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = production()
    del env["SECRET_KEY"]

    result = manage("check", **env)

    assert result.returncode != 0
    assert "DJANGO_ENV=production needs SECRET_KEY to be set." in result.stderr


def test_production_refuses_to_start_with_debug_on():
    result = manage("check", **production(DEBUG="1"))

    assert result.returncode != 0
    assert "DEBUG must be off when DJANGO_ENV=production." in result.stderr


def test_the_default_settings_serve_loopback_without_tls():
    """`make demo` and `make test` run on http://127.0.0.1: no TLS-only cookie."""
    assert not settings.DEBUG
    assert not settings.SESSION_COOKIE_SECURE
    assert not settings.CSRF_COOKIE_SECURE
    assert not settings.SECURE_SSL_REDIRECT
    assert settings.SECURE_HSTS_SECONDS == 0
    assert {"127.0.0.1", "localhost", "[::1]"} <= set(settings.ALLOWED_HOSTS)


def test_a_login_lasts_an_office_day_and_ends_with_the_browser():
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.CSRF_COOKIE_HTTPONLY


@pytest.mark.django_db
def test_a_weak_password_is_refused_by_the_validators():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from tests.factories import UserFactory

    user = UserFactory(username="guangming")
    for weak in ("12345678", "password", "guangming1", "短"):
        with pytest.raises(ValidationError):
            validate_password(weak, user)
    validate_password("correct horse battery staple", user)
