#!/usr/bin/env python3
"""A local emulator of the 123pan open platform's offline download API.

One emulator serves every kind of test (Rust, C, C++, Python), the benchmarks' fidelity
checks and the demo. It speaks the envelope, headers and endpoints of SPEC.md, rejects what the
real service rejects, simulates downloads (fetching its own throttled /files/ route for real),
POSTs callbacks to loopback URLs, lets a test script faults per request, and records every
request. Standard library only; binds to loopback only.

    python3 pan_emulator.py [--port 0] [--token T]... [--client ID:SECRET]...
                            [--rate BYTES_PER_S] [--max-seconds S] [--watch-stdin]

It prints `PAN_EMULATOR_URL=http://127.0.0.1:<port>` on its first line of output, then
serves until POST /__emu/shutdown, until --max-seconds pass, or (with --watch-stdin) until
its standard input closes, so that it never outlives the test that started it.

Control routes (JSON): POST /__emu/faults (a fault or a list), GET /__emu/requests,
GET /__emu/tasks, GET /__emu/callbacks, GET /__emu/refused, GET /__emu/stats,
POST /__emu/config, POST /__emu/login, POST /__emu/reset, POST /__emu/shutdown. Fault keys
are documented in `Fault` below, configuration keys and the other routes in
`Handler.control`.
"""

import argparse
import base64
import http.server
import itertools
import json
import select
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import ipaddress
import uuid
from datetime import datetime, timedelta, timezone

PLATFORM = "open_platform"
CST = timezone(timedelta(hours=8))
IMAGE_EXTS = {"png", "gif", "jpeg", "tiff", "webp", "jpg", "tif", "svg", "bmp"}


class State:
    """Everything the emulator knows, behind one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.tokens = {t: None for t in args.token}  # token -> expiry (epoch s) or None
        self.clients = dict(c.split(":", 1) for c in args.client)
        self.token_ttl = 30 * 86400.0
        self.max_tokens = 3
        self.rate = args.rate
        self.idle_close_ms = None
        self.task_seconds = 1.0  # simulated duration for sources not on the file route
        self.next_task = itertools.count(394756)
        self.tasks = {}
        self.requests = []
        self.faults = []
        self.callbacks = []
        self.conn_ids = itertools.count(1)
        self.token_seq = itertools.count(1)
        self.base = ""
        self.resolve = {}
        self.clock_skew_s = 0.0  # the emulator's clock minus the real one, for Date/expiredAt
        # Rates the service enforces, per kind ("create", "progress"): calls per second in
        # any one-second window; over it, an envelope 429 as the service answers. 0: none.
        self.rate_limits = {}
        self.recent = {}  # kind -> timestamps of the calls let through, last second
        self.max_running = 0  # running tasks an account may have; over it, a create is refused
        self.refused = {"rate": {}, "running": 0}
        self.expiry_format = "offset"
        self.send_date = True
        # "refuse" (the default): a token fetch while max_tokens tokens of that client are live
        # is refused. "evict": it succeeds and pushes out the client's oldest live token, which
        # from then on is answered 401 "tokens number has exceeded the limit".
        self.token_limit_mode = "refuse"
        self.evicted = set()  # tokens pushed out (by the limit or by evict_tokens)
        # "lenient" (the default): within_rate counts the calls it let through, in a 0.98 s
        # window. "strict": it counts every call of the kind that reached it, refused ones too,
        # by arrival time, in the trailing 1.000 s window (see within_rate).
        self.rate_window_mode = "lenient"
        self.arrivals = {}  # kind -> arrival times (monotonic) of every call, strict mode
        # "envelope" (the default): over a rate, HTTP 200 with envelope 429. "gateway": what
        # the Kong gateway in front of the service answers, HTTP 429 and its own body.
        self.rate_limit_form = "envelope"
        # The account-level penalty: while `ban` holds, every create answers envelope 1
        # "internal error" and creates nothing. ban_after_creates N (0: off) sets `ban` by
        # itself once N creates have succeeded within 10 s.
        self.ban = False
        self.ban_after_creates = 0
        self.create_times = []  # monotonic times of the successful creates, last 10 s
        self.stats = new_stats()
        for entry in args.resolve:
            name, _, addr = entry.rpartition(":") if entry.count(":") == 1 else entry.partition(":")
            if not ipaddress.ip_address(addr.strip("[]")).is_loopback:
                raise SystemExit(f"--resolve {entry}: loopback addresses only")
            self.resolve[name.lower()] = addr.strip("[]")

    def take_fault(self, path):
        with self.lock:
            for i, f in enumerate(self.faults):
                if path.startswith(f.get("path", "/api/")):
                    f["times"] = f.get("times", 1) - 1
                    if f["times"] <= 0:
                        del self.faults[i]
                    return dict(f)
        return None


def new_stats():
    """The counters of GET /__emu/stats, all zero (POST /__emu/reset starts them again)."""
    return {"token_fetches": 0, "token_fetch_refusals": 0, "evicted_uses": 0, "creates": 0,
            "rate_refused": {}, "running_refused": 0, "ban_refused": 0,
            "external_logins": 0, "external_login_refusals": 0}


def fetch_token(cid, external=False):
    """Issues a token to client `cid` (whose credentials are already checked) under the token
    limit, as the service does; returns the envelope. A client may hold max_tokens live
    tokens: over it, token_limit_mode "refuse" answers 401 "tokens number has exceeded the
    limit", "evict" issues the token and pushes out the client's oldest live tokens (oldest
    issued first) so that max_tokens remain live; with max_tokens 0 or less nothing can be
    live and the fetch is refused in either mode. Tokens not issued to a client (--token,
    config `tokens`) are never counted nor evicted. `external`: the fetch of another program
    (POST /__emu/login), counted as external_logins / external_login_refusals rather than
    token_fetches / token_fetch_refusals."""
    now = time.time()
    ok_key, refused_key = (("external_logins", "external_login_refusals") if external
                           else ("token_fetches", "token_fetch_refusals"))
    with STATE.lock:
        live = [t for t, exp in STATE.tokens.items()
                if t.startswith(f"tok-{cid}-") and exp is not None and exp > now]
        if len(live) >= STATE.max_tokens:
            if STATE.token_limit_mode != "evict" or STATE.max_tokens <= 0:
                STATE.stats[refused_key] += 1
                return envelope(401, "tokens number has exceeded the limit")
            for old in live[:len(live) - STATE.max_tokens + 1]:  # dicts keep issue order
                del STATE.tokens[old]
                STATE.evicted.add(old)
        tok = f"tok-{cid}-{next(STATE.token_seq)}-{uuid.uuid4().hex}"
        exp = now + STATE.token_ttl
        STATE.tokens[tok] = exp
        STATE.stats[ok_key] += 1
    return envelope(0, "ok", {"accessToken": tok, "expiredAt": expired_at_text(exp)})


def answer_bytes(answer, ensure_ascii=True):
    """The body for an answer of api(): an envelope (any JSON value) is serialised, bytes
    (a body that is no envelope, such as the gateway's 429) go out as they are."""
    if isinstance(answer, bytes):
        return answer
    return json.dumps(answer, ensure_ascii=ensure_ascii).encode()


def expired_at_text(exp):
    """`expiredAt` for a token expiring at `exp` (real epoch seconds), on the emulator's clock
    (shifted by clock_skew_s) and in the form set by expiry_format: "offset" (the service's
    +08:00, the default), "compact" (+0800), "z" (UTC), "fraction" (milliseconds), "naive"
    (no offset: the service's zone) or "garbage"."""
    t = datetime.fromtimestamp(exp + STATE.clock_skew_s, CST)
    return {
        "offset": lambda: t.isoformat(timespec="seconds"),
        "compact": lambda: t.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "z": lambda: t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fraction": lambda: t.isoformat(timespec="milliseconds"),
        "naive": lambda: t.strftime("%Y-%m-%d %H:%M:%S"),
        "garbage": lambda: "in thirty days",
    }[STATE.expiry_format]()


def trace_id():
    return f"{uuid.uuid4()}_emulator"


def envelope(code, message, data=None):
    return {"code": code, "message": message, "data": data, "x-traceID": trace_id()}


class Task:
    """A simulated offline download."""

    def __init__(self, task_id, body, oss, seconds):
        self.id = task_id
        self.url = body["url"]
        self.callback = body.get("callBackUrl")
        self.oss = oss
        self.process = 0.0
        self.status = 0  # 0 downloading, 1 failed, 2 succeeded, 3 retrying
        self.fail_reason = ""
        self.file_id = None
        self.body = body
        # A simulated download (None: a real one from the /files/ route) takes `seconds`; its
        # progress is worked out when asked for, so a task costs no thread of its own and a
        # soak of 100,000 creates leaves no crowd of sleeping threads behind.
        self.seconds = seconds
        self.started = time.monotonic()

    def tick(self):
        """Brings a simulated task up to date: 10 % steps over `seconds`, then success."""
        if self.seconds is None or self.status != 0:
            return
        steps = int((time.monotonic() - self.started) * 10 / self.seconds) if self.seconds > 0 else 10
        if steps >= 10:
            self.succeed()
        else:
            self.process = float(steps * 10)

    def succeed(self):
        self.process = 100.0
        self.file_id = 100000 + self.id % 100000
        self.status = 2

    def view(self):
        self.tick()
        return {"taskID": self.id, "url": self.url, "process": self.process,
                "status": self.status, "failReason": self.fail_reason, "fileID": self.file_id,
                "request": self.body}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not directions: the emulator never follows one off loopback."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxies (whatever http_proxy says) and no redirects: the emulator's own requests stay on
# this machine.
LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def loopback_only(url):
    """Whether every address `url`'s host resolves to is a loopback address. Names are
    resolved here, before any connection, so nothing leaves the machine."""
    p = urllib.parse.urlsplit(url)
    if p.scheme not in ("http", "https") or not p.hostname:
        return False
    try:
        infos = socket.getaddrinfo(p.hostname, p.port or 80, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback
                               for i in infos)


def local_urlopen(req, timeout):
    """urlopen for the emulator's own requests: loopback targets only, no proxy, no
    redirect."""
    url = req if isinstance(req, str) else req.full_url
    if not loopback_only(url):
        raise urllib.error.URLError(f"not a loopback URL: {url}")
    return LOCAL_OPENER.open(req, timeout=timeout)


def proxy_target(host):
    """Where the emulator's proxies reach `host`: a loopback address, a name mapped by
    --resolve, or `localhost`; None for anything else (nothing leaves the machine)."""
    host = STATE.resolve.get(host.lower(), host)
    if host == "localhost":
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def run_task(state, task):
    """Downloads the source for real when it is on this emulator's /files/ route, otherwise
    waits out the simulated duration; then POSTs the callback. Only tasks that download for
    real or have a callback get this thread."""
    if task.seconds is not None:
        time.sleep(max(0.0, task.started + task.seconds - time.monotonic()))
        task.tick()
    else:
        try:
            with local_urlopen(task.url, timeout=60) as r:
                total = int(r.headers.get("Content-Length") or 0) or 1
                got = 0
                while True:
                    chunk = r.read(16384)
                    if not chunk:
                        break
                    got += len(chunk)
                    task.process = round(min(got * 100.0 / total, 99.99), 2)
            task.succeed()
        except Exception as e:  # the source failed: the service reports process 0, status 1
            task.process = 0.0
            task.status = 1
            task.fail_reason = f"download failed: {getattr(e, 'code', '')} {e}".strip()
    if task.callback:
        send_callback(state, task)


def send_callback(state, task):
    body = {"url": task.url, "status": 0 if task.status == 2 else 1,
            "failReason": task.fail_reason, "fileID": task.file_id or 0}
    try:
        req = urllib.request.Request(task.callback, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        local_urlopen(req, timeout=10).read()
    except Exception:
        pass


def valid_http_url(u):
    if not isinstance(u, str):
        return False
    p = urllib.parse.urlsplit(u)
    return p.scheme in ("http", "https") and bool(p.netloc)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pan-emulator"
    sys_version = ""

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):
        """The Date header, on the emulator's (possibly skewed) clock."""
        return super().date_time_string((timestamp or time.time()) + STATE.clock_skew_s)

    def send_header(self, keyword, value):
        if keyword.lower() == "date" and not STATE.send_date:
            return
        super().send_header(keyword, value)

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY the second one
        # waits for the peer's delayed ACK (40 ms per answer).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn_id = next(STATE.conn_ids)

    def handle_one_request(self):
        # Close keep-alive connections that stay idle longer than `idle_close_ms`, as
        # real gateways do between calls.
        idle = STATE.idle_close_ms
        self.connection.settimeout(idle / 1000.0 if idle and self.requests_on_conn() else None)
        super().handle_one_request()

    def requests_on_conn(self):
        return getattr(self, "_served", 0)

    def parse_request(self):
        # A request's arrival: its request line has just been read, nothing else done yet.
        # The strict rate window and the `mono` of the request log use it.
        self.arrival = time.monotonic()
        return super().parse_request()

    # ---- plumbing -------------------------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, obj, status=200, headers=None):
        """Sends `obj` as JSON, or as it is if it is bytes (a JSON body that is no envelope)."""
        self.send_raw(status, answer_bytes(obj, ensure_ascii=False), headers)

    def send_raw(self, status, body, headers=None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self._served = self.requests_on_conn() + 1

    def drop(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_CONNECT(self):
        """Acts as an HTTP CONNECT proxy to loopback targets (this emulator among them), so
        that a client's proxy path is tested end to end. Logged as a CONNECT request."""
        host, _, port = self.path.rpartition(":")
        self.record_request("CONNECT", self.path, "", b"")
        addr = proxy_target(host.strip("[]"))
        if addr is None or not port.isdigit():
            self.send_raw(403, b"loopback targets only", content_type="text/plain")
            return
        try:
            upstream = socket.create_connection((addr, int(port)), timeout=10)
        except OSError:
            self.send_raw(502, b"cannot reach the target", content_type="text/plain")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True
        self.relay(upstream)

    def handle(self):
        """A connection whose first byte is 5 speaks SOCKS5 (RFC 1928) rather than HTTP."""
        if not isinstance(self.connection, socket.socket) or hasattr(self.connection, "getpeercert"):
            super().handle()  # TLS: HTTPS only
            return
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x05":
            self.socks5()
        else:
            super().handle()

    def socks5(self):
        """A SOCKS5 proxy to loopback targets (no authentication, or a user name and password
        that are accepted whatever they are), logged as a SOCKS5 request whose path is the
        target as the client named it: a name for socks5h, an address for socks5."""
        c = self.connection
        c.settimeout(10)

        def read(n):
            data = b""
            while len(data) < n:
                more = c.recv(n - len(data))
                if not more:
                    raise OSError("closed")
                data += more
            return data

        try:
            _, n = read(2)
            methods = read(n)
            if 2 in methods:
                c.sendall(b"\x05\x02")
                _, ulen = read(2)
                user = read(ulen)
                (plen,) = read(1)
                read(plen)
                c.sendall(b"\x01\x00")
            else:
                user = b""
                c.sendall(b"\x05\x00")
            _, cmd, _, atyp = read(4)
            if atyp == 1:
                host = socket.inet_ntop(socket.AF_INET, read(4))
            elif atyp == 4:
                host = socket.inet_ntop(socket.AF_INET6, read(16))
            else:
                host = read(read(1)[0]).decode("ascii", "replace")
            port = int.from_bytes(read(2), "big")
        except OSError:
            return
        self.headers = {}
        entry = self.record_request("SOCKS5", f"{host}:{port}", "", b"")
        entry["user"] = user.decode("utf-8", "replace")
        addr = proxy_target(host)
        if cmd != 1 or addr is None:
            c.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")  # not allowed
            return
        try:
            upstream = socket.create_connection((addr, port), timeout=10)
        except OSError:
            c.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # refused
            return
        c.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        self.relay(upstream)

    def relay(self, upstream):
        """Copies bytes both ways between the client and `upstream` until one side closes."""
        self.connection.settimeout(None)
        upstream.settimeout(None)
        pair = {self.connection: upstream, upstream: self.connection}
        try:
            while True:
                ready, _, _ = select.select(list(pair), [], [], 60)
                if not ready:
                    break
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    pair[src].sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def record_request(self, method, path, query, body):
        """Records a request for GET /__emu/requests; returns its entry. `t` is the wall
        clock when recorded, `mono` the request's arrival on the emulator's monotonic clock
        (the clock of the strict rate window; comparable across the requests of one
        emulator, whichever process sent them)."""
        entry = {"method": method, "path": path, "query": query,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode("utf-8", "replace"), "conn": self.conn_id, "task": None,
                 "t": time.time(), "mono": getattr(self, "arrival", None) or time.monotonic()}
        with STATE.lock:
            STATE.requests.append(entry)
        return entry

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        body = self.read_body()
        if path.startswith("/__emu/"):
            return self.control(method, path, body)
        if path.startswith("/files/"):
            return self.file_route(path, query)
        if path == "/callback":
            with STATE.lock:
                STATE.callbacks.append(body.decode("utf-8", "replace"))
            return self.send_raw(200, b"ok", content_type="text/plain")
        entry = self.record_request(method, path, url.query, body)
        fault = STATE.take_fault(path)
        if fault and not self.apply_fault(fault, method, path, query, body, entry):
            return
        status, answer, extra = self.api(method, path, query, body, entry)
        if fault and ("chunked" in fault or "trailer_bytes" in fault or "trailer_drip_ms" in fault):
            return self.send_chunked(fault.get("chunked", 64), status, answer,
                                     fault.get("trailer_bytes", 0), fault.get("trailer_drip_ms"))
        if fault and fault.get("close_delimited"):
            return self.send_close_delimited(status, answer)
        if fault and (fault.get("truncate") or "content_length" in fault or "drip_ms" in fault):
            return self.send_broken(fault, status, answer)
        self.send_json(answer, status, extra)

    # ---- faults ---------------------------------------------------------------------------

    def apply_fault(self, f, method, path, query, body, entry):
        """Class Fault: keys a test may combine.
        delay_ms      sleep before answering
        drop          "before": close without acting; "after": act, then close unanswered
        status, body, headers    answer this raw HTTP response instead (no action); body_b64
                      gives the body as base64 bytes (a byte-order mark, GBK text)
        raw           write these bytes (latin-1 text, or raw_b64) as the whole answer, then
                      close (no action): folded headers and other odd heads
        trailer_bytes act, answer chunked, then send this many bytes of trailer fields
        trailer_drip_ms          act, answer chunked, then 20 trailer lines this far apart
        code, message            answer this envelope error with HTTP 200 (no action)
        redirect      answer 302 to this URL (no action)
        oversize      answer 200 with a body of this many bytes (no action)
        truncate      act, announce a longer body than sent, close
        content_length           act, announce this Content-Length, send the real body, close
        drip_ms       act, send the answer one byte every drip_ms
        chunked       act, send the answer with Transfer-Encoding: chunked, in chunks of this
                      many bytes, each its own write; the connection stays open
        close_delimited          act, send the answer without a length, then close (the
                      HTTP/1.0 way of ending a body)
        Returns True to go on with the normal handling."""
        if "delay_ms" in f:
            time.sleep(f["delay_ms"] / 1000.0)
        if f.get("drop") == "before":
            self.drop()
            return False
        if f.get("drop") == "after":
            self.api(method, path, query, body, entry)
            self.drop()
            return False
        if "raw" in f or "raw_b64" in f:
            data = base64.b64decode(f["raw_b64"]) if "raw_b64" in f else f["raw"].encode("latin-1")
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return False
        if "status" in f:
            data = f.get("body", "")
            data = data.encode() if isinstance(data, str) else json.dumps(data).encode()
            if "body_b64" in f:
                data = base64.b64decode(f["body_b64"])
            ctype = "text/html" if data[:1] == b"<" else "application/json"
            self.send_raw(f["status"], data, f.get("headers"), ctype)
            return False
        if "code" in f:
            self.send_json(envelope(f["code"], f.get("message", "")), 200, f.get("headers"))
            return False
        if "redirect" in f:
            self.send_raw(302, b"", {"Location": f["redirect"]})
            return False
        if "oversize" in f:
            n = int(f["oversize"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                block = b" " * 65536
                left = n
                while left > 0:
                    self.wfile.write(block[:min(left, len(block))])
                    left -= len(block)
            except OSError:
                pass
            self.close_connection = True
            return False
        return True

    def send_chunked(self, size, status, answer, trailer_bytes=0, trailer_drip_ms=None):
        data = answer_bytes(answer)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(0, len(data), size):
            piece = data[i:i + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        try:
            if trailer_drip_ms:
                self.wfile.write(b"0\r\n")
                for _ in range(20):  # one trailer line per drip, then the end: bounded
                    time.sleep(trailer_drip_ms / 1000.0)
                    self.wfile.write(b"X-Slow: 1\r\n")
                self.wfile.write(b"\r\n")
            elif not trailer_bytes:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(b"0\r\n")
                line = b"X-Pad: " + b"a" * 1000 + b"\r\n"
                for _ in range(trailer_bytes // len(line)):
                    self.wfile.write(line)
                self.wfile.write(b"\r\n")
            self.wfile.flush()
        except OSError:  # the client gave up on an endless trailer section
            self.close_connection = True
            return
        self._served = self.requests_on_conn() + 1

    def send_close_delimited(self, status, answer):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer_bytes(answer))
        self.wfile.flush()
        self.close_connection = True

    def send_broken(self, f, status, answer):
        data = answer_bytes(answer)
        length = len(data) + 100 if f.get("truncate") else f.get("content_length", len(data))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            if "drip_ms" in f:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(f["drip_ms"] / 1000.0)
            elif f.get("truncate"):
                self.wfile.write(data[: len(data) // 2])
            else:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
        if f.get("truncate") or "content_length" in f:
            self.drop()

    # ---- the API --------------------------------------------------------------------------

    def api(self, method, path, query, body, entry):
        """Returns (http status, envelope, extra headers); acts (creates tasks) as the real
        service would. The "envelope" is bytes for an answer that is none (the gateway's
        429, rate_limit_form "gateway"); every sending path takes either."""
        routes = {
            ("POST", "/api/v1/access_token"): self.access_token,
            ("POST", "/api/v1/offline/download"): lambda b, q, e: self.create(b, e, oss=False),
            ("GET", "/api/v1/offline/download/process"): lambda b, q, e: self.progress(q, False),
            ("POST", "/api/v1/oss/offline/download"): lambda b, q, e: self.create(b, e, oss=True),
            ("GET", "/api/v1/oss/offline/download/process"): lambda b, q, e: self.progress(q, True),
        }
        route = routes.get((method, path))
        if route is None:
            return 404, envelope(404, f"no route {method} {path}"), None
        if self.headers.get("Platform") != PLATFORM:
            return 200, envelope(401, "Platform header must be open_platform"), None
        if path != "/api/v1/access_token":
            problem = self.check_token()
            if problem:
                return 200, envelope(401, problem), None
            kind = "progress" if path.endswith("/process") else "create"
            if not self.within_rate(kind):
                if STATE.rate_limit_form == "gateway":
                    # Kong's rate-limiting plugin: its own body, no envelope, and its headers.
                    return 429, b'{"message":"API rate limit exceeded"}', {
                        "X-RateLimit-Limit-Second": STATE.rate_limits.get(kind),
                        "X-RateLimit-Remaining-Second": 0,
                        "RateLimit-Reset": 1,
                        "Retry-After": 1,
                    }
                return 200, envelope(429, "too many requests"), None
        return 200, route(body, query, entry), None

    def within_rate(self, kind):
        """Whether a call of this kind is within the enforced rate (counted if so, refused and
        counted as refused if not). rate_window_mode "lenient" (the default) counts the calls
        let through in the last 0.98 s; "strict" counts every call of the kind that got here
        (past the Platform and token checks), refused ones too, by arrival time (see
        parse_request), and refuses one when more than the limit arrived in the trailing
        second (now - 1.000 s, now], itself included. Calls handled out of their arrival
        order count against each other too, so no 1 s window of arrivals ever holds more calls
        let through than the limit."""
        limit = STATE.rate_limits.get(kind) or 0
        if not limit:
            return True
        if STATE.rate_window_mode == "strict":
            now = getattr(self, "arrival", None) or time.monotonic()
            with STATE.lock:
                # Kept: everything after now - 1 s, including calls that arrived after this
                # one but were handled first.
                seen = [t for t in STATE.arrivals.get(kind, []) if t > now - 1.0]
                seen.append(now)
                STATE.arrivals[kind] = seen
                if len(seen) > limit:
                    self.count_rate_refusal(kind)
                    return False
            return True
        now = time.monotonic()
        with STATE.lock:
            # The window is a second less 20 ms: what reaches this handler has been through
            # the network stack and a thread switch, which bunch calls sent evenly.
            recent = [t for t in STATE.recent.get(kind, []) if t > now - 0.98]
            if len(recent) >= limit:
                STATE.recent[kind] = recent
                self.count_rate_refusal(kind)
                return False
            recent.append(now)
            STATE.recent[kind] = recent
        return True

    @staticmethod
    def count_rate_refusal(kind):
        """Counts a call refused for its rate (STATE.lock held)."""
        STATE.refused["rate"][kind] = STATE.refused["rate"].get(kind, 0) + 1
        STATE.stats["rate_refused"][kind] = STATE.stats["rate_refused"].get(kind, 0) + 1

    def check_token(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return "access_token is missing"
        tok = auth[len("Bearer "):]
        with STATE.lock:
            if tok not in STATE.tokens:
                if tok in STATE.evicted:  # pushed out by later logins of its client
                    STATE.stats["evicted_uses"] += 1
                    return "tokens number has exceeded the limit"
                return "invalid access_token"
            exp = STATE.tokens[tok]
        if exp is not None and exp < time.time():
            return "access_token expired"
        return None

    def json_body(self, body):
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            return None, envelope(400, "Content-Type must be application/json")
        try:
            obj = json.loads(body or b"null")
        except ValueError:
            return None, envelope(400, "request body is not JSON")
        if not isinstance(obj, dict):
            return None, envelope(400, "request body must be a JSON object")
        return obj, None

    def access_token(self, body, query, entry):
        obj, err = self.json_body(body)
        if err:
            return err
        cid, secret = obj.get("clientID"), obj.get("clientSecret")
        if not cid or STATE.clients.get(cid) != secret:
            return envelope(401, "invalid clientID or clientSecret")
        return fetch_token(cid)

    def create(self, body, entry, oss):
        with STATE.lock:
            if STATE.ban:  # the account-level penalty: nothing is created, whatever was asked
                STATE.stats["ban_refused"] += 1
                return envelope(1, "internal error")
        obj, err = self.json_body(body)
        if err:
            return err
        allowed = {"url", "fileName", "callBackUrl"} | ({"businessDirID", "type"} if oss else {"dirID"})
        unknown = set(obj) - allowed
        if unknown:
            return envelope(400, f"unknown parameter {sorted(unknown)[0]}")
        if not valid_http_url(obj.get("url")):
            return envelope(400, "url must be an http or https URL")
        if "callBackUrl" in obj and not valid_http_url(obj["callBackUrl"]):
            return envelope(400, "callBackUrl must be an http or https URL")
        if "fileName" in obj and (not isinstance(obj["fileName"], str) or not obj["fileName"]):
            return envelope(400, "fileName must be a non-empty string")
        if oss:
            if obj.get("type") != 1:
                return envelope(400, "type must be 1")
            if "businessDirID" in obj and not isinstance(obj["businessDirID"], str):
                return envelope(400, "businessDirID must be a string")
            name = obj.get("fileName") or urllib.parse.urlsplit(obj["url"]).path
            if "." not in name or name.rsplit(".", 1)[1].lower() not in IMAGE_EXTS:
                return envelope(400, "only images can be downloaded to image hosting")
        elif "dirID" in obj:
            d = obj["dirID"]
            if not isinstance(d, int) or isinstance(d, bool) or d < 0:
                return envelope(400, "dirID must be a number")
            if d == 0:
                return envelope(400, "the root folder (dirID 0) is not supported")
        real = obj["url"].startswith(STATE.base + "/files/")
        if STATE.max_running:
            with STATE.lock:
                running = sum(1 for t in STATE.tasks.values() if t.tick() or t.status in (0, 3))
                if running >= STATE.max_running:
                    STATE.refused["running"] += 1
                    STATE.stats["running_refused"] += 1
                    # The service's answer: a code it does not document, and this message.
                    return envelope(2, "同时下载的任务超出最大限制，不能下载")
        with STATE.lock:
            task = Task(next(STATE.next_task), obj, oss, None if real else STATE.task_seconds)
            STATE.tasks[task.id] = task
            STATE.stats["creates"] += 1
            if STATE.ban_after_creates:
                now = time.monotonic()
                STATE.create_times = [t for t in STATE.create_times if t > now - 10.0] + [now]
                if len(STATE.create_times) >= STATE.ban_after_creates:
                    STATE.ban = True  # this create stands; the next ones are refused
        entry["task"] = task.id
        if real or task.callback:
            threading.Thread(target=run_task, args=(STATE, task), daemon=True).start()
        return envelope(0, "ok", {"taskID": task.id})

    def progress(self, query, oss):
        try:
            tid = int(query.get("taskID", [""])[0])
        except ValueError:
            return envelope(400, "taskID must be a number")
        with STATE.lock:
            task = STATE.tasks.get(tid)
        if task is None or task.oss != oss:
            return envelope(5066, "task does not exist")
        task.tick()
        process = int(task.process) if oss else task.process
        return envelope(0, "ok", {"process": process, "status": task.status})

    # ---- the file route -------------------------------------------------------------------

    def file_route(self, path, query):
        """GET /files/<name>?size=N[&rate=B]: N bytes at B bytes/s; names starting with
        "missing" answer 404."""
        if path.startswith("/files/missing"):
            return self.send_raw(404, b"not found", content_type="text/plain")
        size = int(query.get("size", ["65536"])[0])
        rate = int(query.get("rate", [str(STATE.rate)])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = max(1, min(16384, rate // 10))
        sent = 0
        try:
            while sent < size:
                n = min(chunk, size - sent)
                self.wfile.write(b"\x5a" * n)
                self.wfile.flush()
                sent += n
                time.sleep(n / rate)
        except OSError:
            pass
        self.close_connection = True

    # ---- control --------------------------------------------------------------------------

    # Values the configuration keys that choose a behaviour accept (the first is the default).
    CHOICES = {"token_limit_mode": ("refuse", "evict"),
               "rate_window_mode": ("lenient", "strict"),
               "rate_limit_form": ("envelope", "gateway")}

    def control(self, method, path, body):
        """The control routes.

        GET /__emu/refused   {"rate": {kind: n}, "running": n}, since the start (not reset).
        GET /__emu/stats     counters since the start or the last POST /__emu/reset:
            token_fetches (POST /api/v1/access_token answered code 0), token_fetch_refusals
            (refused for the token limit), evicted_uses (API calls refused because their
            token was evicted), creates (tasks created), rate_refused {kind: n},
            running_refused, ban_refused (creates refused by `ban`), external_logins and
            external_login_refusals (POST /__emu/login); also `ban`, its current value.
        POST /__emu/login    {"clientID": ID[, "clientSecret": S]}: another program's login,
            a token fetch for that client exactly as the API does (same limit, same
            eviction); answers the envelope. Not logged as a request, and counted as
            external_logins / external_login_refusals, not as token_fetches.
        POST /__emu/reset    clears the request log, the faults, the callbacks and the stats
            (not the tasks, the tokens, the configuration nor the rate windows).
        POST /__emu/config   keys, each optional:
            tokens [T...]       add tokens that never expire (no client: never evicted)
            revoke [T...]       remove tokens (then "invalid access_token")
            evict_tokens [T...] mark tokens evicted now (another program's logins pushed
                                them out): then 401 "tokens number has exceeded the limit"
            token_ttl, max_tokens (3), rate, idle_close_ms, task_seconds, clock_skew_s,
            expiry_format, send_date, rate_limits {kind: per second}, max_running
            token_limit_mode    "refuse" | "evict"      (see fetch_token)
            rate_window_mode    "lenient" | "strict"    (see within_rate)
            rate_limit_form     "envelope" | "gateway": over a rate, HTTP 200 envelope 429
                                "too many requests", or the gateway's HTTP 429 with body
                                {"message":"API rate limit exceeded"} and headers
                                X-RateLimit-Limit-Second (the limit),
                                X-RateLimit-Remaining-Second 0, RateLimit-Reset 1,
                                Retry-After 1
            ban                 true: every create (both endpoints) answers envelope 1
                                "internal error" and creates nothing; false lifts it
            ban_after_creates   N (0: off): `ban` turns itself on once N creates have
                                succeeded within 10 s (counted from when this or `ban` is
                                set)
        An unknown choice answers 400 and changes nothing."""
        try:
            obj = json.loads(body) if body else None
        except ValueError:
            return self.send_json({"error": "control body is not JSON"}, 400)
        if path == "/__emu/login" and method == "POST":
            cid = obj.get("clientID") if isinstance(obj, dict) else None
            known = STATE.clients.get(cid) if isinstance(cid, str) else None
            if known is None or obj.get("clientSecret", known) != known:
                return self.send_json(envelope(401, "invalid clientID or clientSecret"))
            return self.send_json(fetch_token(cid, external=True))
        with STATE.lock:
            if path == "/__emu/faults" and method == "POST":
                STATE.faults.extend(obj if isinstance(obj, list) else [obj])
                return self.send_json({"faults": len(STATE.faults)})
            if path == "/__emu/requests":
                return self.send_json(STATE.requests)
            if path == "/__emu/tasks":
                return self.send_json({"count": len(STATE.tasks),
                                       "tasks": [t.view() for t in STATE.tasks.values()]})
            if path == "/__emu/callbacks":
                return self.send_json(STATE.callbacks)
            if path == "/__emu/refused":
                return self.send_json(STATE.refused)
            if path == "/__emu/stats":
                return self.send_json(dict(STATE.stats, ban=STATE.ban))
            if path == "/__emu/config" and method == "POST":
                for key, allowed in self.CHOICES.items():
                    if key in obj and obj[key] not in allowed:
                        return self.send_json({"error": f"{key} must be one of {list(allowed)}"},
                                              400)
                for t in obj.get("tokens", []):
                    STATE.tokens[t] = None
                    STATE.evicted.discard(t)
                for t in obj.get("revoke", []):
                    STATE.tokens.pop(t, None)
                for t in obj.get("evict_tokens", []):
                    STATE.tokens.pop(t, None)
                    STATE.evicted.add(t)
                for key in ("token_ttl", "max_tokens", "rate", "idle_close_ms", "task_seconds",
                            "clock_skew_s", "expiry_format", "send_date", "rate_limits",
                            "max_running", "token_limit_mode", "rate_window_mode",
                            "rate_limit_form", "ban", "ban_after_creates"):
                    if key in obj:
                        setattr(STATE, key, obj[key])
                if "ban" in obj or "ban_after_creates" in obj:
                    STATE.create_times = []  # the 10 s count starts again
                return self.send_json({"ok": True})
            if path == "/__emu/reset" and method == "POST":
                STATE.requests.clear()
                STATE.faults.clear()
                STATE.callbacks.clear()
                STATE.stats = new_stats()
                return self.send_json({"ok": True})
        if path == "/__emu/shutdown" and method == "POST":
            self.send_json({"ok": True})
            threading.Thread(target=SERVER.shutdown, daemon=True).start()
            return None
        return self.send_json({"error": f"no control route {method} {path}"}, 404)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # Clients that refuse a test certificate or drop connections are expected here; any
        # other exception is an emulator bug and is printed.
        import ssl
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


def main():
    global STATE, SERVER
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", action="append", default=[])
    p.add_argument("--client", action="append", default=[])
    p.add_argument("--rate", type=int, default=256 * 1024, help="file route bytes per second")
    p.add_argument("--max-seconds", type=float, default=900)
    p.add_argument("--watch-stdin", action="store_true")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (and --tls-key)")
    p.add_argument("--tls-key")
    p.add_argument("--tls12-only", action="store_true", help="with --tls-cert: offer TLS 1.2 only")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:ADDR",
                   help="as a proxy, reach HOST at ADDR (a loopback address): test names "
                        "without /etc/hosts or DNS")
    args = p.parse_args()
    if not args.token:
        args.token = ["test-token"]
    if not args.client:
        args.client = ["test-client:test-secret"]
    STATE = State(args)
    SERVER = Server((args.host, args.port), Handler)
    port = SERVER.server_address[1]
    STATE.base = f"http://127.0.0.1:{port}"
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls12_only:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        SERVER.socket = ctx.wrap_socket(SERVER.socket, server_side=True)
        STATE.base = f"https://127.0.0.1:{port}"
    print(f"PAN_EMULATOR_URL={STATE.base}", flush=True)
    threading.Timer(args.max_seconds, SERVER.shutdown).start()
    if args.watch_stdin:
        def watch():
            sys.stdin.read()
            SERVER.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    SERVER.serve_forever(poll_interval=0.2)
    SERVER.server_close()
    import os
    os._exit(0)


STATE = None
SERVER = None

if __name__ == "__main__":
    main()
