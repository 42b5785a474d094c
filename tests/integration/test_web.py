"""test_web.py - the daemon serving the web UI: static files ([web] dir), their caching and
security headers, the SPA fallback's boundaries, traversal; browser sessions (cookie mode of
login, refresh and logout, with their CSRF checks); and the budget of the real UI build."""
import gzip
import hashlib
import pathlib
import re

import pytest
import requests

from conftest import BUILD_DIR, parse_response

APP_JS = b"export const app = 1;\n" + b"/* padding that compresses */ " * 40
INDEX = b'<!doctype html><title>ui</title><script type="module" src="/assets/app-ABCD2345.js"></script>'
HASHED = "/assets/app-ABCD2345.js"


@pytest.fixture
def web_dir(tmp_path):
    d = tmp_path / "web"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_bytes(INDEX)
    (d / "index.html.gz").write_bytes(gzip.compress(INDEX))
    (d / HASHED[1:]).write_bytes(APP_JS)
    (d / (HASHED[1:] + ".gz")).write_bytes(gzip.compress(APP_JS))
    (d / "favicon.svg").write_bytes(b"<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    (d / "secret.txt").symlink_to(tmp_path / "secret.txt")
    return d


@pytest.fixture
def ui(daemon_factory, web_dir):
    return daemon_factory(config={"web": {"dir": str(web_dir)}})


def raw_get(d, path, headers=""):
    status, hdrs, body = parse_response(d.raw(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}"
                                              "Connection: close\r\n\r\n".encode()))
    return status, hdrs, body


def assert_security_headers(h):
    csp = h["Content-Security-Policy"]
    for directive in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
                      "object-src 'none'"]:
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"


# ---- static files -----------------------------------------------------------------------------

def test_index_is_served_uncached_with_security_headers(ui):
    r = requests.get(ui.url("/"), headers={"Accept-Encoding": "identity"}, timeout=10)
    assert r.status_code == 200
    assert r.content == INDEX
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Content-Encoding" not in r.headers
    assert_security_headers(r.headers)
    again = requests.get(ui.url("/"), headers={"If-None-Match": r.headers["ETag"],
                                               "Accept-Encoding": "identity"}, timeout=10)
    assert again.status_code == 304
    assert again.content == b""
    assert_security_headers(again.headers)


def test_hashed_assets_are_immutable_and_precompressed(ui):
    r = requests.get(ui.url(HASHED), headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    wire = r.raw.read(decode_content=False)
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert len(wire) < len(APP_JS) and gzip.decompress(wire) == APP_JS
    plain = requests.get(ui.url(HASHED), headers={"Accept-Encoding": "identity"}, timeout=10)
    assert plain.content == APP_JS and "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] != r.headers["ETag"]
    same = requests.get(ui.url(HASHED), headers={"Accept-Encoding": "gzip",
                                                 "If-None-Match": r.headers["ETag"]}, timeout=10)
    assert same.status_code == 304


def test_spa_routes_get_index_but_files_and_api_paths_do_not(ui):
    for path in ["/runs/0193f6e2-7a4c-7000-8000-000000000000", "/jobs/new", "/schedules?x=1"]:
        r = requests.get(ui.url(path), timeout=10)
        assert r.status_code == 200 and r.content == INDEX, path
        assert r.headers["Cache-Control"] == "no-cache"
    for path in ["/assets/app-ZZZZ2222.js", "/robots.txt", "/index.html.gz", "/secret.txt"]:
        r = requests.get(ui.url(path), timeout=10)
        assert r.status_code == 404, path
        assert_security_headers(r.headers)
    for path in ["/api/v1/nothing", "/api/ui", "/health/x", "/metrics/x"]:
        r = requests.get(ui.url(path), timeout=10)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
        assert "Content-Security-Policy" not in r.headers
    assert requests.get(ui.url("/health"), timeout=10).text.strip() != INDEX.decode()
    assert requests.post(ui.url("/jobs/new"), timeout=10).status_code == 404


def test_traversal_in_ui_paths_is_404(ui):
    for path in ["/assets/../index.html", "/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2f..%2fsecret.txt",
                 "/assets/%2E%2e/index.html", "/./index.html", "/x/..%2F..%2F..%2Fetc%2Fpasswd"]:
        status, headers, body = raw_get(ui, path)
        assert status == 404, path
        assert b"root:" not in body and b"<title>" not in body
    status, _, _ = raw_get(ui, "/api/v1/%2e%2e/health")
    assert status == 400  # the API's answer is unchanged


def test_without_ui_files_the_daemon_serves_the_api_alone(daemon_factory, tmp_path):
    d = daemon_factory(config={"web": {"dir": str(tmp_path / "missing")}})
    assert requests.get(d.url("/"), timeout=10).status_code == 404
    assert "web UI not served" in d.stderr()
    off = daemon_factory(config={"web": {"enabled": "false"}})
    assert requests.get(off.url("/"), timeout=10).status_code == 404
    assert off.get("/api/v1/system").status_code == 200


# ---- browser sessions -------------------------------------------------------------------------

COOKIE = {"X-OPSC-Session": "cookie"}


def browser_login(d):
    return requests.post(d.url("/api/v1/auth/login"), headers=COOKIE, timeout=30,
                         json={"username": "admin", "password": d.admin_password})


def set_cookie(r):
    v = r.headers["Set-Cookie"]
    token = re.match(r"opsc_refresh=([^;]*);", v).group(1)
    return token, [a.strip() for a in v.split(";")[1:]]


def test_cookie_login_keeps_the_refresh_token_out_of_reach_of_script(daemon):
    r = browser_login(daemon)
    assert r.status_code == 200
    body = r.json()
    assert "refresh_token" not in body and body["access_token"] and body["token_type"] == "Bearer"
    token, attrs = set_cookie(r)
    assert token.startswith("opsc_rt_")
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/api/v1/auth" in attrs
    assert "Max-Age=604800" in attrs and "Secure" not in attrs  # plain http here
    # Without the header, login answers as it always did.
    plain = daemon.login("admin", daemon.admin_password)
    assert plain.json()["refresh_token"] and "Set-Cookie" not in plain.headers
    # A TLS page (proxy or https Origin) gets a Secure cookie.
    tls = requests.post(daemon.url("/api/v1/auth/login"), timeout=30,
                        headers=dict(COOKIE, **{"X-Forwarded-Proto": "https"}),
                        json={"username": "admin", "password": daemon.admin_password})
    assert "Secure" in set_cookie(tls)[1]


def cookie_refresh(d, token, origin=True, header=True):
    headers = {"Cookie": f"opsc_refresh={token}"}
    if header:
        headers.update(COOKIE)
    if origin is True:
        headers["Origin"] = f"http://127.0.0.1:{d.port}"
    elif origin:
        headers["Origin"] = origin
    return requests.post(d.url("/api/v1/auth/refresh"), json={}, headers=headers, timeout=10)


def test_cookie_refresh_rotates_and_requires_header_and_same_origin(daemon):
    token, _ = set_cookie(browser_login(daemon))
    assert cookie_refresh(daemon, token, header=False).status_code == 400  # a forged form post
    r = cookie_refresh(daemon, token, origin=None)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert cookie_refresh(daemon, token, origin="http://evil.example").status_code == 403
    assert cookie_refresh(daemon, token, origin=f"http://127.0.0.1:{daemon.port + 1}").status_code == 403
    r = cookie_refresh(daemon, token)
    assert r.status_code == 200 and "refresh_token" not in r.json()
    fresh, _ = set_cookie(r)
    assert fresh != token
    me = daemon.session(r.json()["access_token"]).get(daemon.url("/api/v1/auth/me"))
    assert me.json()["user"]["username"] == "admin"
    # The old cookie is spent: using it again ends the whole session family, cookie expired.
    again = cookie_refresh(daemon, token)
    assert again.status_code == 401
    assert "Max-Age=0" in set_cookie(again)[1]
    assert cookie_refresh(daemon, fresh).status_code == 401
    none = requests.post(daemon.url("/api/v1/auth/refresh"), json={}, timeout=10,
                         headers=dict(COOKIE, Origin=f"http://127.0.0.1:{daemon.port}"))
    assert none.status_code == 401


def test_cookie_logout_revokes_the_session_and_expires_the_cookie(daemon):
    r = browser_login(daemon)
    token, _ = set_cookie(r)
    access = r.json()["access_token"]
    origin = f"http://127.0.0.1:{daemon.port}"
    headers = dict(COOKIE, Authorization="Bearer " + access, Cookie=f"opsc_refresh={token}")
    assert requests.post(daemon.url("/api/v1/auth/logout"), headers=headers,
                         timeout=10).status_code == 403  # no Origin
    out = requests.post(daemon.url("/api/v1/auth/logout"), timeout=10,
                        headers=dict(headers, Origin=origin))
    assert out.status_code == 204
    assert "Max-Age=0" in set_cookie(out)[1]
    assert cookie_refresh(daemon, token).status_code == 401
    assert daemon.session(access).get(daemon.url("/api/v1/auth/me")).status_code == 401


# ---- the real build -----------------------------------------------------------------------------

# A sanitizer build does not build the UI (-Dweb_ui=disabled): its daemon serves the release
# build's, as it would any [web] dir.
UI_BUILD = next((d for d in (BUILD_DIR / "web" / "web",
                             pathlib.Path(__file__).resolve().parents[2] / "build" / "web" / "web")
                 if (d / "index.html").exists()), BUILD_DIR / "web" / "web")


@pytest.mark.skipif(not (UI_BUILD / "index.html").exists(), reason="web UI not built (-Dweb_ui)")
def test_built_ui_fits_its_budget_and_has_no_inline_script(daemon_factory):
    files = [p for p in UI_BUILD.rglob("*") if p.is_file() and not p.name.endswith(".gz")]
    served = sum((p.with_name(p.name + ".gz") if p.with_name(p.name + ".gz").exists() else p)
                 .stat().st_size for p in files if p.suffix in (".js", ".css", ".html"))
    assert served <= 150 * 1024, f"bundle is {served} bytes gzipped"
    index = (UI_BUILD / "index.html").read_text()
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", index, re.S)
    assert scripts and all(s.strip() == "" for s in scripts)  # no inline script
    assert "style=" not in index
    d = daemon_factory(config={"web": {"dir": str(UI_BUILD)}})
    for src in re.findall(r'(?:src|href)="(/assets/[^"]+)"', index):
        r = requests.get(d.url(src), timeout=10)
        assert r.status_code == 200, src
        if src.endswith(".js"):  # the bundle always compresses; a tiny file may not
            assert r.headers["Content-Encoding"] == "gzip", src
        assert r.headers["Cache-Control"].endswith("immutable")
        assert hashlib.sha256(r.content).hexdigest() == \
            hashlib.sha256((UI_BUILD / src[1:]).read_bytes()).hexdigest()
