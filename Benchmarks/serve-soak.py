#!/usr/bin/env python3
"""Memory under load: starts `strata serve` on a free loopback port, runs N streaming clients
(the official openai package) sending chat requests back to back for T seconds, and reports the
server's peak RSS (VmHWM) and the requests and errors seen, as one JSON line.

    ~/.cache/strata/venv/bin/python Benchmarks/serve-soak.py --strata .build/release/strata \
        --model smollm2-135m --clients 32 --seconds 60

Run it once with --clients 1 and once with --clients 32 (a fresh server each time) and compare
the peaks."""
import argparse, json, re, subprocess, sys, threading, time

import openai

parser = argparse.ArgumentParser()
parser.add_argument("--strata", required=True)
parser.add_argument("--model", default="smollm2-135m")
parser.add_argument("--clients", type=int, default=32)
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--max-tokens", type=int, default=64)
parser.add_argument("--server-args", default="")
args = parser.parse_args()

server = subprocess.Popen([args.strata, "serve", "--model", args.model, "--port", "0"] + args.server_args.split(),
                          stderr=subprocess.PIPE, text=True)
port = None
deadline = time.time() + 120
while time.time() < deadline:
    line = server.stderr.readline()
    match = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", line)
    if match:
        port = int(match.group(1))
        break
if port is None:
    server.kill()
    sys.exit("the server did not report its port")
threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()

def peak_rss_kib():
    with open(f"/proc/{server.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=120, max_retries=0)
topics = ["the sea", "a city at night", "binary search", "the moon", "a library", "tea", "rivers", "prime numbers"]
counts = {"requests": 0, "errors": 0, "tokens": 0}
lock = threading.Lock()
end = time.time() + args.seconds
idle_peak = peak_rss_kib()

def run(index):
    request = 0
    while time.time() < end and request < 10_000:
        request += 1
        try:
            stream = client.chat.completions.create(
                model=args.model, max_tokens=args.max_tokens, temperature=0.7, seed=index * 1000 + request, stream=True,
                messages=[{"role": "user", "content": f"Write a few sentences about {topics[(index + request) % len(topics)]}."}])
            tokens = 0
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    tokens += 1
            with lock:
                counts["requests"] += 1
                counts["tokens"] += tokens
        except Exception as error:  # noqa: BLE001 - every failure counts
            with lock:
                counts["errors"] += 1
                counts.setdefault("first_error", repr(error)[:300])

threads = [threading.Thread(target=run, args=(index,)) for index in range(args.clients)]
start = time.time()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(timeout=args.seconds + 180)
elapsed = time.time() - start
peak = peak_rss_kib()
server.terminate()
try:
    status = server.wait(timeout=30)
except subprocess.TimeoutExpired:
    server.kill()
    status = "killed"
print(json.dumps({"clients": args.clients, "seconds": round(elapsed, 1), **counts,
                  "idle_peak_rss_mib": round(idle_peak / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
                  "server_exit": status}))
