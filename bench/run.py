#!/usr/bin/env python3
"""The benchmark: pan-offline against what its users would use instead, in one run.

Started by bench/run.sh (which builds everything first). Starts nginx on loopback answering the
create endpoint with the documented example response: over plain HTTP, over TLS (a test CA and
a server certificate for the host name pan.bench, made for this run and mapped to loopback in
the clients), and over TLS with a connection closed after every answer (for session
resumption). Measures nginx's own ceiling with wrk, then, alternating the two clients run by
run:

- calls/s of pan_bench (the library) and curl_bench (libcurl's easy interface, OpenSSL, one
  reused handle per thread, told to use the TLS 1.3 suite rustls picks,
  TLS_AES_128_GCM_SHA256) at 1, 2, 4 and 8 threads, plain and TLS; over plain HTTP also
  floor_bench, the floor (the library's request bytes, made once, written to a raw socket):
  what is left of a call when the client does nothing, so how much room a target leaves;
- at 1 thread over plain HTTP, each client's call split into its own CPU (user), the kernel's
  (system) and the rest (waiting for nginx), from getrusage of the runs above; and the three
  clients again with nginx's worker and the client on one CPU (no cross-CPU wakeup);
- the first call of a fresh process (exec to first task ID, median of 20 processes per client,
  the clients alternating), plain and TLS;
- a second TLS connection in one process (session resumption), confirmed by nginx's
  $ssl_session_reused;
- user-space instructions per call (callgrind), heap allocations per call (DHAT) and system
  calls per call (strace), kept-alive, plain and TLS; instructions and allocations also
  against an answer carrying 11 header fields, as a gateway's would (GATEWAY_FIELDS);
- RSS after 10,000 and 100,000 calls, stripped sizes;
- from Python: the pan_offline module against httpx.Client and requests.Session, 1 and 4
  threads, plain and TLS.

Prints the machine, every run and the medians, and writes bench/chart.svg. `--quick` runs a
short smoke version (for CI: it checks that all of it works; its figures mean little).
"""
import html
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "target", "bench")
DOC_RESPONSE = ('{"code":0,"message":"ok","data":{"taskID":394756},'
                '"x-traceID":"2eabaf50-f64d-4603-a62d-b49cb4661e8e_kong-db-5898fdd8c6-t5pvc"}')
# What a gateway adds to an answer: the documented trace ID ends in `_kong-db-…`, so the
# service likely sits behind Kong, which adds its own fields (Kong's defaults) beside common
# ones. Used for one measure only: the cost per call of an answer with 11 header fields
# instead of nginx's 5, because reading each field costs the clients something.
GATEWAY_FIELDS = (("X-Kong-Upstream-Latency", "3"), ("X-Kong-Proxy-Latency", "1"),
                  ("Via", "kong/2.8.1"), ("X-Request-Id", "2eabaf50f64d4603a62db49cb4661e8e"),
                  ("Access-Control-Allow-Origin", "*"),
                  ("Strict-Transport-Security", "max-age=31536000"))
QUICK = "--quick" in sys.argv
THREADS = [1, 2, 4, 8]
ROUNDS = 1 if QUICK else 7
TOTAL = 2000 if QUICK else 20000
SOAK = 5000 if QUICK else 100000
FIRST = 3 if QUICK else 20
PY_ROUNDS = 1 if QUICK else 3
PY_TOTAL = 400 if QUICK else 4000
HOST = "pan.bench"  # the TLS server's name, mapped to 127.0.0.1 inside the clients only
CLIENTS = ("pan", "curl")
FLOOR = "floor"  # floor_bench: plain HTTP throughput only


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def machine(started):
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.machine())
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    curl = sh("curl-config", "--version").strip() if shutil.which("curl-config") else "libcurl"
    ssl = sh("openssl", "version").strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, load average "
            f"{load} at the end; {os.cpu_count()} CPUs "
            f"({model}); Linux {platform.release()}; {nginx.replace('nginx version: ', '')}; "
            f"{curl} with {ssl}; Python {platform.python_version()}")


def make_pki(tmp):
    """A CA and a server certificate for HOST, made for this run (P-256 keys)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca, ca_key = os.path.join(tmp, "ca.pem"), os.path.join(tmp, "ca.key")
    cert, key = os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key")
    csr, ext = os.path.join(tmp, "server.csr"), os.path.join(tmp, "ext.cnf")
    sh("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
       "-subj", "/CN=pan-bench test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign")
    sh("openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={HOST}")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    sh("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
       "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


def start_nginx(ports, tmp, cert, key):
    location = f"""
        location = /api/v1/offline/download {{
            default_type application/json;
            return 200 '{DOC_RESPONSE}';
        }}"""
    gateway = location.replace("default_type application/json;", "default_type application/json; " + " ".join(
        f"add_header {name} {value} always;" for name, value in GATEWAY_FIELDS))
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;"
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {tmp};
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    log_format resumed '$ssl_protocol $ssl_session_reused';
    server {{ listen 127.0.0.1:{ports['plain']}; {location} }}
    server {{ listen 127.0.0.1:{ports['tls']} ssl; {tls} {location} }}
    server {{ listen 127.0.0.1:{ports['gateway']}; {gateway} }}
    server {{
        listen 127.0.0.1:{ports['close']} ssl; {tls}
        keepalive_timeout 0;  # every answer closes its connection: the next one is new
        access_log {tmp}/resumed.log resumed;
        {location}
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp])
    for port in ports.values():
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            proc.terminate()
            raise SystemExit("nginx did not start")
    return proc


def envs(ports, ca):
    """The environment of each mode, for the C clients and the Python one alike."""
    out = {}
    for mode in ("plain", "tls", "close", "gateway"):
        if mode in ("plain", "gateway"):
            base = f"http://127.0.0.1:{ports[mode]}"
            extra = {}
            config = {"baseUrl": base}
        else:
            base = f"https://{HOST}:{ports[mode]}"
            resolve = f"{HOST}:{ports[mode]}:127.0.0.1"
            extra = {"BENCH_CA_FILE": ca, "BENCH_RESOLVE": resolve}
            config = {"baseUrl": base, "caFile": ca, "resolve": [resolve]}
        out[mode] = dict(os.environ, PAN_API_BASE_URL=base, PAN_BENCH_CONFIG=json.dumps(config),
                         **extra)
    return out


CPU = {"user": 0.0, "system": 0.0}  # CPU time of the last run() (getrusage of children)


def run(cmd, env, check=True):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        if check:
            raise SystemExit(f"{cmd} timed out")
        return ""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["user"], CPU["system"] = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    if out.returncode != 0 and check:
        raise SystemExit(f"{cmd} failed: {out.stdout}{out.stderr}")
    return out.stdout


def field(line, name):
    return float(re.search(rf"{name}=([0-9.]+)", line).group(1))


def wrk_ceiling(base):
    lua = os.path.join(OUT, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = \'{"url":"https://example.com/bench.mp4","fileName":"bench.mp4","dirID":10023}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Authorization"] = "Bearer bench-token"\n'
                'wrk.headers["Platform"] = "open_platform"\n')
    out = subprocess.run(["wrk", "-t2", "-c8", "-d" + ("1s" if QUICK else "4s"), "-s", lua,
                          base + "/api/v1/offline/download"], capture_output=True, text=True,
                         timeout=60).stdout
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))


def alternating(items, round_no):
    """The clients in this round's order: rotated by one each round, so that each takes each
    place in turn (with two clients: swapped every round)."""
    items = list(items)
    k = round_no % len(items)
    return items[k:] + items[:k]


def throughput(progs, env, label):
    """calls/s of each client at each thread count: ROUNDS runs, the clients alternating (and
    their order swapped every round). Also, at 1 thread, the µs per call of each run: whole
    (1 / calls/s), user and system CPU (the process's start is included: a few ms over
    TOTAL calls)."""
    runs = {name: {t: [] for t in THREADS} for name in progs}
    split = {name: {"call": [], "user": [], "system": []} for name in progs}
    for r in range(ROUNDS):
        for t in THREADS:
            for name, prog in alternating(progs.items(), r):
                for _attempt in range(3):
                    line = run([prog, str(t), str(TOTAL // t)], env, check=False)
                    if line and field(line, "failed") == 0:
                        break
                    # Seen here once, with libcurl: a thread whose calls all failed.
                    print(f"warning: {label} {name} at {t} threads had failures, run again: {line.strip()}")
                else:
                    raise SystemExit(f"{label}: {name} failed three times at {t} threads")
                runs[name][t].append(field(line, "calls_per_s"))
                if t == 1:
                    split[name]["call"].append(1e6 / field(line, "calls_per_s"))
                    for k in ("user", "system"):
                        split[name][k].append(CPU[k] * 1e6 / TOTAL)
    return runs, split


def pinned(progs, env, nginx_pid):
    """calls/s at 1 thread with nginx's worker and the client on one CPU (ROUNDS runs,
    alternating): no wakeup crosses CPUs, which shows what the unpinned runs spend on it.
    The worker's own CPU set is given back afterwards."""
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(nginx_pid)], capture_output=True,
                                              text=True).stdout.split()]
    cpus = os.sched_getaffinity(0)
    cpu = min(cpus)
    for w in workers:
        os.sched_setaffinity(w, {cpu})
    runs = {name: [] for name in progs}
    try:
        for r in range(ROUNDS):
            for name, prog in alternating(progs.items(), r):
                line = run(["taskset", "-c", str(cpu), prog, "1", str(TOTAL)], env)
                runs[name].append(field(line, "calls_per_s"))
    finally:
        for w in workers:
            os.sched_setaffinity(w, cpus)
    return runs


def first_calls(progs, env):
    """A fresh process's first call of each client, the clients alternating process by
    process: {name: (main() to task ID, exec to exit)}, medians of FIRST, in µs."""
    inproc = {n: [] for n in progs}
    wall = {n: [] for n in progs}
    for i in range(FIRST):
        for name, prog in alternating(progs.items(), i):
            t0 = time.perf_counter()
            line = run([prog, "--first"], env)
            wall[name].append((time.perf_counter() - t0) * 1e6)
            inproc[name].append(field(line, "first_call_us"))
    return {n: (statistics.median(inproc[n]), statistics.median(wall[n])) for n in progs}


def new_connections(progs, env, log):
    """Three calls, each on a new TLS connection, in 5 processes per client (alternating):
    the medians of the first call (a full handshake) and of the second and third (which can
    resume the first session), and the share of those later connections nginx saw resumed
    ($ssl_session_reused)."""
    firsts = {n: [] for n in progs}
    laters = {n: [] for n in progs}
    reused = {n: 0 for n in progs}
    for i in range(5):
        for name, prog in alternating(progs.items(), i):
            start = os.path.getsize(log) if os.path.exists(log) else 0
            line = run([prog, "--connections", "3"], env)
            firsts[name].append(field(line, "call1_us"))
            laters[name] += [field(line, "call2_us"), field(line, "call3_us")]
            time.sleep(0.05)  # nginx writes its log line after the answer
            with open(log) as f:
                f.seek(start)
                flags = [ln.split()[-1] for ln in f.read().splitlines()]
            reused[name] += sum(1 for x in flags[1:] if x == "r")
    return {n: (statistics.median(firsts[n]), statistics.median(laters[n]),
                reused[n] / len(laters[n])) for n in progs}


def per_call(tool_args, parse, prog, env):
    """A count per call: the difference of two runs of different lengths removes start-up.
    Counts, not times: they do not depend on what else runs, so they are not alternated."""
    counts = {}
    for n in ((200, 600) if QUICK else (1000, 3000)):
        out = subprocess.run([*tool_args, prog, "1", str(n)], env=env, capture_output=True,
                             text=True, timeout=900)
        counts[n] = parse(out)
    (a, ca), (b, cb) = sorted(counts.items())
    return (cb - ca) / (b - a)


def instructions(prog, env):
    """User-space instructions per call (callgrind): repeatable whatever else the machine does."""
    return per_call(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"],
                    lambda o: int(re.search(r"Collected : (\d+)", o.stderr).group(1)), prog, env)


def allocations(prog, env):
    """Heap allocations per call (DHAT's count of blocks)."""
    return per_call(["valgrind", "--tool=dhat", "--dhat-out-file=/dev/null"],
                    lambda o: int(re.search(r"Total:\s+[\d,]+ bytes in ([\d,]+) blocks",
                                            o.stderr).group(1).replace(",", "")), prog, env)


def syscalls(prog, env):
    """System calls per call, all threads (strace -c)."""
    def total(o):
        with open(os.path.join(OUT, "strace.txt")) as f:
            return int(re.search(r"^[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total$",
                                 f.read(), re.M).group(1))
    return per_call(["strace", "-f", "-c", "-o", os.path.join(OUT, "strace.txt")], total, prog, env)


def stripped_size(path):
    dst = os.path.join(OUT, os.path.basename(path) + ".stripped")
    shutil.copy(path, dst)
    subprocess.run(["strip", dst], check=True)
    return os.path.getsize(dst)


def shared_libs(binary):
    """The shared libraries the binary loads beyond the C runtime (libc, libm, the loader...),
    which libpan_offline.so also needs: what libcurl brings with it."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    runtime = re.compile(r"(libc|libm|libpthread|libdl|librt|libgcc_s|libresolv|ld-linux[^ ]*)\.so")
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m and not runtime.match(m.group(1)):
            libs[m.group(1)] = os.path.realpath(m.group(2))
    return libs


def python_side_by_side(env_of):
    """The pan_offline module against httpx and requests: PY_ROUNDS alternating runs."""
    py = os.path.join(ROOT, "target", "bench-venv", "bin", "python")
    script = os.path.join(HERE, "py_bench.py")
    names = ("pan", "httpx", "requests")
    runs = {}
    for mode in ("plain", "tls"):
        env = dict(env_of[mode], PYTHONPATH=os.path.join(ROOT, "python"),
                   PAN_OFFLINE_LIB=os.path.join(ROOT, "target", "release", "libpan_offline.so"))
        for t in (1, 4):
            cell = {n: [] for n in names}
            for r in range(PY_ROUNDS):
                for name in alternating(names, r):
                    line = run([py, script, name, str(t), str(PY_TOTAL // t)], env)
                    if field(line, "failed") != 0:
                        raise SystemExit(f"python {name} failed: {line}")
                    cell[name].append(field(line, "calls_per_s"))
            runs[(mode, t)] = cell
    return runs


def svg_chart(series, ceiling, path, where):
    """Grouped bars: calls/s per thread count for each (label, color, {threads: value})."""
    w, h, left, bottom, top = 720, 380, 70, 50, 56
    peak = max([ceiling] + [v for _, _, s in series for v in s.values()]) * 1.1
    group = (w - left - 20) / len(THREADS)
    bar = group / (len(series) + 1)
    y = lambda v: h - bottom - v / peak * (h - bottom - top)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w/2}" y="18" text-anchor="middle" font-size="14">create calls/s on loopback, plain HTTP and TLS (median of {ROUNDS} runs)</text>',
             f'<text x="{w/2}" y="{h-8}" text-anchor="middle" font-size="10" fill="#666">{html.escape(where)}</text>',
             f'<line x1="{left}" y1="{h-bottom}" x2="{w-10}" y2="{h-bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for i in range(5):
        v = peak * i / 4
        parts.append(f'<text x="{left-6}" y="{y(v)+4:.0f}" text-anchor="end">{v/1000:.0f}k</text>')
        parts.append(f'<line x1="{left}" y1="{y(v):.0f}" x2="{w-10}" y2="{y(v):.0f}" stroke="#ddd"/>')
    parts.append(f'<line x1="{left}" y1="{y(ceiling):.0f}" x2="{w-10}" y2="{y(ceiling):.0f}" stroke="#999" stroke-dasharray="4"/>')
    parts.append(f'<text x="{w-12}" y="{y(ceiling)-4:.0f}" text-anchor="end" fill="#666">nginx plain-HTTP ceiling (wrk) {ceiling/1000:.1f}k</text>')
    for k, (label, color, values) in enumerate(series):
        for i, t in enumerate(THREADS):
            x = left + i * group + (k + 0.5) * bar
            v = values[t]
            parts.append(f'<rect x="{x:.0f}" y="{y(v):.0f}" width="{bar-2:.0f}" height="{h-bottom-y(v):.0f}" fill="{color}"/>')
        lx = left + 10 + k * (w - left - 20) // len(series)  # the legend in one row
        parts.append(f'<rect x="{lx}" y="{top-22}" width="12" height="12" fill="{color}"/><text x="{lx+16}" y="{top-12}">{label}</text>')
    for i, t in enumerate(THREADS):
        parts.append(f'<text x="{left + (i + 0.5) * group:.0f}" y="{h-bottom+16}" text-anchor="middle">{t} thread{"s" if t > 1 else ""}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    started = time.time()
    tmp = tempfile.mkdtemp(prefix="pan-bench-")
    ports = {"plain": free_port(), "tls": free_port(), "close": free_port(), "gateway": free_port()}
    ca, cert, key = make_pki(tmp)
    nginx = start_nginx(ports, tmp, cert, key)
    env = envs(ports, ca)
    progs = {name: os.path.join(OUT, f"{name}_bench") for name in CLIENTS}
    r = {}
    try:
        r["ceiling"] = wrk_ceiling(env["plain"]["PAN_API_BASE_URL"])
        floor = dict(progs, **{FLOOR: os.path.join(OUT, f"{FLOOR}_bench")})
        for mode in ("plain", "tls"):
            r[mode], r["split", mode] = throughput(floor if mode == "plain" else progs, env[mode], mode)
        r["pinned"] = pinned(floor, env["plain"], nginx.pid)
        for mode in ("plain", "tls"):
            r["first", mode] = first_calls(progs, env[mode])
        r["resume"] = new_connections(progs, env["close"], os.path.join(tmp, "resumed.log"))
        for mode in ("plain", "tls"):
            r["instr", mode] = {n: instructions(p, env[mode]) for n, p in progs.items()}
            r["alloc", mode] = {n: allocations(p, env[mode]) for n, p in progs.items()}
            r["sys", mode] = {n: syscalls(p, env[mode]) for n, p in progs.items()}
        r["instr", "gateway"] = {n: instructions(p, env["gateway"]) for n, p in progs.items()}
        r["alloc", "gateway"] = {n: allocations(p, env["gateway"]) for n, p in progs.items()}
        r["soak"] = {n: (field(line, "rss_kib"), field(line, "peak_rss_kib"))
                     for n, p in progs.items() for line in [run([p, "1", str(SOAK)], env["plain"])]}
        r["small"] = {n: field(run([p, "1", str(SOAK // 10)], env["plain"]), "rss_kib")
                      for n, p in progs.items()}
        r["py"] = python_side_by_side(env)
        so = stripped_size(os.path.join(ROOT, "target", "release", "libpan_offline.so"))
        static_example = stripped_size(os.path.join(OUT, "offline_download_static"))
        curl_libs = {k: stripped_size(v) for k, v in shared_libs(progs["curl"]).items()}
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {mode: {n: {t: statistics.median(v) for t, v in s.items()} for n, s in r[mode].items()}
           for mode in ("plain", "tls")}
    print()
    where = machine(started)
    print(f"machine: {where}")
    print(f"server: nginx, 1 worker, on loopback, answering the documented example response; its "
          f"plain-HTTP ceiling by wrk (2 threads, 8 connections): {r['ceiling']:,.0f} req/s; TLS: "
          f"a P-256 certificate for {HOST} from a CA made for this run, TLS 1.3")
    print(f"{TOTAL} calls per run, {ROUNDS} runs per cell, the clients alternating; medians:")
    for mode, title in (("plain", "plain HTTP"), ("tls", "TLS (https)")):
        print()
        print(f"{title}:")
        print()
        if FLOOR in med[mode]:
            print("| threads | pan-offline calls/s | libcurl calls/s | pan / libcurl | floor calls/s | floor / libcurl |")
            print("|---:|---:|---:|---:|---:|---:|")
        else:
            print("| threads | pan-offline calls/s | libcurl calls/s | pan / libcurl |")
            print("|---:|---:|---:|---:|")
        for t in THREADS:
            p, c = med[mode]["pan"][t], med[mode]["curl"][t]
            floor_cells = (f" {med[mode][FLOOR][t]:,.0f} | {med[mode][FLOOR][t] / c:.2f} |"
                           if FLOOR in med[mode] else "")
            print(f"| {t} | {p:,.0f} | {c:,.0f} | {p / c:.2f} |{floor_cells}")
        print()
        print(f"every {title} run (calls/s):")
        for t in THREADS:
            print(f"  {t} thread(s): " + " | ".join(
                f"{'libcurl' if n == 'curl' else n} " + ", ".join(f"{v:,.0f}" for v in r[mode][n][t])
                for n in r[mode]))
    print()
    print("| 1 thread, plain HTTP, µs per call (medians of the runs above; user and kernel CPU by "
          "getrusage, which samples at the kernel's tick and includes the process's start; "
          "waiting: the rest) | pan-offline | libcurl | floor |")
    print("|---|---:|---:|---:|")
    sp = {n: {k: statistics.median(v) for k, v in s.items()} for n, s in r["split", "plain"].items()}
    for k, title in (("call", "whole call (1 / calls/s)"), ("user", "own CPU (user)"),
                     ("system", "kernel (system)")):
        print(f"| {title} | " + " | ".join(f"{sp[n][k]:.1f}" for n in ("pan", "curl", FLOOR)) + " |")
    print("| waiting (the rest) | " + " | ".join(
        f"{sp[n]['call'] - sp[n]['user'] - sp[n]['system']:.1f}" for n in ("pan", "curl", FLOOR)) + " |")
    print()
    pin = {n: statistics.median(v) for n, v in r["pinned"].items()}
    print("| 1 thread, plain HTTP, nginx's worker and the client on one CPU (taskset), calls/s | "
          "pan-offline | libcurl | floor |")
    print("|---|---:|---:|---:|")
    print(f"| median of {ROUNDS} runs, alternating | " + " | ".join(f"{pin[n]:,.0f}" for n in ("pan", "curl", FLOOR)) + " |")
    print("| ratio to libcurl | " + " | ".join(f"{pin[n] / pin['curl']:.2f}" for n in ("pan", "curl", FLOOR)) + " |")
    print("| every run | " + " | ".join(", ".join(f"{v:,.0f}" for v in r["pinned"][n]) for n in ("pan", "curl", FLOOR)) + " |")
    print()
    print("| measure | pan-offline | libcurl |")
    print("|---|---:|---:|")
    gw = f"plain HTTP, answer with {5 + len(GATEWAY_FIELDS)} header fields (a gateway's)"
    for mode, title in (("plain", "plain HTTP"), ("tls", "TLS"), ("gateway", gw)):
        print(f"| instructions per call, kept-alive {title} (callgrind) | {r['instr', mode]['pan']:,.0f} | {r['instr', mode]['curl']:,.0f} |")
    for mode, title in (("plain", "plain HTTP"), ("tls", "TLS"), ("gateway", gw)):
        print(f"| heap allocations per call, {title} (DHAT) | {r['alloc', mode]['pan']:.1f} | {r['alloc', mode]['curl']:.1f} |")
    for mode, title in (("plain", "plain HTTP"), ("tls", "TLS")):
        print(f"| system calls per call, {title} (strace -c) | {r['sys', mode]['pan']:.1f} | {r['sys', mode]['curl']:.1f} |")
    for mode, title in (("plain", "plain HTTP"), ("tls", "TLS")):
        f = r["first", mode]
        print(f"| first call of a process, {title}: main() to task ID (median of {FIRST}) | {f['pan'][0]:,.0f} µs | {f['curl'][0]:,.0f} µs |")
        print(f"| first call of a process, {title}: exec to exit (median of {FIRST}) | {f['pan'][1]:,.0f} µs | {f['curl'][1]:,.0f} µs |")
    res = r["resume"]
    print(f"| TLS call on a new connection: first / later (session resumed) | {res['pan'][0]:,.0f} / {res['pan'][1]:,.0f} µs | {res['curl'][0]:,.0f} / {res['curl'][1]:,.0f} µs |")
    print(f"| later connections nginx saw resumed ($ssl_session_reused) | {res['pan'][2]:.0%} | {res['curl'][2]:.0%} |")
    print(f"| RSS after {SOAK // 10:,} calls | {r['small']['pan']:,.0f} KiB | {r['small']['curl']:,.0f} KiB |")
    print(f"| RSS after {SOAK:,} calls | {r['soak']['pan'][0]:,.0f} KiB | {r['soak']['curl'][0]:,.0f} KiB |")
    print(f"| peak RSS over {SOAK:,} calls | {r['soak']['pan'][1]:,.0f} KiB | {r['soak']['curl'][1]:,.0f} KiB |")
    print(f"| stripped shared library | libpan_offline.so {so / 1024:,.0f} KiB | "
          + " + ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in curl_libs.items())
          + f" = {sum(curl_libs.values()) / 1024:,.0f} KiB |")
    print(f"| stripped statically linked example | {static_example / 1024:,.0f} KiB | |")
    print()
    print(f"from Python ({PY_TOTAL} calls per run, {PY_ROUNDS} runs per cell, alternating; medians, calls/s):")
    print()
    print("| connection | threads | pan_offline module | httpx.Client | requests.Session | module / httpx | module / requests |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (mode, t), cell in r["py"].items():
        m = {n: statistics.median(v) for n, v in cell.items()}
        print(f"| {'plain HTTP' if mode == 'plain' else 'TLS'} | {t} | {m['pan']:,.0f} | {m['httpx']:,.0f} | "
              f"{m['requests']:,.0f} | {m['pan'] / m['httpx']:.2f} | {m['pan'] / m['requests']:.2f} |")
    print()
    print("every Python run (calls/s):")
    for (mode, t), cell in r["py"].items():
        print(f"  {mode} {t} thread(s): " + " | ".join(
            f"{n} " + ", ".join(f"{v:,.0f}" for v in vs) for n, vs in cell.items()))
    chart = os.path.join(HERE, "chart.svg") if not QUICK else os.path.join(OUT, "chart.svg")
    svg_chart([("pan-offline, HTTP", "#1f77b4", med["plain"]["pan"]),
               ("libcurl, HTTP", "#d62728", med["plain"]["curl"]),
               ("pan-offline, TLS", "#7fb2dc", med["tls"]["pan"]),
               ("libcurl, TLS", "#ef9a9b", med["tls"]["curl"]),
               ("floor, HTTP", "#9a9a9a", med["plain"][FLOOR])], r["ceiling"], chart,
              where.split(";")[0] + "; " + where.split(";")[1].strip())
    print(f"\nchart: {os.path.relpath(chart, ROOT)}")


if __name__ == "__main__":
    main()
