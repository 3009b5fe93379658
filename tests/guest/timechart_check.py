#!/usr/bin/env python3
"""timechart_check.py — hold timechart's SVG and report's Trace Event JSON against the session (issue 18).

  timechart_check.py svg REPORT.json CHART.svg     every span is a run of the session, every lifecycle event
                                                   has its marker, the SVG is XML
  timechart_check.py png FILE.png MIN_COLOURS      a PNG (zlib-decoded here) with at least MIN_COLOURS colours
  timechart_check.py tracepage TRACE.json OUT.html a page whose JavaScript checks the trace by the format's rules
                                                   and writes its verdict into <pre id="verdict">

The runs come from `vmoffset-trace report --json` (its timeline of switch events: existing, separately tested
code), not from the code under test: on each (VM, vCPU) a run lasts from a switch to the next switch there, or
to a restart of its VM, or to the session's last event; runs of pid 0 are idle. Prints "  ok   ..." /
"  FAIL ..." lines; exit 0 when all checks passed, 1 otherwise.
"""
import bisect
import json
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

NS = '{http://www.w3.org/2000/svg}'
LIFE = ('fork', 'exec', 'rename', 'exit', 'restart', 'lost')
fails = 0


def ok(msg):
    print('  ok   ' + msg)


def bad(msg):
    global fails
    fails += 1
    print('  FAIL ' + msg)


def runs_of(report):
    """{(vm name, vcpu): sorted [(start_ns, end_ns, pid)]} of non-idle runs, times relative to the session start."""
    evs = report['events']
    t_last = max(round(e['t'] * 1e9) for e in evs)
    cur, out = {}, {}
    for e in evs:
        t = round(e['t'] * 1e9)
        if e['event'] == 'switch':
            k = (e['vm'], e['vcpu'])
            if k in cur:
                out.setdefault(k, []).append((cur[k][0], t, cur[k][1]))
            cur[k] = (t, e['pid'])
        elif e['event'] == 'restart':
            for k in [k for k in cur if k[0] == e['vm']]:
                out.setdefault(k, []).append((cur[k][0], t, cur[k][1]))
                del cur[k]
    for k, (s, pid) in cur.items():
        out.setdefault(k, []).append((s, t_last, pid))
    return {k: [r for r in v if r[2] != 0 and r[1] > r[0]] for k, v in out.items()}


def check_svg(report_path, svg_path):
    report = json.load(open(report_path))
    try:
        root = ET.parse(svg_path).getroot()
    except ET.ParseError as e:
        bad(f'{svg_path} does not parse as XML: {e}')
        return
    ok(f'{svg_path} parses as XML (root <{root.tag.replace(NS, "")}>)')
    px = float(root.get('data-ns-per-px'))
    tol = px + 2000   # a pixel, and report's microsecond rounding
    runs = runs_of(report)
    nruns = sum(len(v) for v in runs.values())
    spans = merged = covered = 0
    wrong = []
    markers = {}
    for vm in root.iter(NS + 'g'):
        if vm.get('class') != 'vm':
            continue
        name = vm.get('data-vm-name')
        for g in vm.iter(NS + 'g'):
            if g.get('class') == 'lane':
                lane = runs.get((name, int(g.get('data-vcpu'))), [])
                starts = [r[0] for r in lane]
                for r in g.iter(NS + 'rect'):
                    if r.get('data-start-ns') is None:
                        continue
                    s, e = int(r.get('data-start-ns')), int(r.get('data-end-ns'))
                    spans += 1
                    if r.find(NS + 'title') is None:
                        wrong.append(f'{name} vCPU {g.get("data-vcpu")} span at {s} has no <title>')
                    if r.get('data-merged') is None:   # one run: same pid, start and end within a pixel
                        pid = int(r.get('data-pid'))
                        i = bisect.bisect_left(starts, s - tol)
                        hit = [x for x in lane[i:i + 8] if x[2] == pid and abs(x[0] - s) <= tol and abs(x[1] - e) <= tol]
                        if not hit:
                            wrong.append(f'{name} vCPU {g.get("data-vcpu")}: span pid {pid} {s}..{e} is no run of the session')
                        covered += 1
                    else:                              # merged: exactly the runs inside it, ends within a pixel
                        n = int(r.get('data-merged'))
                        merged += 1
                        i = bisect.bisect_left(starts, s - 2000)
                        j = i
                        while j < len(lane) and lane[j][1] <= e + 2000:
                            j += 1
                        inside = lane[i:j]
                        if len(inside) != n or not inside or abs(inside[0][0] - s) > tol or abs(inside[-1][1] - e) > tol:
                            wrong.append(f'{name} vCPU {g.get("data-vcpu")}: merged span {s}..{e} says {n} runs, '
                                         f'the session has {len(inside)} there')
                        covered += n
            elif g.get('class') == 'marks':
                for m in g:
                    if m.get('data-kind'):
                        markers.setdefault((name, m.get('data-kind')), []).append(
                            (int(m.get('data-start-ns')), int(m.get('data-end-ns')), int(m.get('data-count'))))
    if wrong:
        bad(f'{len(wrong)} of {spans} spans do not match the session: ' + '; '.join(wrong[:5]))
    elif spans == 0:
        bad('no spans in the SVG')
    else:
        ok(f'{spans} spans ({merged} merged) each match runs of the session: same vCPU and pid, start and end '
           f'within a pixel ({px / 1e6:.3f} ms)')
    if covered == nruns:
        ok(f'the spans stand for all {nruns} runs of the session (idle left out), each once')
    else:
        bad(f'the spans stand for {covered} runs, the session has {nruns}')
    # every lifecycle event has its marker; counts add up per (VM, kind)
    missing, counts = [], {}
    for e in report['events']:
        if e['event'] not in LIFE:
            continue
        t = round(e['t'] * 1e9)
        k = (e['vm'], e['event'])
        counts[k] = counts.get(k, 0) + 1
        if not any(s - 2000 <= t <= en + 2000 for s, en, _ in markers.get(k, [])):
            missing.append(f'{e["event"]} of pid {e.get("pid", e.get("range"))} at {e["t"]} s ({e["vm"]})')
    nlife = sum(counts.values())
    drawn = {k: sum(c for _, _, c in v) for k, v in markers.items()}
    if missing:
        bad(f'{len(missing)} of {nlife} lifecycle events have no marker: ' + '; '.join(missing[:5]))
    elif drawn != counts:
        bad(f'marker counts {drawn} differ from the session\'s events {counts}')
    else:
        kinds = ', '.join(f'{c} {k[1]} ({k[0]})' for k, c in sorted(counts.items()))
        ok(f'every lifecycle event has its marker ({nlife}: {kinds}; {sum(len(v) for v in markers.values())} markers)')


def png_colours(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, w = 8, b'', 0
    while pos < len(data):
        ln, typ = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError(f'PNG colour type {ctype} depth {depth} not handled')
            bpp = 3 if ctype == 2 else 4
        elif typ == b'IDAT':
            idat += body
        pos += 12 + ln
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 2 == 0:   # every other line is plenty to tell a picture from a blank page
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return w, h, len(colours)


PAGE = r'''<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>trace check</title></head><body>
<pre id="verdict">not run</pre>
<script id="trace" type="application/json">__TRACE__</script>
<script>
// The Trace Event format's rules (what chrome://tracing and Perfetto's JSON importer read).
(function () {
  const out = document.getElementById('verdict'), errs = [];
  const err = (m) => { if (errs.length < 10) errs.push(m); };
  let doc;
  try { doc = JSON.parse(document.getElementById('trace').textContent); } catch (e) { out.textContent = 'FAIL not JSON: ' + e; return; }
  if (!doc || !Array.isArray(doc.traceEvents)) { out.textContent = 'FAIL no traceEvents array'; return; }
  if ('displayTimeUnit' in doc && !['ms', 'ns'].includes(doc.displayTimeUnit)) err('displayTimeUnit ' + doc.displayTimeUnit);
  const last = new Map(), named = new Set(), procs = new Set(), used = new Set();
  let nx = 0, ni = 0, nm = 0;
  const isInt = (v) => Number.isInteger(v);
  doc.traceEvents.forEach((e, k) => {
    if (typeof e.ph !== 'string') return err(k + ': no ph');
    if (typeof e.ts !== 'number' || !isFinite(e.ts) || e.ts < 0) err(k + ': ts ' + e.ts);
    if (!isInt(e.pid) || !isInt(e.tid)) err(k + ': pid/tid ' + e.pid + '/' + e.tid);
    if (typeof e.name !== 'string') err(k + ': no name');
    const track = e.pid + '/' + e.tid;
    if (e.ph === 'M') {
      nm++;
      if (!['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index'].includes(e.name)) err(k + ': metadata ' + e.name);
      if (!e.args || typeof e.args !== 'object') err(k + ': metadata without args');
      if (e.name === 'thread_name') named.add(track);
      if (e.name === 'process_name') procs.add(e.pid);
      return;
    }
    if (e.ph === 'X') {
      nx++;
      if (typeof e.dur !== 'number' || !(e.dur >= 0)) err(k + ': complete event dur ' + e.dur);
      if (!e.args || !isInt(e.args.pid) || !isInt(e.args.tgid) || typeof e.args.comm !== 'string') err(k + ': X args');
    } else if (e.ph === 'i' || e.ph === 'I') {
      ni++;
      if ('s' in e && !['g', 'p', 't'].includes(e.s)) err(k + ': instant scope ' + e.s);
    } else {
      err(k + ': unexpected ph ' + e.ph);
    }
    used.add(track);
    if (last.has(track) && e.ts < last.get(track)) err(k + ': ts ' + e.ts + ' before ' + last.get(track) + ' on track ' + track);
    last.set(track, e.ts);
  });
  used.forEach((t) => { if (!named.has(t)) err('track ' + t + ' has no thread_name'); if (!procs.has(+t.split('/')[0])) err('process of ' + t + ' has no process_name'); });
  out.textContent = errs.length ? 'FAIL ' + errs.join('; ') :
    'PASS ' + doc.traceEvents.length + ' events: ' + nx + ' complete, ' + ni + ' instant, ' + nm + ' metadata on ' + used.size + ' tracks';
})();
</script></body></html>
'''


def main():
    if len(sys.argv) == 4 and sys.argv[1] == 'svg':
        check_svg(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == 'png':
        try:
            w, h, n = png_colours(sys.argv[2])
        except (OSError, ValueError, zlib.error) as e:
            bad(f'{sys.argv[2]}: {e}')
        else:
            (ok if n >= int(sys.argv[3]) else bad)(f'{sys.argv[2]}: {w}x{h} PNG, {n} distinct colours (at least {sys.argv[3]})')
    elif len(sys.argv) == 4 and sys.argv[1] == 'tracepage':
        text = open(sys.argv[2]).read()
        json.loads(text)   # a broken file fails here already
        open(sys.argv[3], 'w').write(PAGE.replace('__TRACE__', text.replace('</', '<\\/')))
        return 0
    else:
        print(__doc__)
        return 64
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
