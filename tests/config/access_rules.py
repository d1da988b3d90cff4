"""Who may use which URL: the expected status of every route, method and persona.

``RULES`` is keyed by the route exactly as ``tests/config/urlconf_walk.py``
spells it (the text of the ``path()`` patterns with their includes' prefixes);
each gives, per HTTP method the view accepts, the status each persona gets. A
route missing here fails the access matrix by name: whoever adds an endpoint
says here who may use it. The admin site's model pages are ruled by what the
model's admin allows (``ADMIN_MODELS``), so a newly registered model needs one
line there.

The requests carry no parameters and no body: a write answered 400 (or a form
page 200) got past the access check and was refused for its content; 403, 401
and a redirect to a login page are refusals of the person.
"""

from collections.abc import Iterable

PERSONAS = [
    "anonymous",
    "outsider",  # logged in, no role
    "surveyor_elsewhere",  # a surveyor of the other project
    "surveyor",
    "case_officer",
    "planner",
    "analyst",
    "registry_admin",
]
ROLES = PERSONAS[2:]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

# Tables a GET may write to: the records of reads (an export is a read whose
# log and audit record are kept).
READ_RECORDS = {"registry_exportlog", "registry_auditrecord"}

# Routes that may send an anonymous visitor somewhere else than a login page.
ANONYMOUS_REDIRECTS = {"i18n/setlang/": "/"}


def who(anonymous: int, outsider: int, roles: int | None = None, **each: int):
    """Return the status per persona: these two, every role ``roles`` unless named."""
    unknown = set(each) - set(ROLES)
    if unknown:
        raise ValueError(f"no such persona: {sorted(unknown)}")
    table = {"anonymous": anonymous, "outsider": outsider}
    for persona in ROLES:
        table[persona] = each.get(persona, roles)
    if None in table.values():
        raise ValueError(f"no status for {[p for p, s in table.items() if s is None]}")
    return table


def only(allowed: Iterable[str], status: int, *, anonymous: int, refused: int = 403):
    """Return ``status`` for the personas allowed, ``refused`` for the others."""
    allowed = set(allowed)
    return who(
        anonymous,
        refused,
        refused,
        **{persona: status for persona in ROLES if persona in allowed},
    )


def page(status: int = 200):
    """A page every role reads: anonymous visitors are sent to log in."""
    return who(302, 403, status)


def api(status: int = 200):
    """An API every role reads: no login is 401, no role 403."""
    return who(401, 403, status)


IMPORTERS = {"surveyor_elsewhere", "surveyor", "registry_admin"}  # of some project
OF_THE_PROJECT = {"surveyor", "registry_admin"}  # may import into the batch's project
EXPORTERS = {"analyst", "registry_admin"}
AUDIT_READERS = {"surveyor_elsewhere", "surveyor", "case_officer", "registry_admin"}
ADMIN = {"registry_admin"}

RULES: dict[str, dict[str, dict[str, int]]] = {
    # Logging in and out, the language switch, one's API token.
    "accounts/login/": {
        method: who(200, 302, 302) for method in ("GET", "POST", "PUT")
    },
    "accounts/logout/": {"POST": who(302, 302, 302)},
    "accounts/token/": {"GET": page(200), "POST": page(302)},
    # Any method; only a POST sets the language (a cookie), and only that.
    "i18n/setlang/": {method: who(302, 302, 302) for method in ("GET", *UNSAFE)},
    # Survey imports: pages.
    "imports/": {"GET": only(IMPORTERS, 200, anonymous=302)},
    "imports/new/": {
        "GET": only(IMPORTERS, 200, anonymous=302),
        "POST": only(IMPORTERS, 200, anonymous=302),  # the form, with its errors
    },
    "imports/<int:pk>/": {"GET": only(OF_THE_PROJECT, 200, anonymous=302)},
    "imports/<int:pk>/commit/": {"POST": only(OF_THE_PROJECT, 302, anonymous=302)},
    "imports/<int:pk>/recheck/": {"POST": only(OF_THE_PROJECT, 302, anonymous=302)},
    "imports/<int:pk>/undo/": {"POST": only(ADMIN, 302, anonymous=302)},
    "imports/<int:pk>/mapping/": {"POST": only(OF_THE_PROJECT, 302, anonymous=302)},
    # Survey imports: the API. A batch of a project one may not import into is
    # not found (404), as if it did not exist.
    # An upload is read before its project's role is checked: without a file
    # and a project it is refused for what it lacks.
    "api/imports/": {"GET": api(200), "POST": who(401, 400, 400)},
    "api/imports/<int:pk>/": {
        "GET": only(OF_THE_PROJECT, 200, anonymous=401, refused=404)
    },
    "api/imports/<int:pk>/commit/": {
        "POST": only(OF_THE_PROJECT, 202, anonymous=401, refused=404)
    },
    "api/imports/<int:pk>/undo/": {
        # Admins get past the role check; the batch was never committed.
        "POST": only(ADMIN, 400, anonymous=401)
    },
    # Statistics and exports.
    "api/statistics/progress/": {"GET": api(200)},
    "api/statistics/banked/": {"GET": api(200)},
    "api/exports/banked/": {
        "GET": only(EXPORTERS, 200, anonymous=401),
        "POST": only(EXPORTERS, 200, anonymous=401),
    },
    # REST.
    "api/parcels/": {"GET": api(200)},
    "api/parcels/search/": {"POST": api(400)},
    "api/parcels/transition/": {"POST": api(400)},
    "api/parcels/<int:pk>/": {"GET": api(200)},
    "api/parcels/<int:pk>/transition/": {"POST": api(400)},
    "api/buildings/": {"GET": api(200)},
    "api/projects/": {"GET": api(200)},
    "api/projects/<str:code>/": {"GET": api(200)},
    "api/schema/": {"GET": api(200)},
    "api/schema.json": {"GET": api(200)},
    "api/docs/": {"GET": api(200)},
    # OGC API – Features.
    "ogcapi/": {"GET": api(200)},
    "ogcapi/conformance": {"GET": api(200)},
    "ogcapi/collections": {"GET": api(200)},
    "ogcapi/collections/<str:collection_id>": {"GET": api(200)},
    "ogcapi/collections/<str:collection_id>/items": {"GET": api(200)},
    "ogcapi/collections/<str:collection_id>/items/<str:feature_id>": {"GET": api(200)},
    # Vector tiles.
    "tiles/<str:layer>.json": {"GET": api(200)},
    "tiles/<str:layer>/<int:z>/<int:x>/<int:y>.mvt": {"GET": api(200)},
    # Orthophotos.
    "imagery/": {"GET": page(200)},
    "imagery/projects/<int:project_id>/": {"GET": page(200)},
    "imagery/upload/": {
        "GET": only(IMPORTERS, 200, anonymous=302),
        "POST": only(IMPORTERS, 200, anonymous=302),
    },
    # Scripts' upload: read before the project's role is checked (no file: 400).
    "imagery/api/": {"POST": api(400)},
    "imagery/<int:pk>.json": {"GET": api(200)},
    "imagery/<int:pk>/tilejson.json": {"GET": api(200)},
    "imagery/<int:pk>/tiles/<int:z>/<int:x>/<int:y>.png": {"GET": api(200)},
    "imagery/<int:pk>/tiles/<int:z>/<int:x>/<int:y>.webp": {"GET": api(200)},
    # The registry's pages.
    "": {"GET": page(200)},
    "dashboard/": {"GET": page(200)},
    "dashboard/progress.csv": {"GET": page(200)},
    "map/": {"GET": page(200)},
    "projects/<str:code>/map": {"GET": page(200)},
    # The audit trail: admins, and members of a project for its records.
    "audit/": {"GET": only(AUDIT_READERS, 200, anonymous=302)},
    "audit/records.csv": {"GET": only(AUDIT_READERS, 200, anonymous=302)},
}

# The admin site. Everyone but a registry admin is sent to the admin's login,
# which sends anonymous visitors on to the site's login and refuses (403) the
# logged-in without the role.
_OUT = 302


def _admin(status_for_admin: int) -> dict[str, int]:
    return who(_OUT, _OUT, _OUT, registry_admin=status_for_admin)


ADMIN_SITE = {
    "admin/": {"GET": _admin(200), "POST": _admin(200)},
    "admin/login/": {
        method: who(302, 403, 403, registry_admin=302) for method in ("GET", "POST")
    },
    "admin/logout/": {"POST": who(302, 302, 302)},
    "admin/password_change/": {"GET": _admin(200), "POST": _admin(200)},
    "admin/password_change/done/": {"GET": _admin(200)},
    "admin/autocomplete/": {"GET": _admin(403)},  # no field named: refused
    "admin/jsi18n/": {"GET": _admin(200)},
    "admin/r/<path:content_type_id>/<path:object_id>/": {"GET": _admin(404)},
    "admin/(?P<url>.*)$": {"GET": _admin(404)},
}

# What each model's admin allows a registry admin: add, change, delete.
FULL = {"add": 200, "change": 200, "delete": 200}
NO_DELETE = {"add": 200, "change": 200, "delete": 403}  # evidence: never deleted
READ_ONLY = {"add": 403, "change": 403, "delete": 403}  # histories and logs
VIEW_AND_DELETE = {"add": 403, "change": 403, "delete": 200}
ADMIN_MODELS = {
    "registry/project": FULL,
    "registry/parcel": NO_DELETE,
    "registry/building": NO_DELETE,
    "registry/parcelstatuschange": READ_ONLY,
    "registry/parcelrevision": READ_ONLY,
    "registry/buildingstatuschange": READ_ONLY,
    "registry/exportlog": READ_ONLY,
    "registry/auditrecord": READ_ONLY,
    "registry/membership": FULL,
    "auth/user": FULL,
    "auth/group": FULL,
    # Deleting a token revokes it; no key is shown, none is added or moved.
    "authtoken/tokenproxy": VIEW_AND_DELETE,
    "importers/importbatch": READ_ONLY,
    "importers/savedmapping": FULL,
    "tilesvc/orthophoto": VIEW_AND_DELETE,  # through imagery.orthophoto_delete
    "fixtures/demoload": READ_ONLY,
    "axes/accessattempt": VIEW_AND_DELETE,  # deleting one lifts a lockout
    "axes/accesslog": READ_ONLY,
}


def _admin_model_rule(model: str, page: str) -> dict[str, dict[str, int]] | None:
    allows = ADMIN_MODELS.get(model)
    if allows is None:
        return None
    if page == "":  # the list (POST: no action chosen, shown again)
        return {"GET": _admin(200), "POST": _admin(200)}
    if page == "add/":
        return {"GET": _admin(allows["add"]), "POST": _admin(allows["add"])}
    if page == "<path:object_id>/":  # the old URL of the change page
        return {"GET": _admin(302), "POST": _admin(302)}
    if page == "<path:object_id>/change/":
        # A read-only admin still shows the object; only saving is refused.
        return {"GET": _admin(200), "POST": _admin(allows["change"])}
    if page == "<path:object_id>/delete/":
        # POST without "post=yes" asks for confirmation again: nothing deleted.
        return {"GET": _admin(allows["delete"]), "POST": _admin(allows["delete"])}
    if page == "<path:object_id>/history/":
        return {"GET": _admin(200), "POST": _admin(200)}
    if page == "<id>/password/" and model == "auth/user":
        return {"GET": _admin(200), "POST": _admin(200)}
    return None


def rule_for(route: str) -> dict[str, dict[str, int]] | None:
    """Return the statuses of ``route`` by method and persona, or None if unruled."""
    if route in RULES:
        return RULES[route]
    if route in ADMIN_SITE:
        return ADMIN_SITE[route]
    if route.startswith("admin/^(?P<app_label>"):  # an app's index
        return {"GET": _admin(200)}
    parts = route.split("/", 3)
    if parts[0] == "admin" and len(parts) == 4:
        return _admin_model_rule(f"{parts[1]}/{parts[2]}", parts[3])
    return None
