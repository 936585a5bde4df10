#!/usr/bin/env python3
"""What the request metrics and the per-request log line cost on the cached-packument path
(issue #16): two release binaries side by side, BEFORE and AFTER, each in front of the same
static npm upstream (python's http.server serving integration/fixtures/npm/is-number.json),
answered from depfw's render cache; one keep-alive connection, rounds of 2,000 GETs
alternating between the two so machine noise hits both alike. AFTER's stderr (one access
line per request at info) goes to a file, as under a service manager.

Usage: python3 benches/metrics-overhead.py BEFORE_BIN AFTER_BIN   (ROUNDS=6 by default)
It is a lighter stand-in for benches/proxy-bench.sh, which needs a release build of the
bench harness too.
"""
import http.client, os, shutil, statistics, subprocess, sys, tempfile, time, pathlib
BEFORE, AFTER = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="depfw-metrics-bench-")
UP = os.path.join(WORK, "upstream")
os.mkdir(UP)
ROOT = pathlib.Path(__file__).resolve().parent.parent
with open(ROOT / "integration/fixtures/npm/is-number.json", "rb") as f, open(os.path.join(UP, "is-number"), "wb") as out:
    out.write(f.read())
up = subprocess.Popen([sys.executable, "-m", "http.server", "18901", "--bind", "127.0.0.1", "--directory", UP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
def start(binary, port, tag):
    d = pathlib.Path(WORK) / tag; d.mkdir(exist_ok=True)
    (d/"depfw.toml").write_text(f'[server]\nlisten = "127.0.0.1:{port}"\ndata-dir = "{d}/data"\n[upstream.npm]\nregistry = "http://127.0.0.1:18901/"\n')
    return subprocess.Popen([binary, "--config", str(d/"depfw.toml"), "serve"], stdout=subprocess.DEVNULL, stderr=open(d/"stderr.log","w"))
procs = [start(BEFORE, 18911, "before"), start(AFTER, 18912, "after")]
def wait(port):
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); r = c.getresponse(); r.read()
            if r.status == 200: return
        except OSError: pass
        time.sleep(0.1)
    raise SystemExit(f"port {port} never came up")
def run(port, n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    for _ in range(n):
        t = time.perf_counter(); c.request("GET", "/npm/is-number", headers={"accept": "application/json", "accept-encoding": "identity"}); r = c.getresponse(); r.read(); lat.append(time.perf_counter() - t)
        assert r.status == 200, r.status
    return lat
try:
    for p in (18911, 18912): wait(p); run(p, 200)
    res = {"before": [], "after": []}
    for rnd in range(int(os.environ.get("ROUNDS", "6"))):
        for tag, port in (("before", 18911), ("after", 18912)):
            res[tag] += run(port, 2000)
    for tag, lat in res.items():
        lat.sort(); n = len(lat)
        print(f"{tag}: n={n} p50={lat[n//2]*1e3:.3f} ms p99={lat[int(n*0.99)]*1e3:.3f} ms mean={statistics.mean(lat)*1e3:.3f} ms => {n/sum(lat):.0f} req/s (1 conn)")
    print("load average:", open("/proc/loadavg").read().split()[:3])
finally:
    for p in procs: p.terminate()
    up.terminate()
    for p in procs: p.wait()
    shutil.rmtree(WORK, ignore_errors=True)
