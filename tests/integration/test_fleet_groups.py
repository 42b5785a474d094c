"""test_fleet_groups.py - the groups API: static members, label selectors, nesting and its cycles,
resolved members, deletions, roles."""
from fixtures.fleet import check, create, group


def local(d, name, **labels):
    return create(d, {"name": name, "transport": "local", "labels": labels})


def members(d, gid, **params):
    r = d.get(f"/api/v1/groups/{gid}/targets", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def names(d, gid):
    return [t["name"] for t in members(d, gid, limit=500)["items"]]


def test_members_selector_and_nested_groups_resolve_once_each(daemon):
    web1 = local(daemon, "web1", env="prod", role="web")
    web2 = local(daemon, "web2", env="prod", role="web", legacy="yes")
    local(daemon, "db1", env="prod", role="db")  # matches no selector below
    dev = local(daemon, "dev1", env="dev", role="web")
    static = group(daemon, name="static", members=[dev["id"], web1["id"], dev["id"]])
    assert static["members"] == [dev["id"], web1["id"]]  # repeats dropped
    prod = group(daemon, name="prod", selector="env=prod,role in (web,db),!legacy")
    assert names(daemon, prod["id"]) == ["web1", "db1"]
    both = group(daemon, name="both", members=[web1["id"]], groups=[static["id"], prod["id"]])
    assert names(daemon, both["id"]) == ["web1", "db1", "dev1"]  # id order, once each
    # New targets with matching labels join by themselves.
    local(daemon, "db2", env="prod", role="db")
    assert names(daemon, prod["id"]) == ["web1", "db1", "db2"]
    assert "web2" not in names(daemon, both["id"])
    assert web2["id"]


def test_disabled_members_are_listed_and_flagged(daemon):
    a = local(daemon, "a", tier="x")
    b = create(daemon, {"name": "b", "transport": "local", "enabled": False,
                        "labels": {"tier": "x"}})
    g = group(daemon, name="g", selector="tier")
    body = members(daemon, g["id"])
    assert body["total"] == 2 and body["disabled"] == 1
    flags = {t["id"]: t["enabled"] for t in body["items"]}
    assert flags == {a["id"]: True, b["id"]: False}


def test_resolved_members_page_in_id_order(daemon):
    ids = [local(daemon, f"t{i:02}", pool="p")["id"] for i in range(7)]
    g = group(daemon, name="g", selector="pool=p")
    seen, cursor = [], None
    while True:
        body = members(daemon, g["id"], limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [t["id"] for t in body["items"]]
        assert body["total"] == 7
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids


def test_a_target_can_be_in_many_groups(daemon):
    t = local(daemon, "t", env="prod")
    g1 = group(daemon, name="g1", members=[t["id"]])
    g2 = group(daemon, name="g2", selector="env=prod")
    g3 = group(daemon, name="g3", members=[t["id"]], groups=[g1["id"]])
    for g in (g1, g2, g3):
        assert names(daemon, g["id"]) == ["t"]


def test_nesting_cycles_are_refused_naming_the_path(daemon):
    a = group(daemon, name="a")
    b = group(daemon, name="b", groups=[a["id"]])
    c = group(daemon, name="c", groups=[b["id"]])
    r = daemon.http.patch(daemon.url(f"/api/v1/groups/{a['id']}"), json={"groups": [c["id"]]})
    assert r.status_code == 400, r.text
    e = r.json()["error"]
    assert e["details"]["field"] == "groups"
    assert e["message"] == "nesting would close a cycle: a -> c -> b -> a"
    r = daemon.http.patch(daemon.url(f"/api/v1/groups/{a['id']}"), json={"groups": [a["id"]]})
    assert r.status_code == 400 and "itself" in r.json()["error"]["message"]


def test_group_checks_name_the_field(daemon):
    t = local(daemon, "t")
    cases = [
        ({"name": "x", "selector": "env in prod"}, "selector",
         "selector: column 8: expected '(' after 'in', found 'p'"),
        ({"name": "x", "members": ["0190a6e4-7a2b-7c3d-8e4f-001122334455"]}, "members",
         "members[0]: target 0190a6e4-7a2b-7c3d-8e4f-001122334455 does not exist"),
        ({"name": "x", "members": [t["id"], 3]}, "members", "members[1] must be an id"),
        ({"name": "x", "groups": ["0190a6e4-7a2b-7c3d-8e4f-001122334455"]}, "groups",
         "groups[0]: group 0190a6e4-7a2b-7c3d-8e4f-001122334455 does not exist"),
        ({"selector": "a"}, "name", "name is required"),
    ]
    for body, field, msg in cases:
        r = daemon.http.post(daemon.url("/api/v1/groups"), json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["details"]["field"] == field
        assert r.json()["error"]["message"] == msg
    group(daemon, name="dup")
    r = daemon.http.post(daemon.url("/api/v1/groups"), json={"name": "dup"})
    assert r.status_code == 409


def test_deleting_a_target_takes_it_out_of_its_groups(daemon):
    t = local(daemon, "t")
    u = local(daemon, "u")
    g = group(daemon, name="g", members=[t["id"], u["id"]])
    assert daemon.http.delete(daemon.url(f"/api/v1/targets/{t['id']}")).status_code == 204
    stored = daemon.get(f"/api/v1/groups/{g['id']}").json()
    assert stored["members"] == [u["id"]] and stored["version"] == 2
    assert names(daemon, g["id"]) == ["u"]


def test_a_nested_group_is_deleted_only_when_forced(daemon):
    child = group(daemon, name="child")
    parent = group(daemon, name="parent", groups=[child["id"]])
    url = daemon.url(f"/api/v1/groups/{child['id']}")
    r = daemon.http.delete(url)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["nested_in"] == [{"id": parent["id"], "name": "parent"}]
    assert daemon.http.delete(url + "?force=true").status_code == 204
    assert daemon.get(f"/api/v1/groups/{parent['id']}").json()["groups"] == []
    assert daemon.get(f"/api/v1/groups/{child['id']}").status_code == 404
    assert daemon.http.delete(daemon.url(f"/api/v1/groups/{parent['id']}")).status_code == 204
    assert daemon.get(f"/api/v1/groups/{parent['id']}/targets").status_code == 404


def test_viewers_read_groups_operators_write_them(daemon):
    g = group(daemon, name="g")
    r = daemon.http.post(daemon.url("/api/v1/tokens"), json={"name": "v", "role": "viewer"})
    viewer = daemon.session(r.json()["token"])
    assert viewer.get(daemon.url(f"/api/v1/groups/{g['id']}")).status_code == 200
    assert viewer.get(daemon.url(f"/api/v1/groups/{g['id']}/targets")).status_code == 200
    assert viewer.post(daemon.url("/api/v1/groups"), json={"name": "x"}).status_code == 403
    assert viewer.post(daemon.url(f"/api/v1/groups/{g['id']}/test")).status_code == 403
    listed = check(daemon.get("/api/v1/groups", params={"name_prefix": "g"}), 200)
    assert [x["name"] for x in listed["items"]] == ["g"]
