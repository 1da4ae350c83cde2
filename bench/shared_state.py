#!/usr/bin/env python3
"""Figures bound by the service's limits, not by CPU, measured against the emulator
(tests/emulator/pan_emulator.py, started here on loopback):

1. N processes sharing a state (`sharedState`): N = 1, 4 and 8 OS processes (this script run
   again with --child), each with its own client (clientID/clientSecret, createQps 5,
   maxRetries 0), make 40 creates in all against an emulator that refuses the 6th create in
   any trailing second (strict window, refused calls counted). From the emulator's request
   log and stats: the creates' span at the server (first arrival to last), creates per second
   ((creates - 1) / span), token fetches, refusals and the most creates in any 1 s window.
   With a directory as the state (a fresh one per N), and with Redis when redis-server is on
   PATH (one on a free loopback port, emptied between runs).
2. A batch (pan_offline_download_batch) of 100 items against a running cap of 5 tasks of 1 s
   each: its wall time against the ideal ((items - 1) // cap) * task_seconds, and how many
   creates the emulator refused for the cap.

Each measure has an emulator of its own (fresh tokens, windows and logs). The library is
$PAN_OFFLINE_LIB, else target/release/libpan_offline.so, else target/debug/libpan_offline.so.
`--quick` (CI's smoke run): 4 processes only, 12 creates, a batch of 20. Exits non-zero when a
create fails or a figure is absurd (a refusal, a second token fetch, a window over the limit,
a batch faster than the ideal), so that the smoke run catches breakage.
Python 3 standard library only.
"""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EMULATOR = os.path.join(ROOT, "tests", "emulator", "pan_emulator.py")
QUICK = "--quick" in sys.argv
LIMIT = 5  # creates per second the emulator allows
PROCESSES = (4,) if QUICK else (1, 4, 8)
CREATES = 12 if QUICK else 40  # in all, shared among the processes
CAP = 5  # running tasks the emulator allows
TASK_SECONDS = 1.0
ITEMS = 20 if QUICK else 100
CREATE_PATH = "/api/v1/offline/download"
OPTS = b'{"url":"https://example.com/x.mp4"}'
# The control routes are on loopback: never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def library_path():
    env = os.environ.get("PAN_OFFLINE_LIB")
    if env:
        return env
    release = os.path.join(ROOT, "target", "release", "libpan_offline.so")
    return release if os.path.exists(release) else os.path.join(ROOT, "target", "debug",
                                                                 "libpan_offline.so")


def load():
    lib = ctypes.CDLL(library_path())
    lib.pan_client_new.restype = ctypes.c_void_p
    lib.pan_client_new.argtypes = [ctypes.c_char_p]
    lib.pan_client_free.restype = None
    lib.pan_client_free.argtypes = [ctypes.c_void_p]
    lib.pan_client_offline_download.restype = ctypes.c_int32
    lib.pan_client_offline_download.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]
    lib.pan_offline_download_batch.restype = ctypes.c_int32
    lib.pan_offline_download_batch.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.pan_string_free.restype = None
    lib.pan_string_free.argtypes = [ctypes.c_void_p]
    lib.pan_last_error_message.restype = ctypes.c_char_p
    lib.pan_last_error_message.argtypes = []
    return lib


def new_client(lib, config):
    client = lib.pan_client_new(json.dumps(config).encode())
    if not client:
        raise SystemExit(f"pan_client_new failed: {lib.pan_last_error_message().decode()}")
    return client


# ---- the emulator and Redis ------------------------------------------------------------------

class Emulator:
    """An emulator of this run: stops when its standard input closes (or after 300 s)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--watch-stdin", "--max-seconds", "300",
             "--client", "test-client:test-secret"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PAN_EMULATOR_URL="):
            self.stop()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.url = line.split("=", 1)[1]

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with OPENER.open(req, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit("redis-server did not start")
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def flush(self):
        """Empties it (FLUSHALL): each run starts without a stored token or schedule."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            if not s.recv(64).startswith(b"+OK"):
                raise SystemExit("redis FLUSHALL failed")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# ---- part 1: N processes sharing a state ----------------------------------------------------

def child(config_json, creates):
    """A process of part 1: makes its client, says READY, waits for GO (a line on stdin),
    makes `creates` creates and prints their statuses as JSON."""
    lib = load()
    client = new_client(lib, json.loads(config_json))
    print("READY", flush=True)
    sys.stdin.readline()
    statuses, errors = [], []
    task_id = ctypes.c_int64(0)
    for _ in range(int(creates)):
        rc = lib.pan_client_offline_download(client, None, OPTS, ctypes.byref(task_id))
        statuses.append(rc)
        if rc != 0:
            errors.append(lib.pan_last_error_message().decode("utf-8", "replace"))
    lib.pan_client_free(client)
    print("RESULT " + json.dumps({"statuses": statuses, "errors": errors[:3]}), flush=True)


def most_in_a_second(times):
    """The most arrivals in any window (t - 1 s, t], as the emulator's strict window counts."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def shared_run(n, state, problems, label):
    with Emulator() as emu:
        emu.control("POST", "/__emu/config",
                    {"rate_limits": {"create": LIMIT}, "rate_window_mode": "strict"})
        config = json.dumps({"baseUrl": emu.url, "clientID": "test-client",
                             "clientSecret": "test-secret", "sharedState": state,
                             "createQps": LIMIT, "maxRetries": 0})
        per = CREATES // n
        kids = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", config,
                                  str(per)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(n)]
        for k in kids:
            if k.stdout.readline().strip() != "READY":
                problems.append(f"{label}: a child did not start")
        for k in kids:  # all of them at once
            k.stdin.write("GO\n")
            k.stdin.flush()
        failed, errors = 0, []
        for k in kids:
            try:
                out, _ = k.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                k.kill()
                out, _ = k.communicate()
            line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
            if k.returncode != 0 or line is None:
                failed += per
                errors.append(f"child exited {k.returncode}")
                continue
            res = json.loads(line[len("RESULT "):])
            failed += sum(1 for s in res["statuses"] if s != 0)
            errors += res["errors"]
        stats = emu.control("GET", "/__emu/stats")
        log = emu.control("GET", "/__emu/requests")
    arrivals = sorted(e["mono"] for e in log if e["path"] == CREATE_PATH and e["method"] == "POST")
    total = per * n
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    rate = (len(arrivals) - 1) / span if span > 0 else float("inf")
    fetches = stats["token_fetches"]
    refused = stats["rate_refused"].get("create", 0)
    most = most_in_a_second(arrivals)
    ceiling = LIMIT / 1.1
    print(f"{label}, {n} process{'es' if n > 1 else ''}: {total} creates at {rate:.2f}/s against "
          f"a limit of {LIMIT}/s (ceiling {LIMIT}/s with the library's 10 % margin: "
          f"{ceiling:.2f}/s), {fetches} token fetch{'es' if fetches != 1 else ''}, "
          f"{refused} refused, at most {most} in any second "
          f"(span {span:.2f} s from the first create's arrival to the last's)", flush=True)
    if failed:
        problems.append(f"{label}, {n} processes: {failed} creates failed: {errors[:3]}")
    if len(arrivals) != total:
        problems.append(f"{label}, {n} processes: the emulator saw {len(arrivals)} creates, "
                        f"not {total}")
    if refused:
        problems.append(f"{label}, {n} processes: {refused} creates refused for the rate")
    if fetches != 1:
        problems.append(f"{label}, {n} processes: {fetches} token fetches, not 1")
    if most > LIMIT or rate > LIMIT:
        problems.append(f"{label}, {n} processes: over the limit ({rate:.2f}/s, {most} in a second)")
    if rate < ceiling / 2:
        problems.append(f"{label}, {n} processes: {rate:.2f}/s, under half the ceiling")


def shared_state(problems):
    for n in PROCESSES:
        with tempfile.TemporaryDirectory(prefix="pan-bench-state-") as d:
            shared_run(n, d, problems, "shared state (directory)")
    if not shutil.which("redis-server"):
        print("shared state (Redis): skipped, no redis-server on PATH", flush=True)
        return
    redis = Redis()
    try:
        for n in PROCESSES:
            redis.flush()
            shared_run(n, redis.url, problems, "shared state (Redis)")
    finally:
        redis.stop()


# ---- part 2: a batch against a running cap --------------------------------------------------

def batch(problems):
    lib = load()
    with Emulator() as emu:
        emu.control("POST", "/__emu/config", {"max_running": CAP, "task_seconds": TASK_SECONDS})
        client = new_client(lib, {"baseUrl": emu.url, "pollIntervalMs": 200})
        items = json.dumps([{"url": f"https://example.com/batch-{i}.mp4"} for i in range(ITEMS)])
        out = ctypes.c_void_p(None)
        start = time.monotonic()
        rc = lib.pan_offline_download_batch(client, b"test-token", items.encode(), None, None,
                                            None, ctypes.byref(out))
        wall = time.monotonic() - start
        err = lib.pan_last_error_message().decode("utf-8", "replace")
        results = []
        if rc == 0 and out.value:
            results = json.loads(ctypes.string_at(out.value).decode())
            lib.pan_string_free(out.value)
        lib.pan_client_free(client)
        stats = emu.control("GET", "/__emu/stats")
    ideal = ((ITEMS - 1) // CAP) * TASK_SECONDS
    refused = stats["running_refused"]
    print(f"batch of {ITEMS} items, running cap {CAP}, {TASK_SECONDS:g} s tasks: {wall:.1f} s "
          f"(ideal {ideal:.1f} s), {refused} refused", flush=True)
    if rc != 0:
        problems.append(f"batch: status {rc}: {err}")
        return
    bad = [r for r in results if r.get("status") != 0]
    if bad or len(results) != ITEMS:
        problems.append(f"batch: {len(bad)} of {len(results)} items failed: {bad[:3]}")
    if stats["creates"] != ITEMS:
        problems.append(f"batch: the emulator made {stats['creates']} tasks, not {ITEMS}")
    if wall < ideal:
        problems.append(f"batch: {wall:.1f} s, faster than the ideal {ideal:.1f} s (cap not held?)")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3])
    if not os.path.exists(library_path()):
        raise SystemExit(f"no library at {library_path()} (set PAN_OFFLINE_LIB)")
    problems = []
    started = time.monotonic()
    print(flush=True)
    print(f"limits of the service ({os.path.relpath(library_path(), ROOT)}, emulator, loopback):",
          flush=True)
    shared_state(problems)
    batch(problems)
    print(f"({time.monotonic() - started:.0f} s)", flush=True)
    if problems:
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
