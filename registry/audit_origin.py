"""Where a change comes from: the request, command or job behind it.

An audit record says from where a change was made: the client's address, the
channel (web page, API, command, job worker), the user agent and the host that
made it. ``OriginMiddleware`` holds the origin of each request in a context
variable for as long as the request runs, so the writers in ``registry.audit``
find it without every service taking a request argument. Outside a request the
origin is the command running in this process, with its host name; the import
job carries the origin of the request that queued it (``Origin.as_job`` and
``Origin.from_job``), so a commit clicked on a page is recorded with that page's
address even though a worker wrote it.

The address is ``REMOTE_ADDR``. ``X-Forwarded-For`` is believed only when the
request came from a proxy named in ``AUDIT_TRUSTED_PROXIES`` (addresses or
networks): the client is then the right-most address in the header that is not
itself a trusted proxy. Without that setting the header is ignored, because any
client can write it.
"""

import contextlib
import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings

from registry.models import AuditChannel

# Prefixes of the paths served to scripts and GIS clients rather than people.
API_PREFIXES = ("/api/", "/ogcapi/")
USER_AGENT_LENGTH = 400


@dataclass(frozen=True)
class Origin:
    """Where a change comes from; ``request`` (if any) gives its logged-in user."""

    channel: str
    remote_addr: str | None = None
    user_agent: str = ""
    host: str = ""
    request: object = field(default=None, compare=False, repr=False)

    def user(self):
        """Return the authenticated user of the request, or None."""
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    def as_job(self) -> dict:
        """Return the origin as job arguments (JSON), for a worker to carry on."""
        return {
            "channel": self.channel,
            "remote_addr": self.remote_addr,
            "user_agent": self.user_agent,
        }

    @classmethod
    def from_job(cls, data: dict | None) -> "Origin":
        """Return the origin a job was queued with, made on this worker's host.

        A job queued without one (by a command, or before origins were passed
        on) is the worker's own.
        """
        if not data:
            return worker_origin()
        channel = data.get("channel")
        return cls(
            channel=channel if channel in AuditChannel.values else AuditChannel.WORKER,
            remote_addr=data.get("remote_addr") or None,
            user_agent=(data.get("user_agent") or "")[:USER_AGENT_LENGTH],
            host=host_name(),
        )


_current: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


def current_origin() -> Origin:
    """Return the origin of what this thread is doing now.

    In a request, the request's; in a job, the job's; otherwise the command
    this process runs (``manage.py import_survey``, a shell, the test runner).
    """
    return _current.get() or command_origin()


@contextlib.contextmanager
def using(origin: Origin) -> Iterator[Origin]:
    """Hold ``origin`` as the current one for the duration of the block."""
    token = _current.set(origin)
    try:
        yield origin
    finally:
        _current.reset(token)


@cache
def host_name() -> str:
    """Return this machine's host name."""
    return socket.gethostname()


def command_origin() -> Origin:
    """Return the origin of a command run in this process."""
    argv = sys.argv or [""]
    program = Path(argv[0]).name
    if program == "manage.py" and len(argv) > 1:
        program = f"manage.py {argv[1]}"
    return Origin(channel=AuditChannel.COMMAND, user_agent=program, host=host_name())


def worker_origin() -> Origin:
    """Return the origin of a job the worker runs on its own account."""
    return Origin(
        channel=AuditChannel.WORKER, user_agent="procrastinate worker", host=host_name()
    )


def request_origin(request) -> Origin:
    """Return the origin of an HTTP request."""
    path = request.path_info
    return Origin(
        channel=AuditChannel.API if path.startswith(API_PREFIXES) else AuditChannel.WEB,
        remote_addr=client_address(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
        host=host_name(),
        request=request,
    )


def client_address(meta: dict) -> str | None:
    """Return the client's IP address: REMOTE_ADDR, or behind trusted proxies."""
    remote = _address(meta.get("REMOTE_ADDR"))
    proxies = trusted_proxies()
    if remote is None or not proxies or not _trusted(remote, proxies):
        return str(remote) if remote is not None else None
    forwarded = [
        _address(part) for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")
    ]
    for hop in reversed(forwarded):
        if hop is None:
            # A hop that is not an address: nothing to its left can be believed.
            break
        if not _trusted(hop, proxies):
            return str(hop)
    return str(remote)


def trusted_proxies() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Return the networks of ``AUDIT_TRUSTED_PROXIES``."""
    return [
        ipaddress.ip_network(entry, strict=False)
        for entry in getattr(settings, "AUDIT_TRUSTED_PROXIES", [])
    ]


def _trusted(address, proxies) -> bool:
    return any(address in network for network in proxies)


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


class OriginMiddleware:
    """Hold each request's origin for the code it runs (``current_origin``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        """Serve the request with its origin held."""
        with using(request_origin(request)):
            return self.get_response(request)
