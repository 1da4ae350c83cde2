#!/usr/bin/env python3
"""The benchmark: pan-offline against libcurl on the same requests, in one run.

Started by bench/run.sh (which builds everything first). Starts nginx on loopback answering the
create endpoint with the documented example response, measures nginx's own ceiling with wrk,
then alternates pan_bench and curl_bench at 1, 2, 4 and 8 threads, and measures the first call
of a fresh process, RSS after 100,000 calls, user-space instructions per call (callgrind), and
stripped sizes. Prints one table and writes
bench/chart.svg. `--quick` runs a short smoke version (for CI: it checks that all of it works,
its figures mean little).
"""
import os
import re
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
QUICK = "--quick" in sys.argv
THREADS = [1, 2, 4, 8]
ROUNDS = 1 if QUICK else 9
TOTAL = 2000 if QUICK else 20000
SOAK = 5000 if QUICK else 100000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(port, tmp):
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
    server {{
        listen 127.0.0.1:{port};
        location = /api/v1/offline/download {{
            default_type application/json;
            return 200 '{DOC_RESPONSE}';
        }}
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start")


def run(cmd, env, check=True):
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        if check:
            raise SystemExit(f"{cmd} timed out")
        return ""
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


def stripped_size(path):
    dst = os.path.join(OUT, os.path.basename(path) + ".stripped")
    shutil.copy(path, dst)
    subprocess.run(["strip", dst], check=True)
    return os.path.getsize(dst)


def shared_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m and re.match(r"lib(curl|ssl|crypto|nghttp2|ssh2|idn2|psl|gssapi|ldap|rtmp|brotli|zstd|z)\b", m.group(1)):
            libs[m.group(1)] = os.path.realpath(m.group(2))
    return libs


def instructions_per_call(prog, env):
    """User-space instructions per call, counted by callgrind: repeatable whatever else the
    machine is doing. The difference of two runs of different lengths removes start-up."""
    counts = {}
    for n in ((200, 600) if QUICK else (1000, 3000)):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              prog, "1", str(n)], env=env, capture_output=True, text=True,
                             timeout=600)
        counts[n] = int(re.search(r"Collected : (\d+)", out.stderr).group(1))
    (a, ca), (b, cb) = sorted(counts.items())
    return (cb - ca) / (b - a)


def svg_chart(results, ceiling, path):
    w, h, left, bottom, top = 640, 360, 70, 50, 40
    peak = max([ceiling] + [v for series in results.values() for v in series.values()]) * 1.1
    x_of = {t: left + (i + 0.5) * (w - left - 20) / len(THREADS) for i, t in enumerate(THREADS)}
    y = lambda v: h - bottom - v / peak * (h - bottom - top)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">create calls/s on loopback (median of {ROUNDS} runs)</text>',
             f'<line x1="{left}" y1="{h-bottom}" x2="{w-10}" y2="{h-bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h-bottom}" stroke="black"/>']
    for i in range(5):
        v = peak * i / 4
        parts.append(f'<text x="{left-6}" y="{y(v)+4:.0f}" text-anchor="end">{v/1000:.0f}k</text>')
        parts.append(f'<line x1="{left}" y1="{y(v):.0f}" x2="{w-10}" y2="{y(v):.0f}" stroke="#ddd"/>')
    parts.append(f'<line x1="{left}" y1="{y(ceiling):.0f}" x2="{w-10}" y2="{y(ceiling):.0f}" stroke="#999" stroke-dasharray="4"/>')
    parts.append(f'<text x="{w-12}" y="{y(ceiling)-4:.0f}" text-anchor="end" fill="#666">nginx ceiling (wrk) {ceiling/1000:.1f}k</text>')
    colors = {"pan": "#1f77b4", "curl": "#d62728"}
    bar = 22
    for name, off in (("pan", -bar / 2 - 1), ("curl", bar / 2 + 1)):
        for t in THREADS:
            v = results[name][t]
            x = x_of[t] + off - bar / 2
            parts.append(f'<rect x="{x:.0f}" y="{y(v):.0f}" width="{bar}" height="{h-bottom-y(v):.0f}" fill="{colors[name]}"/>')
    for t in THREADS:
        parts.append(f'<text x="{x_of[t]:.0f}" y="{h-bottom+16}" text-anchor="middle">{t} thread{"s" if t > 1 else ""}</text>')
    parts.append(f'<rect x="{left+10}" y="{top}" width="12" height="12" fill="{colors["pan"]}"/><text x="{left+26}" y="{top+10}">pan-offline</text>')
    parts.append(f'<rect x="{left+110}" y="{top}" width="12" height="12" fill="{colors["curl"]}"/><text x="{left+126}" y="{top+10}">libcurl easy</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pan-bench-")
    port = free_port()
    nginx = start_nginx(port, tmp)
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PAN_API_BASE_URL=base)
    pan, curl = os.path.join(OUT, "pan_bench"), os.path.join(OUT, "curl_bench")
    try:
        ceiling = wrk_ceiling(base)
        runs = {"pan": {t: [] for t in THREADS}, "curl": {t: [] for t in THREADS}}
        for r in range(ROUNDS):
            for t in THREADS:
                order = [("pan", pan), ("curl", curl)] if r % 2 == 0 else [("curl", curl), ("pan", pan)]
                for name, prog in order:
                    for attempt in range(3):
                        line = run([prog, str(t), str(TOTAL // t)], env, check=False)
                        if line and field(line, "failed") == 0:
                            break
                        # Seen here once, with libcurl: a thread whose calls all failed.
                        print(f"warning: {name} at {t} threads had failures, run again: {line.strip()}")
                    else:
                        raise SystemExit(f"{name} failed three times at {t} threads")
                    runs[name][t].append(field(line, "calls_per_s"))
        med = {n: {t: statistics.median(v) for t, v in s.items()} for n, s in runs.items()}

        first = {}
        for name, prog in (("pan", pan), ("curl", curl)):
            inproc, wall = [], []
            for _ in range(3 if QUICK else 11):
                t0 = time.perf_counter()
                line = run([prog, "--first"], env)
                wall.append((time.perf_counter() - t0) * 1e6)
                inproc.append(field(line, "first_call_us"))
            first[name] = (statistics.median(inproc), statistics.median(wall))

        soak = {}
        for name, prog in (("pan", pan), ("curl", curl)):
            line = run([prog, "1", str(SOAK)], env)
            soak[name] = (field(line, "rss_kib"), field(line, "peak_rss_kib"))
        small = {name: field(run([prog, "1", str(SOAK // 10)], env), "rss_kib") for name, prog in (("pan", pan), ("curl", curl))}

        instructions = {name: instructions_per_call(prog, env) for name, prog in (("pan", pan), ("curl", curl))}

        so = stripped_size(os.path.join(ROOT, "target", "release", "libpan_offline.so"))
        static_example = stripped_size(os.path.join(OUT, "offline_download_static"))
        curl_libs = {k: stripped_size(v) for k, v in shared_libs(curl).items()}
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"server: nginx 1 worker on loopback; its ceiling measured by wrk (2 threads, 8 connections): {ceiling:,.0f} req/s")
    print(f"{TOTAL} calls per run, {ROUNDS} alternating runs per cell, medians:")
    print()
    print("| threads | pan-offline calls/s | libcurl calls/s | pan / libcurl |")
    print("|---:|---:|---:|---:|")
    for t in THREADS:
        print(f"| {t} | {med['pan'][t]:,.0f} | {med['curl'][t]:,.0f} | {med['pan'][t] / med['curl'][t]:.2f} |")
    print()
    print("every run (calls/s), to show the spread:")
    for t in THREADS:
        print(f"  {t} thread(s): pan " + ", ".join(f"{v:,.0f}" for v in runs["pan"][t])
              + " | libcurl " + ", ".join(f"{v:,.0f}" for v in runs["curl"][t]))
    print()
    print("| measure | pan-offline | libcurl |")
    print("|---|---:|---:|")
    print(f"| user-space instructions per call (callgrind, 1 thread) | {instructions['pan']:,.0f} | {instructions['curl']:,.0f} |")
    print(f"| first call, main() to first task ID | {first['pan'][0]:,.0f} µs | {first['curl'][0]:,.0f} µs |")
    print(f"| first call, whole process (exec to exit) | {first['pan'][1]:,.0f} µs | {first['curl'][1]:,.0f} µs |")
    print(f"| RSS after {SOAK // 10:,} calls | {small['pan']:,.0f} KiB | {small['curl']:,.0f} KiB |")
    print(f"| RSS after {SOAK:,} calls | {soak['pan'][0]:,.0f} KiB | {soak['curl'][0]:,.0f} KiB |")
    print(f"| peak RSS over {SOAK:,} calls | {soak['pan'][1]:,.0f} KiB | {soak['curl'][1]:,.0f} KiB |")
    print(f"| stripped shared library | libpan_offline.so {so / 1024:,.0f} KiB | "
          + " + ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in curl_libs.items())
          + f" = {sum(curl_libs.values()) / 1024:,.0f} KiB |")
    print(f"| stripped statically linked example | {static_example / 1024:,.0f} KiB | |")
    chart = os.path.join(HERE, "chart.svg") if not QUICK else os.path.join(OUT, "chart.svg")
    svg_chart(med, ceiling, chart)
    print(f"\nchart: {os.path.relpath(chart, ROOT)}")


if __name__ == "__main__":
    main()
