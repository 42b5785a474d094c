"""test_store_postgresql.py - the daemon on the PostgreSQL store ([store] backend = postgresql).

A real PostgreSQL 15 (fixtures/pgserver.py) on a loopback port, with a
password. The API works on it, its data lives in the database and a
restart finds it again; pages over many records come back complete and in order;
If-Match conflicts hold; the password never appears in the daemon's output,
even when the connection fails; config errors name file, line and key; the
environment selects the backend; a database restart is survived; over TLS
it works and stops cleanly (no OpenSSL state left on libuv's pool). Several
daemons on one database: test_cluster_failover.py.
The rest of the suite runs on this backend with OPSC_TEST_STORE=postgresql
(scripts/test runs a representative subset that way).
"""
import os

import pytest

from fixtures import pgserver
from test_schedules import make_job
from test_schedules_e2e import wait_for


@pytest.fixture(scope="module")
def pg(pg_server):
    return pg_server


def pg_config(pg, db):
    return {"store": {"backend": "postgresql", "postgresql_url": pg.url(db)}}


def test_the_api_on_postgresql_keeps_its_data_in_the_database(pg, daemon_factory):
    db = pg.database()
    d = daemon_factory(config=pg_config(pg, db))
    assert d.get("/api/v1/cluster").json()["backend"] == "postgresql"
    job = make_job(d, "echo on-postgresql")
    r = d.http.post(d.url(f"/api/v1/jobs/{job}/runs"), json={}, timeout=10)
    assert r.status_code in (200, 201, 202), r.text
    run_id = r.json()["id"]
    done = wait_for(lambda: d.get(f"/api/v1/runs/{run_id}").json()["state"] == "succeeded")
    assert done, d.get(f"/api/v1/runs/{run_id}").text
    log = d.get(f"/api/v1/runs/{run_id}/log?format=text").text
    assert "on-postgresql" in log
    rows = dict(line.split("|") for line in
                pg.psql("SELECT db, count(*) FROM opsc_kv GROUP BY db", db=db).splitlines())
    assert rows["runs"] == "1" and rows["jobs"] == "1" and rows["targets"] == "1"
    assert int(rows["run_logs"]) >= 1
    assert not (d.data_dir / "data.mdb").exists()

    again = d.restart()
    assert again.get(f"/api/v1/runs/{run_id}").json()["state"] == "succeeded"
    assert [j["id"] for j in again.get("/api/v1/jobs").json()["items"]] == [job]


def test_pages_come_back_complete_and_in_order(pg, daemon_factory):
    d = daemon_factory(config=pg_config(pg, pg.database()))
    made = []
    for i in range(45):  # more than the first page the store reads (16)
        r = d.http.post(d.url("/api/v1/targets"), json={
            "name": f"t{i:02d}", "address": "localhost", "transport": "local",
            "os_family": "linux"})
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    seen, cursor = [], None
    while True:
        page = d.get("/api/v1/targets?limit=20" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made
    r = d.get(f"/api/v1/targets/{made[7]}")
    assert r.json()["name"] == "t07"
    # a unique name is a unique index: refused on this backend too
    r = d.http.post(d.url("/api/v1/targets"), json={
        "name": "t07", "address": "localhost", "transport": "local", "os_family": "linux"})
    assert r.status_code == 409, r.text


def test_if_match_conflicts_hold(pg, daemon_factory):
    d = daemon_factory(config=pg_config(pg, pg.database()))
    job = make_job(d)
    base = f"/api/v1/jobs/{job}"
    r = d.request("PATCH", base, json={"description": "one"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    r = d.request("PATCH", base, json={"description": "two"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412, r.text
    assert d.get(base).json()["description"] == "one"


def test_the_password_is_never_in_the_output(pg, daemon_factory, run_daemon):
    db = pg.database()
    d = daemon_factory(config=pg_config(pg, db))
    d.get("/api/v1/targets")
    assert d.stop() == 0
    out = d.stderr()
    assert pg.password not in out
    assert f"user=opsc dbname={db} host=127.0.0.1 port={pg.port}" in out  # what it says instead

    wrong = pg.url(db).replace(pg.password, "Wrong-" + pg.password[::-1])
    p = run_daemon(config={"store": {"backend": "postgresql", "postgresql_url": wrong}})
    assert p.returncode != 0
    assert "[store] postgresql_url" in p.stderr and "opsconductor.conf:" in p.stderr, p.stderr
    assert "password authentication failed" in p.stderr, p.stderr
    assert pg.password not in p.stderr and pg.password[::-1] not in p.stderr


def test_config_errors_name_file_line_and_key(run_daemon):
    p = run_daemon(config={"store": {"backend": "postgresql"}})
    assert p.returncode != 0
    assert "opsconductor.conf:" in p.stderr and "[store] backend" in p.stderr, p.stderr
    assert "postgresql_url" in p.stderr
    p = run_daemon(config={"store": {"backend": "mysql"}})
    assert p.returncode != 0 and "backend" in p.stderr and "postgresql" in p.stderr, p.stderr


def test_the_environment_selects_the_backend(pg, daemon_factory):
    db = pg.database()
    d = daemon_factory(config={"store": {"backend": "lmdb"}},
                       env={"OPSC_STORE_BACKEND": "postgresql",
                            "OPSC_STORE_POSTGRESQL_URL": pg.url(db, with_password=False),
                            "PGPASSWORD": pg.password})
    assert d.get("/api/v1/cluster").json()["backend"] == "postgresql"
    assert pg.psql("SELECT count(*) FROM opsc_kv WHERE db = 'users'", db=db) == "1"


def test_a_database_restart_is_survived(pg, daemon_factory):
    d = daemon_factory(config=pg_config(pg, pg.database()))
    job = make_job(d)
    pg.restart()
    r = d.get(f"/api/v1/jobs/{job}")  # idle connections broke: replaced before the query
    assert r.status_code == 200, r.text
    r = d.request("PATCH", f"/api/v1/jobs/{job}", json={"description": "after"})
    assert r.status_code == 200, r.text
    assert d.get("/ready").status_code == 200


@pytest.fixture(scope="module")
def pg_tls():
    server = pgserver.PgServer(tls=True).start()
    yield server
    server.stop()


def test_over_tls_the_daemon_works_and_exits_cleanly(pg_tls, daemon_factory):
    # Over TLS every statement runs OpenSSL on the thread that sends it, and a login reads the
    # user on libuv's pool: the state OpenSSL keeps per thread was left there, and under the
    # sanitizers every daemon on a TLS database exited -6 on a leak (core/threadpool.h).
    db = pg_tls.database()
    d = daemon_factory(config=pg_config(pg_tls, db))  # logs in: a store read on the pool
    job = make_job(d, "echo over-tls")
    r = d.http.post(d.url(f"/api/v1/jobs/{job}/runs"), json={}, timeout=10)
    assert r.status_code in (200, 201, 202), r.text
    assert wait_for(lambda: d.get(f"/api/v1/runs/{r.json()['id']}").json()["state"]
                    == "succeeded")
    count, all_tls = pg_tls.psql(
        "SELECT count(*), bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
        f"WHERE datname = '{db}'").split("|")
    assert int(count) >= 2 and all_tls == "t", (count, all_tls)
    code = d.stop()
    assert code == 0, f"exited {code}:\n{d.stderr()[-4000:]}"


@pytest.mark.skipif(os.environ.get("OPSC_TEST_STORE") == "postgresql",
                    reason="compares against the default backend")
def test_lmdb_stays_the_default(daemon):
    assert daemon.get("/api/v1/cluster").json()["backend"] == "lmdb"
    assert (daemon.data_dir / "data.mdb").exists()
