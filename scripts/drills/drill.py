#!/usr/bin/env python3
"""The client side of the fault drills (scripts/drills/*.sh): load, probes and checks.

Standard library only (Python 3.11). The shell scripts start and kill the processes (nodes,
nats-server, Postgres); this program talks to them:

- HTTP to the nodes (fresh connection per command, so a command that never reached a node is
  told apart from one whose answer was lost: "refused" vs "reset");
- Postgres through `psql` (the `events` table and the read models are the truth);
- NATS through a minimal client of its text protocol (JetStream API requests only), to compare
  the relayed stream with the `events` table.

Every sub-command prints what it counted; a failed claim makes it exit with status 1.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

# --------------------------------------------------------------------------------------------
# Output


def say(*parts: object) -> None:
    print(*parts, flush=True)


class Claims:
    """Collects named claims; `finish` prints them and exits non-zero when one failed."""

    def __init__(self) -> None:
        self.results: list[tuple[bool, str]] = []

    def check(self, ok: bool, text: str) -> bool:
        self.results.append((bool(ok), text))
        say(("  PASS " if ok else "  FAIL ") + text)
        return bool(ok)

    def failed(self) -> int:
        return sum(1 for ok, _ in self.results if not ok)

    def finish(self, name: str) -> None:
        failed = self.failed()
        say(f"{name}: {len(self.results) - failed}/{len(self.results)} claims hold" + ("" if not failed else f", {failed} FAILED"))
        sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------------------------
# HTTP


class Answer:
    """One request's outcome. `error` is None (an HTTP answer came back), "refused" (no TCP
    connection: the request never reached a node), "reset" (sent, but the connection died before
    a whole answer: the outcome is unknown) or "timeout"."""

    __slots__ = ("status", "headers", "body", "text", "t0", "t1", "error")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: object = None
        self.text = ""
        self.t0 = 0.0
        self.t1 = 0.0
        self.error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def latency(self) -> float:
        return self.t1 - self.t0


def split_base(base: str) -> tuple[str, int]:
    url = urllib.parse.urlsplit(base)
    return url.hostname or "127.0.0.1", url.port or 80


class Http:
    """Requests to one node. `keep_alive=False` opens a fresh connection per request."""

    def __init__(self, base: str, keep_alive: bool = False, timeout: float = 15.0) -> None:
        self.base = base.rstrip("/")
        self.host, self.port = split_base(self.base)
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: object = None,
        request_id: str | None = None,
        origin: str | None = None,
    ) -> Answer:
        answer = Answer()
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id:
            headers["X-Request-Id"] = request_id
        if origin:
            headers["Origin"] = origin
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if not self.keep_alive:
            headers["Connection"] = "close"
        answer.t0 = time.time()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.connect()
        except (ConnectionRefusedError, ConnectionResetError, OSError) as e:
            answer.t1 = time.time()
            answer.error = "timeout" if isinstance(e, TimeoutError) else "refused"
            self.close()
            return answer
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            answer.t1 = time.time()
            answer.status = response.status
            answer.headers = {k.lower(): v for k, v in response.getheaders()}
            answer.text = raw.decode("utf-8", "replace")
            if raw and "json" in answer.headers.get("content-type", ""):
                try:
                    answer.body = json.loads(raw)
                except ValueError:
                    answer.body = None
            if not self.keep_alive or response.will_close:
                self.close()
        except TimeoutError:
            answer.t1 = time.time()
            answer.error = "timeout"
            self.close()
        except (http.client.HTTPException, ConnectionError, OSError):
            # Sent, but no whole answer: the outcome is unknown. (On a kept-alive connection that
            # a dead node left behind the request may never have left; "reset" is still the
            # conservative reading. Commands use fresh connections, so for them it is exact.)
            answer.t1 = time.time()
            self.close()
            answer.error = "reset"
        return answer


def status_of(base: str, path: str, token: str | None = None) -> int:
    return Http(base, timeout=5).request("GET", path, token).status


def wait_ready(bases: list[str], timeout: float) -> float | None:
    """Seconds until every base answers /readyz 200, or None on time-out."""
    started = time.time()
    pending = list(bases)
    while pending:
        pending = [b for b in pending if status_of(b, "/readyz") != 200]
        if not pending:
            break
        if time.time() - started > timeout:
            return None
        time.sleep(0.1)
    return time.time() - started


def new_request_id(tag: str) -> str:
    return f"drill-{tag}-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------------------------
# Firms, keys


def sign_up(base: str, label: str) -> dict:
    email = f"drill-{uuid.uuid4().hex[:12]}@drill.test"
    a = Http(base).request(
        "POST",
        "/v1/firms",
        body={
            "firm_name": f"Drill {label}",
            "owner": {"name": f"Owner {label}", "email": email, "password": "drill-password-123"},
        },
    )
    if a.status != 201:
        raise SystemExit(f"POST /v1/firms answered {a.status} {a.error or ''} {a.text[:300]}")
    return {"firm_id": a.body["firm"]["id"], "member_id": a.body["member"]["id"], "token": a.body["session"]["token"]}


def key_body(tag: str) -> dict:
    return {
        "name": f"drill key {tag}",
        "scopes": ["contacts:read", "matters:read"],
        "allowed_domains": [f"k{tag}.drill.test"],
    }


def strip_volatile(view: object) -> object:
    """A key view without `last_used_at`: usage is flushed per node, so it may differ by a flush."""
    if isinstance(view, dict):
        return {k: strip_volatile(v) for k, v in view.items() if k != "last_used_at"}
    return view


# --------------------------------------------------------------------------------------------
# Postgres (psql)


def psql_json(db_url: str, sql: str) -> object:
    wrapped = f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t"
    out = subprocess.run(
        ["psql", db_url, "-tAX", "-v", "ON_ERROR_STOP=1", "-c", wrapped], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise SystemExit(f"psql failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def psql_scalar(db_url: str, sql: str) -> str:
    out = subprocess.run(["psql", db_url, "-tAX", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"psql failed: {out.stderr.strip()}")
    return out.stdout.strip()


# --------------------------------------------------------------------------------------------
# NATS: just enough of the text protocol for JetStream API requests


class Nats:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=timeout)
        self.file = self.sock.makefile("rb")
        info = self.file.readline()
        if not info.startswith(b"INFO"):
            raise RuntimeError(f"not a NATS server: {info[:80]!r}")
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1, "name": "esqase-drill"}
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        while True:
            kind, _ = self._read()
            if kind == "PONG":
                break
        self.inbox = f"_INBOX.drill{uuid.uuid4().hex}"
        self.sock.sendall(f"SUB {self.inbox}.* 1\r\n".encode())

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _read(self) -> tuple[str, tuple]:
        line = self.file.readline()
        if not line:
            raise ConnectionError("NATS closed the connection")
        line = line.rstrip(b"\r\n")
        if line == b"PING":
            self.sock.sendall(b"PONG\r\n")
            return "PING", ()
        if line in (b"PONG", b"+OK"):
            return line.decode(), ()
        if line.startswith(b"-ERR"):
            raise RuntimeError(line.decode())
        if line.startswith(b"MSG "):
            f = line.split(b" ")
            subject, size = f[1].decode(), int(f[-1])
            data = self.file.read(size + 2)[:-2]
            return "MSG", (subject, b"", data)
        if line.startswith(b"HMSG "):
            f = line.split(b" ")
            subject, hsize, total = f[1].decode(), int(f[-2]), int(f[-1])
            raw = self.file.read(total + 2)[:-2]
            return "MSG", (subject, raw[:hsize], raw[hsize:])
        if line.startswith(b"INFO"):
            return "INFO", ()
        raise RuntimeError(f"unexpected NATS line {line[:80]!r}")

    def requests(self, items: list[tuple[str, bytes]], window: int = 256) -> list[tuple[bytes, bytes]]:
        """Sends every (subject, payload) request, up to `window` in flight; answers in order."""
        answers: list[tuple[bytes, bytes] | None] = [None] * len(items)
        sent = 0
        received = 0
        while received < len(items):
            batch = b""
            while sent < len(items) and sent - received < window:
                subject, payload = items[sent]
                batch += f"PUB {subject} {self.inbox}.{sent} {len(payload)}\r\n".encode() + payload + b"\r\n"
                sent += 1
            if batch:
                self.sock.sendall(batch)
            kind, msg = self._read()
            if kind != "MSG":
                continue
            subject, headers, data = msg
            index = int(subject.rsplit(".", 1)[1])
            if answers[index] is None:
                answers[index] = (headers, data)
                received += 1
        return answers  # type: ignore[return-value]

    def request(self, subject: str, payload: bytes = b"") -> dict:
        headers, data = self.requests([(subject, payload)])[0]
        if headers.startswith(b"NATS/1.0 503"):
            raise RuntimeError("no JetStream responders")
        return json.loads(data or b"{}")


def js_stream_info(nats: Nats, stream: str) -> dict | None:
    info = nats.request(f"$JS.API.STREAM.INFO.{stream}")
    if "error" in info:
        if info["error"].get("code") == 404:
            return None
        raise RuntimeError(f"stream info {stream}: {info['error']}")
    return info


def js_message_ids(nats: Nats, stream: str) -> tuple[int, list[str]]:
    """The stream's message count and every message's Nats-Msg-Id (sequence order)."""
    info = js_stream_info(nats, stream)
    if info is None:
        return 0, []
    state = info["state"]
    first, last = state.get("first_seq", 0), state.get("last_seq", 0)
    if state.get("messages", 0) == 0:
        return 0, []
    items = [(f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": s}).encode()) for s in range(first, last + 1)]
    ids: list[str] = []
    for _, data in nats.requests(items):
        answer = json.loads(data)
        if "error" in answer:
            continue  # a deleted sequence
        hdrs = base64.b64decode(answer["message"].get("hdrs", "") or b"").decode("utf-8", "replace")
        msg_id = ""
        for line in hdrs.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "nats-msg-id":
                msg_id = value.strip()
        ids.append(msg_id)
    return state["messages"], ids


def js_delete_stream(nats: Nats, stream: str) -> None:
    nats.request(f"$JS.API.STREAM.DELETE.{stream}")


def stream_matches_events(nats_url: str, prefix: str, db_url: str, claims: Claims, timeout: float) -> None:
    """JetStream holds every event of the log exactly once (retried until the relay settles)."""
    deadline = time.time() + timeout
    while True:
        events = psql_json(db_url, "SELECT id FROM events")
        event_ids = {e["id"] for e in events}
        try:
            nats = Nats(nats_url)
            try:
                count, ids = js_message_ids(nats, f"{prefix}_events")
            finally:
                nats.close()
        except (OSError, RuntimeError) as e:
            count, ids = -1, []
            say(f"  (JetStream not readable yet: {e})")
        seen = set(ids)
        duplicates = len(ids) - len(seen)
        missing = len(event_ids - seen)
        extra = len(seen - event_ids)
        settled = count == len(event_ids) and duplicates == 0 and missing == 0 and extra == 0
        if settled or time.time() > deadline:
            break
        time.sleep(1)
    say(f"  events table: {len(event_ids)} events; JetStream {prefix}_events: {count} messages, "
        f"{len(seen)} distinct ids, duplicates {duplicates}, missing {missing}, not in the log {extra}")
    claims.check(settled, "the JetStream stream holds every event of the log exactly once "
                 f"({count} messages = {len(event_ids)} events, 0 duplicates, 0 missing)")


# --------------------------------------------------------------------------------------------
# Shared checks


def check_audit(bases: list[str], firms: list[dict], db_url: str, claims: Claims) -> None:
    for firm in firms:
        expected = int(psql_scalar(db_url, f"SELECT count(*) FROM events WHERE firm_id = '{firm['firm_id']}' AND event_type <> 'ApiKeyUsed'"))
        for base in bases:
            a = Http(base).request("GET", "/v1/audit-log/verify", firm["token"])
            ok = a.status == 200 and isinstance(a.body, dict) and a.body.get("ok") is True and a.body.get("entries") == expected
            claims.check(ok, f"audit log of firm …{firm['firm_id'][-8:]} verifies on {base}: {a.status} {a.text[:120]} "
                         f"(expected ok with {expected} entries = its non-Used events)")


def check_log_integrity(db_url: str, claims: Claims) -> None:
    gaps = psql_json(db_url, "SELECT stream_id, count(*) AS n, max(version) AS max FROM events GROUP BY stream_id HAVING count(*) <> max(version) OR min(version) <> 1")
    claims.check(not gaps, f"every stream's versions run 1..n with no gap or repeat ({len(gaps)} streams off)")
    stale = psql_json(db_url, """
        SELECT k.id, k.version, e.max FROM api_keys k
        JOIN (SELECT stream_id, max(version) AS max FROM events GROUP BY stream_id) e ON e.stream_id = k.id
        WHERE k.version <> e.max""")
    claims.check(not stale, f"every api_keys row carries its stream's last version ({len(stale)} rows behind or ahead)")
    orphans = psql_json(db_url, """
        SELECT (SELECT count(*) FROM api_keys k WHERE NOT EXISTS
                  (SELECT 1 FROM events e WHERE e.stream_id = k.id AND e.event_type = 'ApiKeyCreated')) AS rows_without_event,
               (SELECT count(*) FROM events e WHERE e.event_type = 'ApiKeyCreated' AND NOT EXISTS
                  (SELECT 1 FROM api_keys k WHERE k.id = e.stream_id)) AS events_without_row""")[0]
    claims.check(orphans["rows_without_event"] == 0 and orphans["events_without_row"] == 0,
                 f"api_keys rows = ApiKeyCreated events one to one ({orphans})")
    mismatched = psql_json(db_url, """
        SELECT k.id FROM api_keys k
        LEFT JOIN LATERAL (SELECT payload FROM events e WHERE e.stream_id = k.id
                           AND e.event_type IN ('ApiKeyCreated', 'ApiKeyDomainsUpdated')
                           ORDER BY version DESC LIMIT 1) d ON true
        WHERE (k.lifecycle = 'revoked') <> EXISTS (SELECT 1 FROM events r WHERE r.stream_id = k.id AND r.event_type = 'ApiKeyRevoked')
           OR to_jsonb(k.allowed_domains) <> coalesce(d.payload -> 'after', d.payload -> 'allowed_domains')""")
    claims.check(not mismatched, f"every api_keys row agrees with its events (status, allowed domains): {len(mismatched)} differ")
    audit = psql_json(db_url, """
        SELECT (SELECT count(*) FROM events WHERE event_type <> 'ApiKeyUsed') AS events,
               (SELECT count(*) FROM audit_log) AS entries,
               (SELECT count(*) FROM events e WHERE event_type <> 'ApiKeyUsed'
                  AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.id = e.id)) AS events_without_entry""")[0]
    claims.check(audit["events"] == audit["entries"] and audit["events_without_entry"] == 0,
                 f"the audit log holds one entry per non-Used event ({audit})")


def compare_nodes_on_keys(bases: list[str], keys: list[dict], firm_token: dict, expected_status: dict, claims: Claims, label: str) -> None:
    """GET /v1/api-keys/current with each secret and GET /v1/api-keys/{id} on every node: the same
    answer everywhere, and the status the log says."""
    current_diff = current_wrong = view_diff = view_wrong = 0
    checked_current = checked_views = 0
    clients = [Http(b, keep_alive=True) for b in bases]
    for key in keys:
        want = expected_status[key["id"]]
        if key.get("secret"):
            answers = [c.request("GET", "/v1/api-keys/current", key["secret"]) for c in clients]
            checked_current += 1
            want_http = 200 if want == "active" else 401
            if any(a.status != want_http for a in answers):
                current_wrong += 1
                say(f"    key {key['id']} ({want}): /current answered {[a.status for a in answers]} {[a.code for a in answers]}")
            bodies = [json.dumps(strip_volatile(a.body), sort_keys=True) for a in answers]
            if len(set(bodies)) != 1:
                current_diff += 1
                say(f"    key {key['id']}: nodes differ on /current: {bodies}")
        answers = [c.request("GET", f"/v1/api-keys/{key['id']}", firm_token[key["firm_id"]]) for c in clients]
        checked_views += 1
        if any(a.status != 200 or not isinstance(a.body, dict) or a.body.get("status") != want for a in answers):
            view_wrong += 1
            say(f"    key {key['id']} ({want}): GET answered {[(a.status, a.body.get('status') if isinstance(a.body, dict) else a.text[:80]) for a in answers]}")
        bodies = [json.dumps(strip_volatile(a.body), sort_keys=True) for a in answers]
        if len(set(bodies)) != 1:
            view_diff += 1
    for c in clients:
        c.close()
    claims.check(current_wrong == 0 and current_diff == 0,
                 f"{label}: /v1/api-keys/current with {checked_current} secrets on {len(bases)} nodes: "
                 f"{current_wrong} answers off the log, {current_diff} keys where nodes differ")
    claims.check(view_wrong == 0 and view_diff == 0,
                 f"{label}: GET /v1/api-keys/{{id}} for {checked_views} keys on {len(bases)} nodes: "
                 f"{view_wrong} off the log, {view_diff} where nodes differ")


def key_statuses_from_log(db_url: str, firm_ids: list[str]) -> dict[str, str]:
    firms = ",".join(f"'{f}'" for f in firm_ids)
    rows = psql_json(db_url, f"""
        SELECT stream_id AS id, bool_or(event_type = 'ApiKeyRevoked') AS revoked FROM events
        WHERE stream_kind = 'api_key' AND firm_id IN ({firms}) GROUP BY stream_id""")
    return {r["id"]: ("revoked" if r["revoked"] else "active") for r in rows}


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --------------------------------------------------------------------------------------------
# kill-node


def cmd_setup(args: argparse.Namespace) -> None:
    firms = [sign_up(args.base, f"{i}") for i in range(args.firms)]
    with open(args.state, "w") as f:
        json.dump({"firms": firms}, f)
    say(f"signed up {len(firms)} firms on {args.base}")


def kill_load(args: argparse.Namespace) -> None:
    """Commands to one node until the stop file appears: create, edit domains, revoke. Each
    command has its own X-Request-Id, so its events can be found in the log."""
    state = json.load(open(args.state))
    firms = state["firms"]
    records: list[dict] = []
    keys: list[dict] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        rng = random.Random(n)
        firm = firms[n % len(firms)]
        mine: list[dict] = []  # keys this worker may still change
        counter = 0
        http_ = Http(args.base)
        while not stop.is_set():
            counter += 1
            tag = f"w{n}c{counter}"
            live = [k for k in mine if k["state"] == "active"]
            roll = rng.random()
            if live and roll < 0.3:
                key = rng.choice(live)
                op, method, path, body = "domains", "PUT", f"/v1/api-keys/{key['id']}/allowed-domains", {"allowed_domains": [f"d{tag}.drill.test"]}
            elif live and roll < 0.5:
                key = rng.choice(live)
                op, method, path, body = "revoke", "POST", f"/v1/api-keys/{key['id']}/revoke", None
            else:
                key = None
                op, method, path, body = "create", "POST", "/v1/api-keys", key_body(tag)
            rid = new_request_id(tag)
            a = http_.request(method, path, firm["token"], body, rid)
            rec = {"op": op, "rid": rid, "firm_id": firm["firm_id"], "key_id": key["id"] if key else None,
                   "t0": a.t0, "t1": a.t1, "status": a.status, "error": a.error, "code": a.code}
            if a.ok and op == "create":
                k = {"id": a.body["api_key"]["id"], "secret": a.body["secret"], "firm_id": firm["firm_id"], "state": "active"}
                rec["key_id"] = k["id"]
                mine.append(k)
                with lock:
                    keys.append(k)
            elif op != "create":
                if a.ok and op == "revoke":
                    key["state"] = "revoked"
                elif not a.ok:
                    key["state"] = "uncertain"  # do not touch it again: its state is for the log to say
            with lock:
                records.append(rec)
            if a.error == "refused":
                time.sleep(0.05)  # the node is down: knock again shortly
            elif args.pause:
                time.sleep(args.pause)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(args.workers)]
    for t in threads:
        t.start()
    while not os.path.exists(args.stop_file):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    with open(args.out, "w") as f:
        json.dump({"records": records, "keys": [{k: v for k, v in key.items() if k != "state"} for key in keys]}, f)
    say(f"load finished: {len(records)} commands sent")


def kill_check(args: argparse.Namespace) -> None:
    claims = Claims()
    state = json.load(open(args.state))
    firms = state["firms"]
    data = json.load(open(args.results))
    records, keys = data["records"], data["keys"]
    bases = args.bases.split(",")
    kill_at = float(open(args.kill_file).read().strip()) if args.kill_file else None

    by_outcome: dict[str, int] = {}
    for r in records:
        outcome = "acknowledged" if r["error"] is None and 200 <= r["status"] < 300 else (r["error"] or f"http {r['status']} {r['code']}")
        r["outcome"] = outcome
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    ops = {op: sum(1 for r in records if r["op"] == op) for op in ("create", "domains", "revoke")}
    say(f"  commands sent: {len(records)} ({ops['create']} create, {ops['domains']} edit domains, {ops['revoke']} revoke)")
    say(f"  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(by_outcome.items())))
    acked = [r for r in records if r["outcome"] == "acknowledged"]
    reset = [r for r in records if r["outcome"] in ("reset", "timeout")]
    refused = [r for r in records if r["outcome"] == "refused"]
    other = [r for r in records if r["outcome"] not in ("acknowledged", "reset", "timeout", "refused")]
    if kill_at:
        in_flight = [r for r in reset if r["t0"] <= kill_at + 0.5]
        say(f"  in flight at the kill (reset): {len(in_flight)}; refused while node A was down: {len(refused)}")
    claims.check(len(acked) > 100, f"load ran: {len(acked)} commands acknowledged (2xx)")
    claims.check(len(reset) + len(refused) > 0, f"the kill hit the load: {len(reset)} connections reset mid-command, {len(refused)} refused")
    claims.check(not other, f"no command got an HTTP error answer ({len(other)}: {[(r['op'], r['outcome']) for r in other[:5]]})")

    firm_ids = [f["firm_id"] for f in firms]
    fl = ",".join(f"'{f}'" for f in firm_ids)
    events = psql_json(args.db, f"SELECT id, request_id, stream_id, event_type FROM events WHERE firm_id IN ({fl}) AND request_id LIKE 'drill-%'")
    by_rid: dict[str, list[dict]] = {}
    for e in events:
        by_rid.setdefault(e["request_id"], []).append(e)
    want_type = {"create": "ApiKeyCreated", "domains": "ApiKeyDomainsUpdated", "revoke": "ApiKeyRevoked"}
    missing = duplicates = wrong = 0
    for r in acked:
        found = by_rid.get(r["rid"], [])
        if len(found) == 0:
            missing += 1
        elif len(found) > 1:
            duplicates += 1
        elif found[0]["event_type"] != want_type[r["op"]] or found[0]["stream_id"] != r["key_id"]:
            wrong += 1
    say(f"  events found for acknowledged commands: {len(acked) - missing} of {len(acked)}; missing {missing}; duplicates {duplicates}; wrong event {wrong}")
    claims.check(missing == 0 and duplicates == 0 and wrong == 0,
                 "every acknowledged command has its event in the log exactly once")
    committed_unknown = sum(1 for r in reset if len(by_rid.get(r["rid"], [])) == 1)
    dup_unknown = sum(1 for r in reset if len(by_rid.get(r["rid"], [])) > 1)
    say(f"  reset commands: {len(reset)}, of which committed {committed_unknown}, not committed {len(reset) - committed_unknown - dup_unknown}, duplicated {dup_unknown}")
    claims.check(dup_unknown == 0, "a command whose connection was reset has its event at most once")
    refused_with_event = sum(1 for r in refused if r["rid"] in by_rid)
    claims.check(refused_with_event == 0, f"no refused command left an event ({refused_with_event})")
    known = {r["rid"] for r in records}
    strangers = [e for e in events if e["request_id"] not in known]
    claims.check(not strangers, f"no event from a request the client did not send ({len(strangers)})")
    total_dups = sum(1 for v in by_rid.values() if len(v) > 1)
    say(f"  duplicates in the log (events sharing one request id): {total_dups}")

    check_log_integrity(args.db, claims)
    created = int(psql_scalar(args.db, f"SELECT count(*) FROM events WHERE firm_id IN ({fl}) AND event_type = 'ApiKeyCreated'"))
    rows = int(psql_scalar(args.db, f"SELECT count(*) FROM api_keys WHERE firm_id IN ({fl})"))
    acked_creates = sum(1 for r in acked if r["op"] == "create")
    reset_creates_committed = sum(1 for r in reset if r["op"] == "create" and r["rid"] in by_rid)
    claims.check(rows == created == acked_creates + reset_creates_committed,
                 f"api_keys rows {rows} = ApiKeyCreated events {created} = acknowledged creates {acked_creates} + reset creates that committed {reset_creates_committed}")

    ready = wait_ready(bases, 30)
    claims.check(ready is not None, f"both nodes answer /readyz 200 ({'%.1f s' % ready if ready is not None else 'timed out'})")
    check_audit(bases, firms, args.db, claims)
    statuses = key_statuses_from_log(args.db, firm_ids)
    known_ids = {k["id"] for k in keys}
    all_keys = keys + [{"id": i, "firm_id": None} for i in statuses if i not in known_ids]
    firm_of = {r["id"]: r["firm_id"] for r in psql_json(args.db, f"SELECT id, firm_id FROM api_keys WHERE firm_id IN ({fl})")}
    for k in all_keys:
        k["firm_id"] = firm_of.get(k["id"], k["firm_id"])
    compare_nodes_on_keys(bases, all_keys, {f["firm_id"]: f["token"] for f in firms}, statuses, claims, "after the restart")
    if args.nats:
        time.sleep(args.settle)
        stream_matches_events(args.nats, args.prefix, args.db, claims, 60)
    claims.finish("kill-node")


# --------------------------------------------------------------------------------------------
# nats-outage


def outage_load(args: argparse.Namespace) -> None:
    """Commands on both nodes (create, edit domains, revoke) and verification of many keys on
    both nodes, until the stop file appears. Every answer is recorded with its times."""
    state = json.load(open(args.state))
    firm = state["firms"][0]
    bases = args.bases.split(",")
    lock = threading.Lock()
    stop = threading.Event()
    keys: list[dict] = []  # {"id", "secret", "created": t1, "revoke_sent": t0|None, "revoked": t1|None}
    commands: list[dict] = []
    checks: list[tuple] = []  # (key index, node, t0, t1, status, code, error, immediate)

    def create(http_: Http, tag: str, node: int) -> None:
        rid = new_request_id(tag)
        a = http_.request("POST", "/v1/api-keys", firm["token"], key_body(tag), rid)
        with lock:
            commands.append({"op": "create", "node": node, "t0": a.t0, "t1": a.t1, "status": a.status, "error": a.error, "code": a.code})
            if a.ok:
                keys.append({"id": a.body["api_key"]["id"], "secret": a.body["secret"], "created": a.t1, "revoke_sent": None, "revoked": None})

    seed = Http(bases[0])
    for i in range(args.seed_keys):
        create(seed, f"seed{i}", 0)

    def command_worker(n: int) -> None:
        rng = random.Random(100 + n)
        clients = [Http(b) for b in bases]
        probes = [Http(b, keep_alive=True) for b in bases]
        counter = 0
        while not stop.is_set():
            counter += 1
            node = counter % len(bases)
            tag = f"c{n}n{counter}"
            with lock:
                live = [i for i, k in enumerate(keys) if k["revoke_sent"] is None]
            roll = rng.random()
            if len(live) > args.seed_keys // 2 and roll < 0.3:
                index = rng.choice(live)
                with lock:
                    keys[index]["revoke_sent"] = time.time()
                a = clients[node].request("POST", f"/v1/api-keys/{keys[index]['id']}/revoke", firm["token"], None, new_request_id(tag))
                with lock:
                    commands.append({"op": "revoke", "node": node, "t0": a.t0, "t1": a.t1, "status": a.status, "error": a.error, "code": a.code})
                    if a.ok:
                        keys[index]["revoked"] = a.t1
                if a.ok:
                    # From the moment the revoke answered, no node may accept the key.
                    for m, probe in enumerate(probes):
                        p = probe.request("GET", "/v1/api-keys/current", keys[index]["secret"])
                        with lock:
                            checks.append((index, m, p.t0, p.t1, p.status, p.code, p.error, True))
            elif live and roll < 0.5:
                index = rng.choice(live)
                a = clients[node].request("PUT", f"/v1/api-keys/{keys[index]['id']}/allowed-domains", firm["token"],
                                          {"allowed_domains": [f"d{tag}.drill.test"]}, new_request_id(tag))
                with lock:
                    commands.append({"op": "domains", "node": node, "t0": a.t0, "t1": a.t1, "status": a.status, "error": a.error, "code": a.code})
            else:
                create(clients[node], tag, node)
                with lock:
                    index = len(keys) - 1
                    fresh = keys[index] if keys and keys[index]["revoke_sent"] is None else None
                if fresh is not None:
                    # A new key works on every node as soon as its create answered.
                    for m, probe in enumerate(probes):
                        p = probe.request("GET", "/v1/api-keys/current", fresh["secret"])
                        with lock:
                            checks.append((index, m, p.t0, p.t1, p.status, p.code, p.error, True))
            time.sleep(args.pause)

    def verify_worker(n: int) -> None:
        rng = random.Random(200 + n)
        node = n % len(bases)
        probe = Http(bases[node], keep_alive=True)
        while not stop.is_set():
            with lock:
                index = rng.randrange(len(keys)) if keys else -1
                secret = keys[index]["secret"] if keys else ""
            if index < 0:
                time.sleep(0.05)
                continue
            p = probe.request("GET", "/v1/api-keys/current", secret)
            with lock:
                checks.append((index, node, p.t0, p.t1, p.status, p.code, p.error, False))

    threads = [threading.Thread(target=command_worker, args=(n,), daemon=True) for n in range(args.command_workers)]
    threads += [threading.Thread(target=verify_worker, args=(n,), daemon=True) for n in range(args.verify_workers)]
    for t in threads:
        t.start()
    while not os.path.exists(args.stop_file):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    with open(args.out, "w") as f:
        json.dump({"keys": keys, "commands": commands, "checks": checks}, f)
    say(f"load finished: {len(commands)} commands, {len(checks)} verifications")


def outage_check(args: argparse.Namespace) -> None:
    claims = Claims()
    state = json.load(open(args.state))
    firms = state["firms"]
    data = json.load(open(args.results))
    keys, commands, checks = data["keys"], data["commands"], data["checks"]
    phases = json.load(open(args.phases))
    down, up = phases["nats_stopped"], phases["nats_started"]
    bases = args.bases.split(",")

    def phase(t: float) -> str:
        return "before" if t < down else ("during" if t < up else "after")

    say(f"  NATS was down {up - down:.1f} s")
    for name in ("before", "during", "after"):
        cs = [c for c in commands if phase(c["t0"]) == name]
        ok = sum(1 for c in cs if c["error"] is None and 200 <= c["status"] < 300)
        per_op = {op: sum(1 for c in cs if c["op"] == op and c["error"] is None and 200 <= c["status"] < 300) for op in ("create", "domains", "revoke")}
        lat = [c["t1"] - c["t0"] for c in cs]
        slow = sum(1 for x in lat if x > 0.25)
        say(f"  commands {name} the outage: {len(cs)} sent, {ok} succeeded ({per_op}), "
            f"p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, max {ms(max(lat) if lat else 0)}, {slow} over 250 ms")
    failed = [c for c in commands if not (c["error"] is None and 200 <= c["status"] < 300)]
    during = [c for c in commands if phase(c["t0"]) == "during"]
    claims.check(len(during) >= 20 and all(c["error"] is None and 200 <= c["status"] < 300 for c in during),
                 f"commands keep succeeding while NATS is down ({sum(1 for c in during if c['error'] is None and 200 <= c['status'] < 300)}/{len(during)})")
    claims.check(not failed, f"no command failed at any time ({len(failed)}: {[(c['op'], c['status'], c['error'], c['code']) for c in failed[:5]]})")
    revokes_during = [c for c in during if c["op"] == "revoke" and c["error"] is None and c["status"] == 200]
    claims.check(len(revokes_during) > 0, f"keys were revoked during the outage ({len(revokes_during)})")

    stale_accept = stale_refuse = errors = 0
    immediate = {"before": 0, "during": 0, "after": 0}
    totals = {"before": 0, "during": 0, "after": 0}
    for index, node, t0, t1, status, code, error, is_immediate in checks:
        key = keys[index]
        totals[phase(t0)] += 1
        if is_immediate:
            immediate[phase(t0)] += 1
        if error is not None or status >= 500:
            errors += 1
            continue
        revoked_before = key["revoked"] is not None and key["revoked"] <= t0
        surely_active = key["revoke_sent"] is None or key["revoke_sent"] >= t1
        if revoked_before and status == 200:
            stale_accept += 1
            say(f"    STALE: key {key['id']} revoked at {key['revoked']:.3f} accepted by node {node} at {t0:.3f} ({phase(t0)})")
        elif surely_active and key["created"] <= t0 and status != 200:
            stale_refuse += 1
            say(f"    WRONG: active key {key['id']} refused {status} {code} by node {node} at {t0:.3f} ({phase(t0)})")
    say(f"  verifications: {sum(totals.values())} (before {totals['before']}, during {totals['during']}, after {totals['after']}); "
        f"right after a revoke or create answered: {sum(immediate.values())} (during the outage {immediate['during']})")
    claims.check(totals["during"] > 100, f"verification load ran through the outage ({totals['during']} requests)")
    claims.check(stale_accept == 0, f"no node accepted a key after its revoke answered (stale acceptances: {stale_accept})")
    claims.check(stale_refuse == 0, f"no node refused an Active key (wrong refusals: {stale_refuse})")
    claims.check(errors == 0, f"no verification failed with an error or 5xx ({errors})")

    say(f"  both nodes /readyz 200 {phases.get('ready_after_s', -1):.1f} s after NATS returned; "
        f"their feed consumers were back on the stream {phases.get('consumers_after_s', -1):.1f} s after it returned "
        f"(-1: not within 60 s)")
    for name in ("before", "after"):
        cs = [c for c in commands if phase(c["t0"]) == name]
        if name == "after":
            cs = [c for c in cs if c["t0"] >= up + phases.get("ready_after_s", 0)]
        lat = sorted(c["t1"] - c["t0"] for c in cs)
        say(f"  command latency {name} the outage{' (once both nodes were ready)' if name == 'after' else ''}: "
            f"p50 {ms(pct(lat, 50))}, p90 {ms(pct(lat, 90))} over {len(lat)} commands")
    claims.check(phases.get("ready_after_s", -1) >= 0, "both nodes are ready again after NATS returned")
    time.sleep(args.settle)
    check_log_integrity(args.db, claims)
    check_audit(bases, firms, args.db, claims)
    statuses = key_statuses_from_log(args.db, [f["firm_id"] for f in firms])
    ks = [{"id": k["id"], "secret": k["secret"], "firm_id": firms[0]["firm_id"]} for k in keys]
    compare_nodes_on_keys(bases, ks, {firms[0]["firm_id"]: firms[0]["token"]}, statuses, claims, "after NATS returned")
    stream_matches_events(args.nats, args.prefix, args.db, claims, 60)
    claims.finish("nats-outage")


# --------------------------------------------------------------------------------------------
# postgres-outage


def pg_before(args: argparse.Namespace) -> None:
    bases = args.bases.split(",")
    firm = sign_up(bases[0], "pg")
    keys = []
    for i in range(3):
        a = Http(bases[0]).request("POST", "/v1/api-keys", firm["token"], key_body(f"pg{i}"), new_request_id(f"pg{i}"))
        if a.status != 201:
            raise SystemExit(f"create answered {a.status} {a.text[:200]}")
        keys.append({"id": a.body["api_key"]["id"], "secret": a.body["secret"], "domains": a.body["api_key"]["allowed_domains"]})
    for base in bases:
        for k in keys:
            s = status_of(base, "/v1/api-keys/current", k["secret"])
            if s != 200:
                raise SystemExit(f"key {k['id']} answered {s} on {base} before the outage")
    with open(args.state, "w") as f:
        json.dump({"firm": firm, "keys": keys}, f)
    say(f"firm and {len(keys)} keys made; every key answers 200 on {len(bases)} nodes")


def pg_during(args: argparse.Namespace) -> None:
    """With Postgres stopped: commands are refused 503 + Retry-After within a second; keys
    known before are verified from memory. Per node, one thread sends commands (and a key
    read) in turn, one verifies the keys known before, one asks /readyz; all run for the
    whole outage."""
    bases = args.bases.split(",")
    st = json.load(open(args.state))
    firm, keys = st["firm"], st["keys"]
    target, other = keys[0], keys[1]
    refusals: list[dict] = []
    verifications: list[dict] = []
    readyz: list[int] = []
    lock = threading.Lock()
    in_flight: list[dict] = []
    outage_started = threading.Event()

    def straddle(node: int) -> None:
        """Creates keys back to back from before the outage until a moment after it began, so
        that some are in flight when Postgres goes away."""
        h = Http(bases[node])
        n = 0
        while not (outage_started.is_set() and time.time() > outage_at + 1.5):
            n += 1
            rid = new_request_id(f"fl{n}n{node}")
            a = h.request("POST", "/v1/api-keys", firm["token"], key_body(f"fl{n}n{node}"), rid)
            with lock:
                in_flight.append({"node": node, "rid": rid, "t0": a.t0, "t1": a.t1, "status": a.status, "error": a.error, "code": a.code})

    straddlers = [threading.Thread(target=straddle, args=(node,), daemon=True) for node in range(len(bases))]
    for t in straddlers:
        t.start()
    while not os.path.exists(args.outage_file) or not open(args.outage_file).read().strip():
        time.sleep(0.01)
    outage_at = float(open(args.outage_file).read().split()[0])
    outage_started.set()
    end = outage_at + args.seconds

    def commands(node: int) -> None:
        h = Http(bases[node])
        n = 0
        while time.time() < end:
            n += 1
            tag = f"out{n}n{node}"
            for op, method, path, body in (
                ("create", "POST", "/v1/api-keys", key_body(tag)),
                ("revoke", "POST", f"/v1/api-keys/{target['id']}/revoke", None),
                ("domains", "PUT", f"/v1/api-keys/{other['id']}/allowed-domains", {"allowed_domains": [f"d{tag}.drill.test"]}),
                ("show", "GET", f"/v1/api-keys/{target['id']}", None),
            ):
                rid = new_request_id(tag)
                a = h.request(method, path, firm["token"], body, rid)
                with lock:
                    refusals.append({"op": op, "node": node, "rid": rid, "t0": a.t0, "status": a.status, "error": a.error,
                                     "code": a.code, "retry_after": a.headers.get("retry-after"), "latency": a.latency,
                                     "problem": a.headers.get("content-type", "").startswith("application/problem+json")})

    def verify(node: int) -> None:
        h = Http(bases[node], keep_alive=True)
        i = 0
        while time.time() < end:
            i += 1
            k = keys[i % len(keys)]
            a = h.request("GET", "/v1/api-keys/current", k["secret"])
            with lock:
                verifications.append({"node": node, "t0": a.t0, "status": a.status, "code": a.code, "error": a.error, "latency": a.latency})
            time.sleep(0.01)

    def ready(node: int) -> None:
        while time.time() < end:
            s = status_of(bases[node], "/readyz")
            with lock:
                readyz.append(s)
            time.sleep(0.5)

    threads = [threading.Thread(target=f, args=(node,), daemon=True) for node in range(len(bases)) for f in (commands, verify, ready)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 30)
    # Straddling requests that hang (a frozen Postgres) are answered once it returns: do not wait here.
    with lock:
        snapshot = {"refusals": list(refusals), "verifications": list(verifications), "readyz": list(readyz), "started": outage_at}
    with open(args.out, "w") as f:
        json.dump(snapshot, f)
    with open(args.out + ".ready", "w") as f:
        f.write("1")
    for t in straddlers:
        t.join(120)
    with open(args.out + ".in-flight", "w") as f:
        json.dump(in_flight, f)
    say(f"outage probes: {len(refusals)} commands, {len(verifications)} verifications, {len(readyz)} /readyz")


def pg_after(args: argparse.Namespace) -> None:
    claims = Claims()
    bases = args.bases.split(",")
    st = json.load(open(args.state))
    firm, keys = st["firm"], st["keys"]
    target, other = keys[0], keys[1]
    out = json.load(open(args.results))
    refusals, verifications, readyz = out["refusals"], out["verifications"], out["readyz"]

    say(f"  Postgres was down {args.down_s:.1f} s")
    lat = [r["latency"] for r in refusals]
    by = {}
    for r in refusals:
        key = (r["op"], r["status"] if r["error"] is None else r["error"])
        by[key] = by.get(key, 0) + 1
    say(f"  commands and reads sent during the outage: {len(refusals)}: " + ", ".join(f"{op} -> {s}: {c}" for (op, s), c in sorted(by.items(), key=str)))
    for op in ("create", "revoke", "domains", "show"):
        l = [r["latency"] for r in refusals if r["op"] == op]
        say(f"    {op:8} refusal latency p50 {ms(pct(l, 50))}, p99 {ms(pct(l, 99))}, max {ms(max(l) if l else 0)}")
    say(f"  all refusals: p50 {ms(pct(lat, 50))}, max {ms(max(lat) if lat else 0)}")
    not_503 = [r for r in refusals if r["error"] is not None or r["status"] != 503 or r["code"] != "service_unavailable" or not r["problem"]]
    no_retry = [r for r in refusals if r["status"] == 503 and not r["retry_after"]]
    slow = [r for r in refusals if r["latency"] > 1.0]
    claims.check(len(refusals) > 0 and not not_503,
                 f"every command (and key read) during the outage answered 503 service_unavailable problem+json "
                 f"({len(refusals) - len(not_503)}/{len(refusals)}; others: {sorted({(r['op'], r['status'], r['error'], r['code']) for r in not_503})})")
    claims.check(not no_retry, f"every 503 carries Retry-After ({len(no_retry)} without)")
    claims.check(not slow, f"every refusal came within 1 s ({len(slow)} slower; max {ms(max(lat) if lat else 0)})")

    vok = sum(1 for v in verifications if v["error"] is None and v["status"] == 200)
    vlat = [v["latency"] for v in verifications]
    vby = {}
    for v in verifications:
        k = v["status"] if v["error"] is None else v["error"]
        k = f"{k} {v['code'] or ''}".strip()
        vby[k] = vby.get(k, 0) + 1
    say(f"  verifications of keys made before the outage: {len(verifications)}: {vby}; p50 {ms(pct(vlat, 50))}, max {ms(max(vlat) if vlat else 0)}")
    for node, base in enumerate(bases):
        vs = [v for v in verifications if v["node"] == node]
        bad = [v for v in vs if not (v["error"] is None and v["status"] == 200)]
        lost = sum(v["latency"] for v in bad)
        say(f"    node {base}: {len(vs) - len(bad)}/{len(vs)} answered 200" + (f"; {len(bad)} failed, the first {bad[0]['t0'] - out['started']:.2f} s into the outage, the last {bad[-1]['t0'] - out['started']:.2f} s; "
            f"the failing requests took {lost:.1f} s of the {args.down_s:.0f} s outage" if bad else ""))
    claims.check(len(verifications) > 0 and vok == len(verifications),
                 f"keys made before the outage keep verifying (GET /v1/api-keys/current 200): {vok}/{len(verifications)}")
    say(f"  /readyz during the outage: {sorted(set(readyz))} ({len(readyz)} probes)")

    # Requests in flight when Postgres went away.
    in_flight = json.load(open(args.results + ".in-flight"))
    went = out["started"]
    gone = args.gone_at or went
    straddling = [r for r in in_flight if r["t0"] < gone and r["t1"] > went]
    after = [r for r in in_flight if r["t0"] >= gone]
    outcome = {}
    for r in straddling + after:
        k = ("in flight" if r in straddling else "sent after") + " -> " + (r["error"] or f"{r['status']} {r['code'] or ''}".strip())
        outcome[k] = outcome.get(k, 0) + 1
    waits = [r["t1"] - max(r["t0"], gone) for r in straddling + after]
    say(f"  creates sent back to back across the moment Postgres went away: {len(straddling)} in flight, {len(after)} sent after: {outcome}; "
        f"answered at most {ms(max(waits) if waits else 0)} after it was gone")
    bad = [r for r in straddling + after if not (r["error"] is None and (r["status"] == 503 or 200 <= r["status"] < 300))]
    claims.check(not bad, f"a command caught by the outage answers 2xx or 503, nothing else ({len(bad)}: {sorted({(r['status'], r['error'], r['code']) for r in bad})})")
    # A command caught with its statement on the wire (a frozen server answers nothing) is
    # refused at the request deadline (ESQASE_REQUEST_DEADLINE_MS, 2 s); one sent after is
    # refused within the 500 ms connection time-out. A command whose COMMIT was on the wire is
    # waited for and succeeds: once the server answers again, or it committed just before and
    # answers after the barrier (at most the 1.35 s lease wait when it cannot reach a node).
    late = [r["t1"] - max(r["t0"], gone) for r in straddling + after
            if r["t1"] - max(r["t0"], gone) > (3.0 if r["error"] is None and 200 <= r["status"] < 300 else 2.2)]
    claims.check(not late, f"a command caught by the outage is refused within the 2 s request deadline, or succeeds within 3 s ({len(late)} later; max {ms(max(waits) if waits else 0)})")
    refused_in_flight = [r for r in straddling + after if r["status"] == 503]
    if refused_in_flight:
        quoted_if = ",".join(f"'{r['rid']}'" for r in refused_in_flight)
        committed = int(psql_scalar(args.db, f"SELECT count(DISTINCT request_id) FROM events WHERE request_id IN ({quoted_if})"))
    else:
        committed = 0
    claims.check(committed == 0, f"a command caught by the outage and answered 503 did not commit ({committed} of {len(refused_in_flight)} did: the client was told it failed)")
    claims.check(all(s == 503 for s in readyz), "/readyz answers 503 while Postgres is down")

    # Recovery: commands succeed again; readiness returns.
    started = time.time()
    recovered = None
    attempts = 0
    while time.time() - started < args.recover_timeout:
        attempts += 1
        a = Http(bases[0]).request("POST", "/v1/api-keys", firm["token"], key_body(f"rec{attempts}"), new_request_id(f"rec{attempts}"))
        if a.status == 201:
            recovered = time.time() - started
            break
        time.sleep(0.1)
    since_start = args.since_start + (recovered or 0)
    say(f"  first successful create {since_start:.2f} s after Postgres came back ({attempts} attempts)")
    claims.check(recovered is not None, f"commands succeed again after Postgres returns ({since_start:.2f} s after it came back)")
    ready = wait_ready(bases, args.recover_timeout)
    say(f"  /readyz 200 on every node {args.since_start + (time.time() - started):.2f} s after Postgres came back")
    claims.check(ready is not None, "every node answers /readyz 200 again")

    # No half state: the revoke that was refused left nothing behind.
    rids = [r["rid"] for r in refusals]
    quoted = ",".join(f"'{r}'" for r in rids) or "''"
    leaked = int(psql_scalar(args.db, f"SELECT count(*) FROM events WHERE request_id IN ({quoted})"))
    claims.check(leaked == 0, f"no refused command left an event ({leaked} events carry an outage request id)")
    for base in bases:
        h = Http(base)
        v = h.request("GET", f"/v1/api-keys/{target['id']}", firm["token"])
        c = h.request("GET", "/v1/api-keys/current", target["secret"])
        o = h.request("GET", f"/v1/api-keys/{other['id']}", firm["token"])
        claims.check(v.status == 200 and v.body.get("status") == "active" and c.status == 200,
                     f"on {base} the key whose revoke was refused is still Active and still works (GET {v.status} {v.body.get('status') if isinstance(v.body, dict) else ''}, /current {c.status})")
        claims.check(o.status == 200 and o.body.get("allowed_domains") == other["domains"],
                     f"on {base} the key whose domain edit was refused kept its domains ({o.body.get('allowed_domains') if isinstance(o.body, dict) else o.status})")
    revoked_rows = int(psql_scalar(args.db, f"SELECT count(*) FROM events WHERE stream_id = '{target['id']}' AND event_type = 'ApiKeyRevoked'"))
    claims.check(revoked_rows == 0, f"the log holds no Revoked event for it ({revoked_rows})")
    a = Http(bases[0]).request("POST", f"/v1/api-keys/{target['id']}/revoke", firm["token"], None, new_request_id("final"))
    claims.check(a.status == 200, f"revoking it now works ({a.status})")
    for base in bases:
        s = status_of(base, "/v1/api-keys/current", target["secret"])
        claims.check(s == 401, f"and {base} refuses it at once ({s})")
    check_log_integrity(args.db, claims)
    check_audit(bases, [firm], args.db, claims)
    claims.finish("postgres-outage")


# --------------------------------------------------------------------------------------------
# Small helpers for the shell scripts


def cmd_free_port(_: argparse.Namespace) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    say(s.getsockname()[1])
    s.close()


def cmd_wait_ready(args: argparse.Namespace) -> None:
    took = wait_ready(args.bases.split(","), args.timeout)
    if took is None:
        say("not ready")
        sys.exit(1)
    say(f"{took:.2f}")


def cmd_nats_cleanup(args: argparse.Namespace) -> None:
    try:
        nats = Nats(args.nats)
    except OSError as e:
        say(f"nats-cleanup: {e}")
        return
    for stream in (f"{args.prefix}_events",):
        try:
            js_delete_stream(nats, stream)
        except (RuntimeError, OSError) as e:
            say(f"nats-cleanup: {stream}: {e}")
    nats.close()


def cmd_consumers_wait(args: argparse.Namespace) -> None:
    """Seconds until the feed stream has at least `count` consumers (the nodes' runners
    following JetStream again), or -1 after the time-out."""
    started = time.time()
    while time.time() - started < args.timeout:
        try:
            nats = Nats(args.nats, timeout=2)
            try:
                answer = nats.request(f"$JS.API.CONSUMER.LIST.{args.prefix}_events", b"{}")
            finally:
                nats.close()
            if len(answer.get("consumers") or []) >= args.count:
                say(f"{time.time() - started:.2f}")
                return
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.25)
    say("-1")


# --------------------------------------------------------------------------------------------
# open-transaction


def revoke_probe(args: argparse.Namespace) -> None:
    """Rounds of: create a key on the first node and ask the other node with it at once; keep
    asking every node with it (kept-alive connections) while the first node revokes it; record
    the revoke's latency and every answer with its start time."""
    state = json.load(open(args.state))
    firm = state["firms"][0]
    bases = args.bases.split(",")
    rounds = []
    for n in range(args.rounds):
        a = Http(bases[0]).request("POST", "/v1/api-keys", firm["token"], key_body(f"{args.label}{n}"), new_request_id("create"))
        if not a.ok:
            raise SystemExit(f"create answered {a.status} {a.error or ''} {a.text[:300]}")
        key_id, secret = a.body["api_key"]["id"], a.body["secret"]
        at_once = [Http(b).request("GET", "/v1/api-keys/current", secret).status for b in bases[1:]]
        answers: list[tuple[float, int, str | None]] = []
        lock = threading.Lock()
        revoked_at: list[float] = []

        def hammer(base: str) -> None:
            http_ = Http(base, keep_alive=True, timeout=10)
            while True:
                answer = http_.request("GET", "/v1/api-keys/current", secret)
                with lock:
                    answers.append((answer.t0, answer.status, answer.error))
                if revoked_at and answer.t0 > revoked_at[0] + 0.3:
                    return

        threads = [threading.Thread(target=hammer, args=(b,)) for b in bases for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        r = Http(bases[0]).request("POST", f"/v1/api-keys/{key_id}/revoke", firm["token"], {}, new_request_id("revoke"))
        if not r.ok:
            raise SystemExit(f"revoke answered {r.status} {r.error or ''} {r.text[:300]}")
        revoked_at.append(r.t1)
        for t in threads:
            t.join()
        after = [s for (t0, s, e) in answers if t0 > r.t1]
        rounds.append({
            "create_ms": a.latency * 1000,
            "revoke_ms": r.latency * 1000,
            "new_key_on_other_nodes": at_once,
            "accepted_before": sum(1 for (t0, s, e) in answers if t0 <= r.t0 and s == 200),
            "after": len(after),
            "accepted_after": sum(1 for s in after if s == 200),
            "errors_after": sum(1 for s in after if s != 401),
        })
    with open(args.out, "w") as f:
        json.dump({"label": args.label, "rounds": rounds}, f)
    revokes = [r["revoke_ms"] for r in rounds]
    say(f"{args.label}: {len(rounds)} rounds, revoke p50 {statistics.median(revokes):.1f} ms, max {max(revokes):.1f} ms, "
        f"accepted after a revoke answered: {sum(r['accepted_after'] for r in rounds)}")


def revoke_check(args: argparse.Namespace) -> None:
    """Compares the rounds run with other transactions open on the cluster against quiet ones."""
    quiet = json.load(open(args.quiet))["rounds"]
    held = json.load(open(args.held))["rounds"]
    claims = Claims()
    q50 = statistics.median(r["revoke_ms"] for r in quiet)
    h50 = statistics.median(r["revoke_ms"] for r in held)
    hmax = max(r["revoke_ms"] for r in held)
    say(f"revoke latency: quiet p50 {q50:.1f} ms; with the open transactions p50 {h50:.1f} ms, max {hmax:.1f} ms")
    claims.check(h50 <= max(2 * q50, q50 + 10), f"with the open transactions a revoke answers within its usual latency (p50 {h50:.1f} ms vs {q50:.1f} ms quiet)")
    claims.check(hmax < 500, f"no revoke waited on the open transactions (max {hmax:.1f} ms, < 500 ms)")
    every = quiet + held
    claims.check(all(all(s == 200 for s in r["new_key_on_other_nodes"]) for r in every), "a key created on A works on B at once, every round")
    accepted = sum(r["accepted_after"] for r in every)
    after = sum(r["after"] for r in every)
    claims.check(accepted == 0, f"no node accepted a key after its revoke answered ({accepted} of {after} requests)")
    claims.check(sum(r["errors_after"] for r in every) == 0, "every request after a revoke was refused with 401, none failed otherwise")
    claims.check(after > 0 and sum(r["accepted_before"] for r in every) > 0, "requests flowed before and after each revoke")
    claims.finish("open-transaction")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("free-port")
    s.set_defaults(fn=cmd_free_port)
    s = sub.add_parser("wait-ready")
    s.add_argument("--bases", required=True)
    s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(fn=cmd_wait_ready)
    s = sub.add_parser("nats-cleanup")
    s.add_argument("--nats", required=True)
    s.add_argument("--prefix", required=True)
    s.set_defaults(fn=cmd_nats_cleanup)

    s = sub.add_parser("setup")
    s.add_argument("--base", required=True)
    s.add_argument("--firms", type=int, default=2)
    s.add_argument("--state", required=True)
    s.set_defaults(fn=cmd_setup)

    s = sub.add_parser("kill-load")
    s.add_argument("--base", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--stop-file", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--workers", type=int, default=6)
    s.add_argument("--pause", type=float, default=0.0)
    s.set_defaults(fn=kill_load)
    s = sub.add_parser("kill-check")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--kill-file")
    s.add_argument("--nats")
    s.add_argument("--prefix")
    s.add_argument("--settle", type=float, default=3)
    s.set_defaults(fn=kill_check)

    s = sub.add_parser("outage-load")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--stop-file", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed-keys", type=int, default=12)
    s.add_argument("--command-workers", type=int, default=2)
    s.add_argument("--verify-workers", type=int, default=4)
    s.add_argument("--pause", type=float, default=0.05)
    s.set_defaults(fn=outage_load)
    s = sub.add_parser("outage-check")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--phases", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--nats", required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--settle", type=float, default=3)
    s.set_defaults(fn=outage_check)

    s = sub.add_parser("pg-before")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.set_defaults(fn=pg_before)
    s = sub.add_parser("pg-during")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seconds", type=float, default=15)
    s.add_argument("--outage-file", required=True)
    s.set_defaults(fn=pg_during)
    s = sub.add_parser("pg-after")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--down-s", type=float, required=True)
    s.add_argument("--since-start", type=float, default=0.0)
    s.add_argument("--gone-at", type=float, default=0.0)
    s.add_argument("--recover-timeout", type=float, default=30)
    s.set_defaults(fn=pg_after)

    s = sub.add_parser("revoke-probe")
    s.add_argument("--bases", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--label", required=True)
    s.add_argument("--rounds", type=int, default=10)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=revoke_probe)
    s = sub.add_parser("revoke-check")
    s.add_argument("--quiet", required=True)
    s.add_argument("--held", required=True)
    s.set_defaults(fn=revoke_check)

    s = sub.add_parser("consumers-wait")
    s.add_argument("--nats", required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--count", type=int, default=2)
    s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(fn=cmd_consumers_wait)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
