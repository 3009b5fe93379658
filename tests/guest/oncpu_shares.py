#!/usr/bin/env python3
"""On-CPU shares over one window, from `live --json` switch events and from the guest's own accounting.

    oncpu_shares.py LIVE.jsonl ACCT_A ACCT_B T_A T_B NCPU COMM...

ACCT_A/ACCT_B: `guest.sh acct RUN_DIR COMM...` output taken at host epoch times T_A and T_B (first line
"uptime U0 U1", /proc/stat's "cpu ..." line, then "tid tgid comm utime stime ..." per thread). Prints one line per COMM and one for the whole guest:
    share COMM live=PCT guest=PCT
    busy live=PCT guest=PCT
with PCT the percentage of the window × NCPU: from the guest, the program's threads' utime+stime growth (clock
ticks of 1/100 s) over its uptime growth, and for busy the non-idle share of /proc/stat's cpu line; from live,
the time each vCPU's switch events say the program's threads (tgid) held it, or any task but the idle one. Exit 1 on malformed input.
"""
import json
import sys
import time


def read_acct(path):
    up, rows, cpu = None, {}, None
    with open(path) as f:
        for line in f:
            p = line.split()
            if p and p[0] == "uptime":
                up = float(p[1])
            elif p and p[0] == "cpu":
                v = [int(x) for x in p[1:]]
                # busy: user nice system irq softirq steal; all: those and idle iowait
                cpu = (v[0] + v[1] + v[2] + sum(v[5:8]), sum(v[:8]))
            elif len(p) >= 5 and p[0].isdigit():
                rows[int(p[0])] = (int(p[1]), p[2], int(p[3]) + int(p[4]))
    if up is None or cpu is None:
        sys.exit(f"{path}: no uptime or cpu line")
    return up, rows, cpu


def tod(epoch):
    lt = time.localtime(epoch)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (epoch % 1)


def main():
    live, acct_a, acct_b, t_a, t_b, ncpu, comms = (sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]),
                                                    float(sys.argv[5]), int(sys.argv[6]), sys.argv[7:])
    ua, ra, ca = read_acct(acct_a)
    ub, rb, cb = read_acct(acct_b)
    # the guest: ticks per program (by comm: the workload's threads keep their program's comm); busy share
    # from /proc/stat's cpu line
    ticks, tgids = {}, {c: set() for c in comms}
    busy_share = 100.0 * (cb[0] - ca[0]) / max(1, cb[1] - ca[1])
    for tid, (tgid, comm, t1) in rb.items():
        d = t1 - ra[tid][2] if tid in ra else t1
        if comm in tgids:
            tgids[comm].add(tgid)
            ticks[comm] = ticks.get(comm, 0) + d
    gwin = (ub - ua) * ncpu
    # live: switch intervals per vCPU, clipped to the window (in live's own clock: seconds since start)
    events = [json.loads(l) for l in open(live) if l.startswith("{")]
    sw = [e for e in events if e.get("event") == "switch"]
    if not sw:
        print("busy live=0.0 guest=%.1f" % busy_share)
        for c in comms:
            print("share %s live=0.0 guest=%.1f" % (c, 100.0 * ticks.get(c, 0) / 100 / gwin))
        return
    h, m, s = sw[0]["time"].split(":")
    origin = int(h) * 3600 + int(m) * 60 + float(s) - sw[0]["t"]   # time of day at t = 0
    # the window's start in live's clock: a signed difference (the window may start a little before live's t = 0,
    # when its set-up outlasts the test's wait; a modulo would put it a day later, past every event), midnight
    # crossings folded back
    w0 = tod(t_a) - origin
    w0 = w0 + 86400 if w0 < -43200 else w0 - 86400 if w0 > 43200 else w0
    w1 = w0 + (t_b - t_a)
    end = max(e["t"] for e in events)
    held, busy = {}, 0.0
    for v in sorted({e["vcpu"] for e in sw}):
        evs = sorted((e for e in sw if e["vcpu"] == v), key=lambda e: e["t"])
        for i, e in enumerate(evs):
            a, b = e["t"], evs[i + 1]["t"] if i + 1 < len(evs) else max(end, w1)
            a, b = max(a, w0), min(b, w1)
            if b <= a:
                continue
            if e["pid"] != 0:
                busy += b - a
            held[e["tgid"]] = held.get(e["tgid"], 0.0) + (b - a)
    lwin = (w1 - w0) * ncpu
    print("busy live=%.1f guest=%.1f" % (100 * busy / lwin, busy_share))
    for c in comms:
        print("share %s live=%.1f guest=%.1f" % (c, 100 * sum(held.get(t, 0.0) for t in tgids[c]) / lwin,
                                                 100.0 * ticks.get(c, 0) / 100 / gwin))


if __name__ == "__main__":
    main()
