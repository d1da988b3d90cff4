"""schemathesis against the API's own OpenAPI description: no 500s, no surprises.

Every operation of ``/api/schema.json`` is called in-process through Django's
WSGI application (no server), authenticated with the API token of a registry
administrator (who may call everything) over a small demo-like registry: two
projects, 25 parcels of several shapes, buildings. Two passes:

- valid requests (schemathesis' positive mode): no 5xx, and every response's
  status, content type, headers and body are as the schema declares;
- invalid requests (negative mode): no 5xx, and the status is one the schema
  declares for the operation.

It also checks that each operation refuses a request without the token. The
examples per operation are few (the whole run takes well under a minute); the
hostile cases that matter most are spelt out in tests/**/test_hostile_requests.py.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import BuildingFactory
from tests.registry.ogcapi.conftest import make_registry

RAW_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
APP = get_wsgi_application()
EXAMPLES = 8
# The token of the current test (each test makes its own user and token).
TOKEN: list[str] = []


class RegistryToken:
    """``Authorization: Token <key>``, as scripts and GIS clients send it."""

    def get(self, case, context):
        """Return the current test's token."""
        return TOKEN[-1] if TOKEN else ""

    def set(self, case, data, context):
        """Send the token with the request."""
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


def loaded(mode: GenerationMode):
    """Return the schema, bound to the WSGI app, generating in ``mode`` only."""
    schema = schemathesis.openapi.from_dict(RAW_SCHEMA)
    schema.app = APP
    schema.config.generation.update(modes=[mode], max_examples=EXAMPLES)
    schema.auth(refresh_interval=None)(RegistryToken)
    return schema


valid = loaded(GenerationMode.POSITIVE)
invalid = loaded(GenerationMode.NEGATIVE)


# The WSGI requests use the test's connection (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_connection")


@pytest.fixture
def registry_token(registry_admin):
    """Make the demo-like registry and the administrator's API token."""
    parcels = make_registry()
    for parcel in parcels[:8]:
        BuildingFactory(parcel=parcel)
    TOKEN.append(Token.objects.create(user=registry_admin).key)
    yield TOKEN[-1]
    TOKEN.clear()


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The fixtures are function-scoped on purpose: each operation's examples
    # share one registry, rolled back after the operation.
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.django_db
@valid.parametrize()
@HYPOTHESIS
def test_valid_requests_get_what_the_schema_declares(case, registry_token):
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
            ignored_auth,
        ]
    )


@pytest.mark.django_db
@invalid.parametrize()
@HYPOTHESIS
def test_invalid_requests_are_refused_with_a_declared_status(case, registry_token):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance])
