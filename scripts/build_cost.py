#!/usr/bin/env python3
"""What a user's builds cost: a project made by `svcgen new` against the task service written by
hand with tonic and aws-sdk-dynamodb (bench/handwritten, built on its own as a user's project,
with the workspace's Cargo.lock so both sides compile the same crate versions).

For each: a clean `cargo build --release` in an empty target directory (dependencies fetched
beforehand, so downloads are not counted), then one field added to the stored message of its
proto (and `svcgen generate` run for the svcgen project) and `cargo build --release` again.
Prints wall and CPU time (user + system of cargo and everything it ran), the crates compiled,
the binary's size, and the crates that took the most CPU in each clean build.

Builds nothing of svcgen itself: run `cargo build -p svcgen` first. Takes ~14 min on 2 cores;
run nothing else meanwhile.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command, cwd, env):
    """Runs `command`; returns (wall s, CPU s, stderr). Exits with its output when it fails."""
    cpu, wall = cpu_of_children(), time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    took = (time.monotonic() - wall, cpu_of_children() - cpu)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} in {cwd} failed:\n{result.stdout}\n{result.stderr}")
    return (*took, result.stderr)


def add_field(proto, message):
    """Adds `string note = N;` (N one above the message's highest field number) to `message`."""
    text = proto.read_text()
    match = re.search(rf"^message {message} \{{\n(.*?)^\}}", text, re.M | re.S)
    if not match:
        sys.exit(f"{proto}: no message {message}")
    highest = max(int(n) for n in re.findall(r"=\s*(\d+)\s*[;\[]", match.group(1)))
    end = match.end() - 1
    proto.write_text(text[:end] + f"  string note = {highest + 1};\n" + text[end:])


def heaviest(target_dir, count):
    """The `count` units of the last build that took the longest, from cargo's timing report."""
    report = target_dir / "cargo-timings" / "cargo-timing.html"
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\n", report.read_text(), re.S)
    if not match:
        return []
    units = json.loads(match.group(1))
    units.sort(key=lambda unit: -unit["duration"])
    return [(unit["name"], unit.get("target", "").strip(), unit["duration"]) for unit in units[:count]]


def measure(name, project, binary, proto, message, regenerate, work, env):
    target = work / f"target-{name}"
    build_env = dict(env, CARGO_TARGET_DIR=str(target))
    run(["cargo", "fetch"], project, build_env)
    build = ["cargo", "build", "--release", "--timings"]
    clean = run(build, project, build_env)
    crates = heaviest(target, 12)
    add_field(proto, message)
    generate = run(regenerate, project, build_env)[:2] if regenerate else (0.0, 0.0)
    rebuilt = run(build, project, build_env)
    size = (target / "release" / binary).stat().st_size
    return {
        "name": name,
        "clean": clean[:2],
        "clean_units": len(re.findall(r"^\s*Compiling ", clean[2], re.M)),
        "generate": generate,
        "rebuild": rebuilt[:2],
        "rebuild_units": re.findall(r"^\s*Compiling (\S+)", rebuilt[2], re.M),
        "size": size,
        "heaviest": crates,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--svcgen", type=Path, default=ROOT / "target" / "debug" / "svcgen")
    parser.add_argument("--keep", action="store_true", help="keep the projects and target directories")
    args = parser.parse_args()
    args.svcgen = args.svcgen.resolve()
    # Nothing that would make a clean build warm or change what it compiles; the registry stays.
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("CARGO_") or k == "CARGO_HOME") and k not in ("RUSTFLAGS", "RUSTC_WRAPPER")}
    work = Path(tempfile.mkdtemp(prefix="svcgen-build-cost-"))
    try:
        run([args.svcgen, "new", "shop-svc"], work, env)
        shop = work / "shop-svc"
        svcgen = measure("svcgen", shop, "shop-svc", shop / "proto" / "shop" / "v1" / "shop.proto", "Item",
                         [args.svcgen, "generate"], work, env)
        # The hand-written crate at the same place relative to a copy of proto/, on its own.
        handwritten = work / "bench" / "handwritten"
        shutil.copytree(ROOT / "bench" / "handwritten", handwritten, ignore=shutil.ignore_patterns("target"))
        shutil.copytree(ROOT / "proto", work / "proto")
        shutil.copy2(ROOT / "Cargo.lock", handwritten / "Cargo.lock")
        by_hand = measure("hand-written", handwritten, "baseline_dynamodb", work / "proto" / "tasks.proto", "Task",
                          None, work, env)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(svcgen, by_hand)


def report(svcgen, by_hand):
    print("| measure | svcgen new project | hand-written tonic + aws-sdk-dynamodb | ratio |")
    print("| --- | ---: | ---: | ---: |")
    rows = [
        ("clean release build, wall s", svcgen["clean"][0], by_hand["clean"][0]),
        ("clean release build, CPU s", svcgen["clean"][1], by_hand["clean"][1]),
        ("packages compiled", svcgen["clean_units"], by_hand["clean_units"]),
        ("one field added: `svcgen generate`, wall s", svcgen["generate"][0], None),
        ("one field added: release rebuild, wall s", svcgen["rebuild"][0], by_hand["rebuild"][0]),
        ("one field added: release rebuild, CPU s", svcgen["rebuild"][1], by_hand["rebuild"][1]),
        ("release binary, MiB", svcgen["size"] / 2**20, by_hand["size"] / 2**20),
    ]
    def text(value):
        return "-" if value is None else f"{value}" if isinstance(value, int) else f"{value:.1f}"

    for label, ours, theirs in rows:
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        print(f"| {label} | {text(ours)} | {text(theirs)} | {ratio} |")
    for side in (svcgen, by_hand):
        print(f"\n{side['name']}: the rebuild compiled {', '.join(side['rebuild_units'])}")
        print(f"{side['name']}, clean build, the units that took longest (s, one core):")
        for name, target, seconds in side["heaviest"]:
            print(f"  {seconds:6.1f}  {name} {target}".rstrip())


if __name__ == "__main__":
    main()
