"""test_auth_roles.py - every route of the live route table, for every role and for no token.

The table is read from /api/v1/openapi.json (each operation carries
x-required-role), so a route added anywhere is checked here without
editing this test. A caller below the route's role gets 403, no token gets
401 (except public routes); a caller at or above it gets neither. Bodies
are empty objects and ids random, so handlers refuse them without harm.
"""
import uuid

import requests

ROLES = ["viewer", "operator", "admin"]
RANK = {"public": 0, "viewer": 1, "operator": 2, "admin": 3}


def concrete(path):
    parts = []
    for seg in path.split("/"):
        parts.append(str(uuid.uuid4()) if seg.startswith("{") and seg.endswith("}") else seg)
    return "/".join(parts)


def operations(doc):
    for path, ops in sorted(doc["paths"].items()):
        for method, op in sorted(ops.items()):
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, op


def call(daemon, method, path, token):
    headers = {"Authorization": "Bearer " + token} if token else {}
    kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    if path.endswith("/stream") or path.endswith("/events"):
        kw["stream"] = True
    r = requests.request(method, daemon.url(concrete(path)), headers=headers, timeout=30, **kw)
    r.close()
    return r.status_code


def test_every_route_for_every_role_and_no_token(daemon):
    doc = daemon.http.get(daemon.url("/api/v1/openapi.json")).json()
    tokens = {}
    for role in ROLES:  # API tokens capped at each role, from the admin
        r = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": role, "role": role})
        assert r.status_code == 201, r.text
        tokens[role] = r.json()["token"]
    ops = list(operations(doc))
    assert len(ops) >= 20, "the route table looks incomplete"
    failures = []
    for method, path, op in ops:
        need = op.get("x-required-role", "public")
        assert need in RANK, (method, path, need)
        status = call(daemon, method, path, None)
        if need != "public" and status != 401:
            failures.append(f"{method} {path} without a token: {status}, want 401")
        if need == "public" and status in (401, 403):
            failures.append(f"{method} {path} is public but answered {status}")
        for role in ROLES:
            status = call(daemon, method, path, tokens[role])
            allowed = RANK[role] >= RANK[need]
            if allowed and status in (401, 403):
                failures.append(f"{method} {path} as {role}: {status}, needs {need}")
            if not allowed and status != 403:
                failures.append(f"{method} {path} as {role}: {status}, want 403 (needs {need})")
    assert failures == [], "\n".join(failures)


def test_the_matrix_matches_the_documented_roles(daemon):
    doc = daemon.http.get(daemon.url("/api/v1/openapi.json")).json()
    role = {(m, p): op.get("x-required-role") for m, p, op in operations(doc)}
    expected = {
        ("POST", "/api/v1/auth/login"): "public",
        ("POST", "/api/v1/auth/refresh"): "public",
        ("GET", "/api/v1/auth/me"): "viewer",
        ("GET", "/api/v1/users"): "viewer",
        ("GET", "/api/v1/users/{id}"): "viewer",
        ("POST", "/api/v1/users"): "admin",
        ("GET", "/api/v1/users/me"): "viewer",
        ("PATCH", "/api/v1/users/{id}"): "admin",
        ("GET", "/api/v1/tokens"): "viewer",
        ("GET", "/api/v1/credentials"): "viewer",
        ("POST", "/api/v1/credentials"): "operator",
        ("DELETE", "/api/v1/credentials/{id}"): "operator",
        ("POST", "/api/v1/vault/rotate-key"): "admin",
        ("GET", "/api/v1/audit"): "admin",
    }
    for k, v in expected.items():
        assert role.get(k) == v, (k, role.get(k), v)
