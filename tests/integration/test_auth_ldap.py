"""test_auth_ldap.py - the auth-ldap plugin against a real slapd: bind as the user, groups to roles, first login."""
import pytest

from fixtures.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, USERS, Slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    s = Slapd(tmp_path_factory.mktemp("ldap"))
    s.start()
    yield s
    s.stop()


def ldap_config(slapd, mode):
    section = {"uri": slapd.uri, "group_base": "ou=groups," + SUFFIX,
               "admin_groups": "ops-admins",
               "operator_groups": "cn=ops-operators,ou=groups," + SUFFIX,
               "viewer_groups": "ops-viewers"}
    if mode == "template":
        section["user_dn_template"] = "uid={username},ou=people," + SUFFIX
    else:
        section.update({"user_base": "ou=people," + SUFFIX, "bind_dn": SERVICE_DN,
                        "bind_password": SERVICE_PW})
    return {"auth": {"providers": "local,ldap"}, "plugin.auth-ldap": section}


@pytest.fixture(params=["template", "search"])
def ldap_daemon(request, slapd, daemon_factory):
    return daemon_factory(config=ldap_config(slapd, request.param))


@pytest.mark.parametrize("user,role", [("alice", "admin"), ("bob", "operator"),
                                       ("dave", "viewer")])
def test_first_login_creates_the_user_with_the_role_of_its_groups(ldap_daemon, user, role):
    d = ldap_daemon
    r = d.login(user, USERS[user][0])
    assert r.status_code == 200, r.text
    me = d.session(r.json()["access_token"]).get(d.url("/api/v1/users/me")).json()
    assert me["username"] == user and me["role"] == role and me["provider"] == "ldap"
    assert me["display_name"] == USERS[user][1] and me["email"] == USERS[user][2]
    assert "password_hash" not in me
    # The record is there for admins to see.
    users = d.http.get(d.url("/api/v1/users")).json()["items"]
    assert user in [u["username"] for u in users]


def test_wrong_password_empty_password_and_unknown_user_are_401(ldap_daemon):
    d = ldap_daemon
    assert d.login("alice", "wrong").status_code == 401
    assert d.login("alice", "").status_code == 401
    assert d.login("nobody", "whatever").status_code == 401


def test_user_in_no_mapped_group_cannot_log_in(ldap_daemon):
    assert ldap_daemon.login("carol", USERS["carol"][0]).status_code == 401


def test_filter_metacharacters_in_names_are_escaped(ldap_daemon):
    d = ldap_daemon
    assert d.login("ev*l", USERS["ev*l"][0]).status_code == 401  # not a valid username here
    assert d.login("*", USERS["alice"][0]).status_code == 401
    assert d.login("alice)(uid=*", USERS["alice"][0]).status_code == 401


def test_a_disabled_ldap_user_stays_out(ldap_daemon):
    d = ldap_daemon
    assert d.login("bob", USERS["bob"][0]).status_code == 200
    bob = [u for u in d.http.get(d.url("/api/v1/users")).json()["items"]
           if u["username"] == "bob"][0]
    assert d.http.patch(d.url("/api/v1/users/" + bob["id"]),
                        json={"enabled": False}).status_code == 200
    assert d.login("bob", USERS["bob"][0]).status_code == 401


def test_local_users_still_log_in_first_in_the_chain(ldap_daemon):
    assert ldap_daemon.login("admin", ldap_daemon.admin_password).status_code == 200


def test_ldap_down_means_401_not_a_crash(slapd, daemon_factory):
    cfg = ldap_config(slapd, "template")
    cfg["plugin.auth-ldap"]["uri"] = "ldap://127.0.0.1:1"
    cfg["plugin.auth-ldap"]["timeout"] = "1s"
    d = daemon_factory(config=cfg)
    assert d.login("alice", USERS["alice"][0]).status_code == 401
    assert d.get("/health").status_code == 200
    assert "provider ldap failed" in d.stderr()


def test_the_plugin_rejects_unknown_config_keys(slapd, daemon_factory):
    cfg = ldap_config(slapd, "template")
    cfg["plugin.auth-ldap"]["colour"] = "blue"
    d = daemon_factory(config=cfg)
    plugins = d.http.get(d.url("/api/v1/plugins")).json()["items"]
    ldap = [p for p in plugins if p["name"] == "auth-ldap"][0]
    assert ldap["state"] == "refused"
    assert "colour" in ldap["reason"] or "colour" in d.stderr()
