#!/usr/bin/env python3
"""Writes a realistic auth log for benchmarks: RFC 3164 lines from sshd, sudo and su over one day.

usage: gen_auth_log.py LINES OUT [SEED]

Mix: ~70% accepted public-key logins from 500 internal hosts, ~18% failed passwords scattered over 2,000
internet addresses (a few per address), ~5% sudo, ~2% su, and ~5% from 20 brute-force sources (bursts of
failures within a minute). Deterministic for a given seed.
"""
import random
import sys
from datetime import datetime, timedelta, timezone


def main() -> None:
    lines, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    start = datetime(2026, 3, 10, 0, 0, 0, tzinfo=timezone.utc)
    step = 86400 / lines
    users = [f"user{i}" for i in range(300)] + ["root", "admin", "deploy", "backup"]
    brute = [f"203.0.113.{i}" for i in range(1, 21)]
    with open(out, "w") as f:
        for n in range(lines):
            t = start + timedelta(seconds=n * step)
            ts = t.strftime("%b %e %H:%M:%S")
            host = f"web-{n % 8}"
            pid = 1000 + n % 50000
            r = rng.random()
            if r < 0.70:
                ip = f"10.{rng.randrange(4)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
                msg = f"sshd[{pid}]: Accepted publickey for {rng.choice(users)} from {ip} port {rng.randrange(1024, 65535)} ssh2"
            elif r < 0.88:
                ip = f"198.51.{rng.randrange(8)}.{rng.randrange(1, 250)}"
                msg = f"sshd[{pid}]: Failed password for {rng.choice(users)} from {ip} port {rng.randrange(1024, 65535)} ssh2"
            elif r < 0.93:
                u = rng.choice(users)
                msg = f"sudo[{pid}]:     {u} : TTY=pts/{rng.randrange(9)} ; PWD=/home/{u} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
            elif r < 0.95:
                msg = f"su[{pid}]: (to root) {rng.choice(users)} on pts/{rng.randrange(9)}"
            else:
                ip = brute[(n // 200) % len(brute)]
                msg = f"sshd[{pid}]: Failed password for invalid user {rng.choice(users)} from {ip} port {rng.randrange(1024, 65535)} ssh2"
            f.write(f"<38>{ts} {host} {msg}\n")


if __name__ == "__main__":
    main()
