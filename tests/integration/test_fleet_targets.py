"""test_fleet_targets.py - the targets API: fields and their checks, filters and paging, bulk
import, roles, the credential in-use refusal, host keys, the local transport's test."""
import time

from fixtures.fleet import check, create, probe

CRED = {"name": "c", "type": "ssh_password", "username": "u", "password": "pw-1"}
FP = "SHA256:" + "A" * 43


def cred(d, **kw):
    body = {k: v for k, v in dict(CRED, **kw).items() if v is not None}
    return check(d.http.post(d.url("/api/v1/credentials"), json=body), 201)


def ssh_body(name, c, **kw):
    body = {"name": name, "address": "192.0.2.10", "credential_id": c["id"]}
    body.update(kw)
    return body


def post(d, body):
    return d.http.post(d.url("/api/v1/targets"), json=body)


def error_of(r, status):
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_create_fills_defaults_and_reads_back(daemon):
    c = cred(daemon)
    t = create(daemon, ssh_body("web-01", c, labels={"env": "prod", "example.com/role": "web"},
                                description="front"))
    assert t["port"] == 22 and t["transport"] == "ssh" and t["os_family"] == "linux"
    assert t["host_key_policy"] == "strict" and t["enabled"] is True
    assert t["connect_timeout_s"] == 15 and t["command_timeout_s"] == 0
    assert t["host_keys"] == [] and t["facts"] == {} and t["last_test"] is None
    assert t["version"] == 1 and t["id"] and t["created_at"]
    r = daemon.get(f"/api/v1/targets/{t['id']}")
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert r.json()["labels"] == {"env": "prod", "example.com/role": "web"}


def test_addresses_are_validated(daemon):
    c = cred(daemon)
    for i, addr in enumerate(["db.example.com", "10.0.0.1", "::1", "fe80::1", "host_1.local."]):
        assert post(daemon, ssh_body(f"ok{i}", c, address=addr)).status_code == 201, addr
    t = create(daemon, ssh_body("brackets", c, address="[2001:db8::1]"))
    assert t["address"] == "2001:db8::1"
    for addr in ["300.1.1.1", "1.2.3", "-bad.example", "a..b", "x" * 64 + ".com", "a b",
                 "[::1", "http://h"]:
        e = error_of(post(daemon, ssh_body("bad", c, address=addr)), 400)
        assert e["details"]["field"] == "address", addr
        assert "neither a DNS name nor an IPv4 or IPv6 address" in e["message"]


def test_field_checks_name_the_field(daemon):
    c = cred(daemon)
    cases = [
        ({"port": 70000}, "port"),
        ({"os_family": "bsd"}, "os_family"),
        ({"transport": "telnet"}, "transport"),
        ({"labels": {"env": 1}}, "labels"),
        ({"labels": {"bad key": "x"}}, "labels"),
        ({"labels": {"env": "a b"}}, "labels"),
        ({"host_key_policy": "maybe"}, "host_key_policy"),
        ({"connect_timeout_s": 0}, "connect_timeout_s"),
        ({"enabled": "yes"}, "enabled"),
        ({"transport_options": {"x": 1}}, "transport_options"),
        ({"facts": {}}, "facts"),
        ({"credential_id": "not-an-id"}, "credential_id"),
    ]
    for extra, field in cases:
        e = error_of(post(daemon, ssh_body("t", c, **extra)), 400)
        assert e["code"] == "invalid_target", (extra, e)
        assert e["details"]["field"] == field, (extra, e)
    e = error_of(post(daemon, ssh_body("t", c, colour="red")), 400)
    assert "unknown field 'colour'" in e["message"] and "valid:" in e["message"]
    e = error_of(post(daemon, {"address": "h", "credential_id": c["id"]}), 400)
    assert e["details"]["field"] == "name"
    e = error_of(post(daemon, {"name": "n", "address": "h"}), 400)
    assert e["message"] == "credential_id is required for the ssh transport"
    e = error_of(post(daemon, {"name": "n", "address": "h", "transport": "telnet"}), 400)
    assert "no transport 'telnet' is loaded" in e["message"] and "ssh" in e["message"]


def test_credential_must_exist_and_suit_the_transport(daemon):
    secret = cred(daemon, name="s", type="secret", value="v", username=None, password=None)
    e = error_of(post(daemon, ssh_body("t", {"id": "0190a6e4-7a2b-7c3d-8e4f-001122334455"})), 400)
    assert e["details"]["field"] == "credential_id" and "does not exist" in e["message"]
    e = error_of(post(daemon, ssh_body("t", secret)), 400)
    assert e["message"] == ("credential 's' is of type secret; the ssh transport needs ssh_key or "
                            "ssh_password")
    e = error_of(post(daemon, {"name": "l", "transport": "local", "credential_id": secret["id"]}),
                 400)
    assert "takes no credential" in e["message"]


def test_names_are_unique_and_renames_free_them(daemon):
    c = cred(daemon)
    a = create(daemon, ssh_body("a", c))
    e = error_of(post(daemon, ssh_body("a", c)), 409)
    assert e["code"] == "conflict" and e["details"]["field"] == "name"
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{a['id']}"), json={"name": "b"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert post(daemon, ssh_body("a", c)).status_code == 201
    assert error_of(post(daemon, ssh_body("b", c)), 409)["details"]["field"] == "name"


def test_policy_off_needs_the_flag_and_warns(daemon):
    c = cred(daemon)
    e = error_of(post(daemon, ssh_body("t", c, host_key_policy="off")), 400)
    assert e["details"]["field"] == "host_key_policy" and "allow_insecure" in e["message"]
    t = create(daemon, ssh_body("t", c, host_key_policy="off", allow_insecure=True))
    assert t["host_key_policy"] == "off" and "allow_insecure" not in t
    assert any("host key verification is off" in w for w in t["warnings"])
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{t['id']}"), json={"description": "x"})
    assert r.status_code == 200 and r.json()["warnings"]
    u = create(daemon, ssh_body("u", c))
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{u['id']}"), json={"host_key_policy": "off"})
    assert r.status_code == 400


def test_patch_checks_if_match_and_null_resets(daemon):
    c = cred(daemon)
    t = create(daemon, ssh_body("t", c, port=2222, description="d", labels={"a": "b"}))
    url = daemon.url(f"/api/v1/targets/{t['id']}")
    r = daemon.http.patch(url, json={"port": None, "labels": None, "description": None},
                          headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["port"] == 22 and r.json()["labels"] == {} and r.json()["description"] == ""
    assert r.headers["ETag"] == '"2"'
    r = daemon.http.patch(url, json={"port": 2}, headers={"If-Match": '"1"'})
    assert r.status_code == 412
    e = error_of(daemon.http.patch(url, json={"host_keys": []}), 400)
    assert "/host-keys" in e["message"]
    e = error_of(daemon.http.patch(url, json={"name": None}), 400)
    assert e["message"] == "name cannot be null"


def test_list_filters_and_pages(daemon):
    c = cred(daemon)
    for i in range(12):
        create(daemon, ssh_body(f"web-{i:02}", c, labels={"env": "prod" if i % 2 else "dev",
                                                           "role": "web"}, enabled=i != 3))
    create(daemon, ssh_body("db-1", c, labels={"env": "prod", "role": "db", "legacy": "yes"},
                            os_family="windows"))
    create(daemon, {"name": "self", "transport": "local"})

    def names(query):
        r = daemon.get("/api/v1/targets", params=query)
        assert r.status_code == 200, r.text
        return sorted(t["name"] for t in r.json()["items"])
    assert len(names({"label": "env=prod"})) == 7
    assert names({"label": "env=prod,role in (web,db),!legacy"}) == \
        [f"web-{i:02}" for i in range(1, 12, 2)]
    assert names({"os": "windows"}) == ["db-1"]
    assert names({"transport": "local"}) == ["self"]
    assert names({"name_prefix": "web-1"}) == ["web-10", "web-11"]
    assert names({"name": "db-1"}) == ["db-1"]
    assert names({"enabled": "false"}) == ["web-03"]
    e = error_of(daemon.get("/api/v1/targets", params={"label": "env in prod"}), 400)
    assert e["message"] == "label: column 8: expected '(' after 'in', found 'p'"
    seen, cursor = [], None
    while True:
        r = daemon.get("/api/v1/targets", params={"limit": 5, "label": "role",
                                                  **({"cursor": cursor} if cursor else {})})
        page = r.json()
        seen += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 13 and len(set(seen)) == 13


def test_bulk_import_reports_each_item_and_is_fast(daemon):
    c = cred(daemon)
    items = [ssh_body(f"bulk-{i:03}", c, labels={"fleet": "bulk"}) for i in range(200)]
    items[7]["address"] = "300.0.0.1"
    items[9] = "not an object"
    items[11]["name"] = "bulk-000"  # taken by item 0, in the same request
    items[13]["credential_id"] = "0190a6e4-7a2b-7c3d-8e4f-001122334455"
    start = time.monotonic()
    r = daemon.http.post(daemon.url("/api/v1/targets/bulk"), json=items, timeout=30)
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 196 and body["failed"] == 4
    assert elapsed < 1.0, f"200 targets took {elapsed:.2f} s"
    res = body["items"]
    assert [x["index"] for x in res] == list(range(200))
    assert res[0]["status"] == "created" and res[0]["name"] == "bulk-000"
    assert res[7]["error"]["field"] == "address"
    assert res[9]["error"]["message"] == "each item must be a JSON object"
    assert res[11]["error"]["code"] == "conflict" and res[11]["error"]["field"] == "name"
    assert res[13]["error"]["field"] == "credential_id"
    listed = daemon.get("/api/v1/targets", params={"label": "fleet=bulk", "limit": 500}).json()
    assert len(listed["items"]) == 196
    assert daemon.http.post(daemon.url("/api/v1/targets/bulk"), json={"a": 1}).status_code == 400


def test_viewers_read_operators_write(daemon):
    c = cred(daemon)
    t = create(daemon, ssh_body("t", c))
    tokens = {}
    for role in ("viewer", "operator"):
        r = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": role, "role": role})
        tokens[role] = daemon.session(r.json()["token"])
    viewer, operator = tokens["viewer"], tokens["operator"]
    assert viewer.get(daemon.url(f"/api/v1/targets/{t['id']}")).status_code == 200
    assert viewer.get(daemon.url("/api/v1/targets")).status_code == 200
    assert viewer.post(daemon.url("/api/v1/targets"), json=ssh_body("v", c)).status_code == 403
    assert viewer.patch(daemon.url(f"/api/v1/targets/{t['id']}"), json={}).status_code == 403
    assert viewer.delete(daemon.url(f"/api/v1/targets/{t['id']}")).status_code == 403
    assert viewer.post(daemon.url(f"/api/v1/targets/{t['id']}/test")).status_code == 403
    assert viewer.delete(daemon.url(f"/api/v1/targets/{t['id']}/host-keys")).status_code == 403
    assert operator.post(daemon.url("/api/v1/targets"), json=ssh_body("o", c)).status_code == 201
    assert operator.delete(daemon.url(f"/api/v1/targets/{t['id']}")).status_code == 204


def test_credential_in_use_is_refused_until_its_targets_go(daemon):
    c = cred(daemon)
    t1 = create(daemon, ssh_body("t1", c))
    t2 = create(daemon, ssh_body("t2", c))
    url = daemon.url(f"/api/v1/credentials/{c['id']}")
    e = error_of(daemon.http.delete(url), 409)
    assert e["code"] == "in_use"
    assert sorted(u["name"] for u in e["details"]["used_by"]) == ["t1", "t2"]
    # Moving a target to another credential, and deleting the other, frees it.
    other = cred(daemon, name="other")
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{t1['id']}"),
                          json={"credential_id": other["id"]})
    assert r.status_code == 200
    assert [u["name"] for u in error_of(daemon.http.delete(url), 409)["details"]["used_by"]] == \
        ["t2"]
    assert daemon.http.delete(daemon.url(f"/api/v1/targets/{t2['id']}")).status_code == 204
    assert daemon.http.delete(url).status_code == 204


def test_host_keys_are_pinned_and_reset_through_their_own_routes(daemon):
    c = cred(daemon)
    t = create(daemon, ssh_body("t", c, host_keys=[f"ssh-ed25519 {FP}"]))
    assert t["host_keys"][0]["type"] == "ssh-ed25519" and t["host_keys"][0]["source"] == "api"
    url = daemon.url(f"/api/v1/targets/{t['id']}/host-keys")
    fp2 = "SHA256:" + "B" * 43
    r = daemon.http.post(url, json={"key": f"ecdsa-sha2-nistp256 {fp2}"})
    assert r.status_code == 201 and len(r.json()["host_keys"]) == 2
    assert daemon.http.post(url, json={"type": "ssh-ed25519", "fingerprint": FP}).status_code == 200
    e = error_of(daemon.http.post(url, json={"key": "ssh-ed25519 " + "SHA256:" + "C" * 43}), 409)
    assert "CHANGED" in e["message"] and FP in e["message"]
    assert error_of(daemon.http.post(url, json={"key": "ssh-ed25519 md5:xx"}), 400)
    assert daemon.http.delete(url).status_code == 204
    assert daemon.get(f"/api/v1/targets/{t['id']}").json()["host_keys"] == []
    audit = daemon.get("/api/v1/audit", params={"action": "DELETE /api/v1/targets/{id}/host-keys"})
    assert audit.status_code == 200 and audit.json()["items"][0]["object"] == t["id"]
    bad = ssh_body("u", c, host_keys=["ssh-ed25519 nope"])
    assert error_of(post(daemon, bad), 400)["details"]["field"] == "host_keys"


def test_local_target_is_tested_and_its_facts_stored(daemon):
    t = create(daemon, {"name": "self", "transport": "local", "labels": {"site": "here"}})
    assert t["address"] == "localhost" and t["port"] == 0
    res = probe(daemon, t["id"])
    assert res["ok"] is True, res
    facts = res["facts"]
    assert facts["kernel_name"] == "Linux" and facts["arch"] and facts["kernel"]
    assert facts["hostname"] and facts["os_name"] and facts["last_seen"]
    stored = daemon.get(f"/api/v1/targets/{t['id']}").json()
    assert stored["facts"]["kernel"] == facts["kernel"]
    assert stored["last_test"]["ok"] is True
    disabled = create(daemon, {"name": "off", "transport": "local", "enabled": False})
    res = probe(daemon, disabled["id"])
    assert res["ok"] is False and res["error"]["code"] == "ESTATE"
    assert daemon.http.post(daemon.url("/api/v1/targets/0190a6e4-7a2b-7c3d-8e4f-001122334455/test")
                            ).status_code == 404
