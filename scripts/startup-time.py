#!/usr/bin/env python3
"""Measures process start -> first grpc.health.v1 SERVING answer of a service binary.

Usage: .venv/bin/python scripts/startup-time.py target/release/task-svc [runs]
Prints the median and range in milliseconds. Each run uses a fresh data directory and a free
loopback port; the health check is retried without backoff until it answers. ~1 s per run."""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench import free_port, wait_serving


def one_run(binary):
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, LISTEN_ADDR=f"127.0.0.1:{port}", DATA_DIR=data, RUST_LOG="warn")
        start = time.monotonic()
        process = subprocess.Popen([binary], env=env, stderr=subprocess.DEVNULL)
        try:
            return (wait_serving(port, start + 10) - start) * 1000
        finally:
            process.terminate()
            process.wait(timeout=30)


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    samples = sorted(one_run(binary) for _ in range(runs))
    print(f"start -> SERVING over {runs} runs: median {statistics.median(samples):.1f} ms, "
          f"min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms")


if __name__ == "__main__":
    main()
