"""test_cluster.py - GET /api/v1/cluster on the embedded store, and runs listed by schedule.

On LMDB the cluster is the one daemon: one node, alive, leading itself
(epoch 1, no lease). Its id is made once in <data_dir>/node_id and kept
across restarts; a damaged id file stops the start instead of quietly
making a new identity. The answer is checked against the schema the
OpenAPI document publishes for the route (the embedded .json file).
"""
import json
import os
import pathlib
import time
import uuid

from test_schedules import make_job

SCHEMA_FILE = pathlib.Path(__file__).resolve().parents[2] / "core/api/schemas/cluster.schema.json"


def conform(value, schema, where="$"):
    """The subset of JSON Schema the cluster schema uses: type, enum, required,
    properties, items, minimum. Returns the list of violations."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    py = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool,
          "null": type(None)}
    if types and not any(isinstance(value, py[t]) and not (t == "integer" and isinstance(value, bool))
                         for t in types):
        return [f"{where}: {value!r} is not {types}"]
    bad = []
    if "enum" in schema and value not in schema["enum"]:
        bad.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and isinstance(value, int) and value < schema["minimum"]:
        bad.append(f"{where}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        bad += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                bad += conform(value[k], sub, f"{where}.{k}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k in set(value) - set(schema.get("properties", {})):
                bad += conform(value[k], extra, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            bad += conform(item, schema["items"], f"{where}[{i}]")
    return bad


def published_schema(d):
    doc = d.get("/api/v1/openapi.json").json()
    op = doc["paths"]["/api/v1/cluster"]["get"]
    assert op["x-required-role"] == "viewer"
    return op["responses"]["200"]["content"]["application/json"]["schema"]


def test_one_node_leading_itself_with_its_id_kept_across_restarts(daemon):
    schema = published_schema(daemon)
    assert schema == json.loads(SCHEMA_FILE.read_text())  # the file, embedded as it is
    r = daemon.get("/api/v1/cluster")
    assert r.status_code == 200, r.text
    c = r.json()
    assert conform(c, schema) == []
    node_id = (daemon.data_dir / "node_id").read_text().strip()
    assert uuid.UUID(node_id).version == 7
    assert c["backend"] == os.environ.get("OPSC_TEST_STORE", "lmdb") and c["node_id"] == node_id
    assert len(c["nodes"]) == 1
    me = c["nodes"][0]
    assert me["id"] == node_id and me["state"] == "alive" and me["labels"] == {}
    assert me["address"] == f"127.0.0.1:{daemon.port}"
    assert me["version"] == daemon.get("/api/v1/system").json()["version"]
    if c["backend"] == "lmdb":
        assert c["leader"] == {"node_id": node_id, "address": me["address"], "epoch": 1,
                               "expires_at": None}
    else:  # on PostgreSQL its first heartbeat takes the lease (test_cluster_failover.py)
        end = time.monotonic() + 5
        while not c["leader"] and time.monotonic() < end:
            time.sleep(0.1)
            c = daemon.get("/api/v1/cluster").json()
        assert c["leader"]["node_id"] == node_id and c["leader"]["expires_at"] > me["started_at"]
    assert (daemon.data_dir / "node_id").stat().st_mode & 0o777 == 0o600

    again = daemon.restart()
    c2 = again.get("/api/v1/cluster").json()
    assert c2["node_id"] == node_id
    assert c2["nodes"][0]["started_at"] >= me["started_at"]


def test_the_address_is_public_urls_authority_when_set(daemon_factory):
    d = daemon_factory(config={"server": {"public_url": "https://ops.example.org:8443/ui"}})
    c = d.get("/api/v1/cluster").json()
    assert c["nodes"][0]["address"] == "ops.example.org:8443"
    assert c["leader"]["address"] == "ops.example.org:8443"


def test_labels_are_shown_and_bad_ones_stop_the_start_naming_file_line_and_key(daemon_factory,
                                                                             run_daemon):
    d = daemon_factory(config={"cluster": {"labels": "dc=eu, rack=3", "route_by": "dc"}})
    assert d.get("/api/v1/cluster").json()["nodes"][0]["labels"] == {"dc": "eu", "rack": "3"}
    for labels, why in (("dc", "not key=value"), ("dc=eu,dc=us", "twice"),
                        ("Bad Key=x", "Bad Key")):
        p = run_daemon(config={"cluster": {"labels": labels}})
        assert p.returncode != 0
        assert "opsconductor.conf:" in p.stderr and "[cluster] labels" in p.stderr, p.stderr
        assert why in p.stderr, p.stderr
    p = run_daemon(config={"cluster": {"route_by": "dc,Bad Key"}})
    assert p.returncode != 0 and "[cluster] route_by" in p.stderr, p.stderr


def test_a_damaged_node_id_file_stops_the_start_naming_it(run_daemon, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "node_id").write_text("not-a-uuid\n")
    p = run_daemon(config={"store": {"data_dir": str(data)}})
    assert p.returncode != 0
    assert str(data / "node_id") in p.stderr and "delete the file" in p.stderr, p.stderr
    assert (data / "node_id").read_text() == "not-a-uuid\n"  # left for the operator to judge


def test_runs_filtered_by_schedule(daemon_factory):
    d = daemon_factory(config={"scheduler": {"misfire_threshold": "500ms"}})
    job = make_job(d, "true")
    sids = []
    for _ in range(2):
        r = d.http.post(d.url("/api/v1/schedules"), timeout=10,
                        json={"job_id": job, "cron": "* * * * * *", "overlap_policy": "allow"})
        assert r.status_code == 201, r.text
        sids.append(r.json()["id"])
    end = time.monotonic() + 15
    while time.monotonic() < end:
        items = {s: d.get(f"/api/v1/runs?schedule_id={s}&limit=500").json()["items"] for s in sids}
        if all(len(v) >= 2 for v in items.values()):
            break
        time.sleep(0.2)
    for s in sids:
        assert len(items[s]) >= 2, items
        assert {r["schedule_id"] for r in items[s]} == {s}
    for s in sids:  # stop firing before the totals are compared
        assert d.request("POST", f"/api/v1/schedules/{s}/pause").status_code == 200
    mine = [d.get(f"/api/v1/runs?schedule_id={s}&limit=500").json()["items"] for s in sids]
    every = d.get("/api/v1/runs?limit=500").json()["items"]
    assert len(mine[0]) + len(mine[1]) == len(every)
    page = d.get(f"/api/v1/runs?schedule_id={sids[0]}&limit=1").json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert d.get(f"/api/v1/runs?schedule_id={uuid.uuid4()}").json()["items"] == []
