"""The same create calls from Python: the pan_offline module (ctypes over the library) against
httpx.Client and requests.Session, as a user of the other 123pan SDKs would write them: one
client per thread (kept-alive connections), the same headers and body, the answer parsed with
the json module and data.taskID checked. The clock starts after the imports and covers the
clients' creation and the calls. TLS 1.3 suites: the module uses TLS_AES_128_GCM_SHA256 (as
libcurl is told to in curl_bench), httpx and requests OpenSSL's first, TLS_AES_256_GCM_SHA384
(Python's ssl module cannot set TLS 1.3 suites; the difference measured with libcurl is 0.5 %
of a call's instructions).

    python py_bench.py pan|httpx|requests THREADS CALLS_PER_THREAD

$PAN_API_BASE_URL is the server. For https, $BENCH_CA_FILE is the CA and $BENCH_RESOLVE
(HOST:PORT:ADDRESS) maps the host name to loopback: for pan_offline through its `resolve` key,
for httpx and requests by answering getaddrinfo for that name in this process only.
Prints one line as the C clients do."""

import json
import os
import socket
import sys
import threading
import time

BASE = os.environ["PAN_API_BASE_URL"]
CA = os.environ.get("BENCH_CA_FILE")
RESOLVE = os.environ.get("BENCH_RESOLVE")
TOKEN = "bench-token"
OPTS = {"url": "https://example.com/bench.mp4", "fileName": "bench.mp4", "dirID": 10023}
TASK_ID = 394756


def map_name_to_loopback():
    host, port, addr = RESOLVE.split(":")
    real = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):
        return real(addr if name == host else name, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo


def pan_worker(n, failures):
    import pan_offline
    config = {"baseUrl": BASE}
    if CA:
        config["caFile"] = CA
    if RESOLVE:
        config["resolve"] = [RESOLVE]
    with pan_offline.Client(token=TOKEN, **config) as client:
        for _ in range(n):
            if client.offline_download(**OPTS) != TASK_ID:
                failures.append(1)


def http_worker(make, n, failures):
    url = BASE + "/api/v1/offline/download"
    headers = {"Authorization": "Bearer " + TOKEN, "Platform": "open_platform",
               "Content-Type": "application/json"}
    body = json.dumps(OPTS)
    with make() as session:
        for _ in range(n):
            if make is httpx_client:
                r = session.post(url, content=body, headers=headers)
            else:  # verify per request: $REQUESTS_CA_BUNDLE would win over the session's
                r = session.post(url, data=body, headers=headers, verify=CA or True)
            answer = r.json()
            if r.status_code != 200 or answer.get("code") != 0 or answer["data"]["taskID"] != TASK_ID:
                failures.append(1)


def httpx_client():
    import httpx
    return httpx.Client(verify=CA or True, timeout=30)


def requests_session():
    import requests
    s = requests.Session()
    s.verify = CA or True
    return s


def main():
    name, threads, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if RESOLVE and name != "pan":
        map_name_to_loopback()
    failures = []
    make = {"httpx": httpx_client, "requests": requests_session}.get(name)
    # Imports before the clock starts: a call's cost, not a module's loading.
    __import__({"pan": "pan_offline"}.get(name, name))

    def target():
        try:
            if make is None:
                pan_worker(calls, failures)
            else:
                http_worker(make, calls, failures)
        except Exception as e:  # counted, and shown once
            if not failures:
                print(f"py-{name}: {e!r}", file=sys.stderr)
            failures.extend([1] * calls)
    workers = [threading.Thread(target=target) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    secs = time.perf_counter() - t0
    total = threads * calls
    print(f"py-{name} threads={threads} calls={total} failed={len(failures)} secs={secs:.4f} "
          f"calls_per_s={total / secs:.0f}")
    return 0 if not failures and total else 1


if __name__ == "__main__":
    sys.exit(main())
