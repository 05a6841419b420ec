#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the raw results of tools/bench/guest-bench.sh into the benchmark report.

(Workload w, writeback, has its own report: report_wb.py -> writeback.md;
workload s, hit scaling over 1 and 2 CPUs: report_scaling.py -> scaling.md.)

Reads RAW/records.jsonl (one object per measured run, with the hit counters
read around it), RAW/fio/*.json (fio and embed_lookup output), RAW/env.txt,
and writes into OUT: results.json (every figure: median, min, max over the
repetitions, and its ratios to the raw cache device and to each peer),
results.md (tables, goals met or missed, emulator notes) and, for gnuplot,
*.dat and *.gp (bench.sh renders them to *.png).

Ratios are computed per repetition between runs of the same round (the runs
of one round are interleaved in the guest), then summarised as median and
min-max, so drift in the emulator's speed largely cancels.
"""
import argparse
import json
import os
import statistics
import sys
from collections import defaultdict

SYS_NAMES = {
    "raw": "raw cache device",
    "linear": "dm-linear",
    "ic": "infercache",
    "dmc": "dm-cache (smq)",
    "bc": "bcache",
    "origin": "raw origin",
}
PEERS = ["linear", "dmc", "bc"]
CACHING = ["ic", "dmc", "bc"]
IC_WAYS = 16  # driver/geometry.h


def ic_oblock_set(oblock, nr_sets):
    """driver/geometry.h ic_oblock_set(): reciprocal_scale(hash_64(oblock, 32), nr_sets)."""
    h = ((oblock * 0x61C8864680B583EB) & (2 ** 64 - 1)) >> 32
    return (h * nr_sets) >> 32


def belady_hits(blocks, start, set_of, ways):
    """Hits from index `start` on of Belady's MIN with bypass, `ways` per set.

    On a miss in a full set the block whose next use is farthest (possibly
    the missed block itself, which is then not admitted) leaves.
    """
    import heapq
    never = len(blocks)
    nxt, last = [never] * len(blocks), {}
    for i in range(len(blocks) - 1, -1, -1):
        nxt[i] = last.get(blocks[i], never)
        last[blocks[i]] = i
    cached, heaps, hits = {}, defaultdict(list), 0
    for i, b in enumerate(blocks):
        s = set_of(b)
        c = cached.setdefault(s, {})
        h = heaps[s]
        if b in c:
            hits += i >= start
        elif len(c) >= ways:
            while -h[0][0] != c.get(h[0][1]):
                heapq.heappop(h)  # stale: the block was used again or left
            if -h[0][0] <= nxt[i]:
                continue  # bypass: nothing cached is needed later than b
            del c[heapq.heappop(h)[1]]
        c[b] = nxt[i]
        heapq.heappush(h, (-nxt[i], b))
    return hits

CACHE_NAMES = {"nvme": "QEMU NVMe", "brd": "brd (RAM disk)", "none": "-"}


def med(v):
    return statistics.median(v) if v else None


def summ(v):
    v = [x for x in v if x is not None]
    if not v:
        return None
    return {"median": med(v), "min": min(v), "max": max(v), "n": len(v), "values": v}


def load(raw):
    recs = []
    with open(os.path.join(raw, "records.jsonl")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"report: skipping bad record: {line[:120]}", file=sys.stderr)
    # a record of a batch with rounds stands for one run per round (jobs
    # SYS.1 .. SYS.n): one pseudo-record each, numbered as repetitions
    out = []
    for r in recs:
        n = int(r.get("rounds", 1) or 1)
        if n > 1 and r.get("run") == "fio":
            for k in range(1, n + 1):
                x = dict(r)
                x["job"] = f"{r['sys']}.{k}"
                x["rep"] = (int(r.get("rep", 1)) - 1) * n + k
                out.append(x)
        else:
            out.append(r)
    recs = out
    for r in recs:
        r["m"] = metrics(raw, r)
    env = {}
    try:
        with open(os.path.join(raw, "env.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
    except OSError:
        pass
    return recs, env


def metrics(raw, r):
    """The figures of one run: iops, mean/p50/p99/p999 (us), hit ratio."""
    m = {}
    fid = r.get("fio")
    if fid and r.get("run") == "fio":
        try:
            with open(os.path.join(raw, "fio", fid + ".json")) as f:
                j = json.load(f)
            want = r.get("job", r.get("sys"))
            jobs = [x for x in j["jobs"] if x.get("jobname") == want] or j["jobs"][:1]
            rd = jobs[0]["read"]
            lat = rd.get("lat_ns") or rd.get("clat_ns")
            pc = lat.get("percentile", {})
            m["iops"] = rd["iops"]
            m["ios"] = rd["total_ios"]
            m["mean_us"] = lat["mean"] / 1000
            for k, name in (("50.000000", "p50_us"), ("99.000000", "p99_us"), ("99.900000", "p999_us")):
                if k in pc:
                    m[name] = pc[k] / 1000
            m["bw_mib"] = rd["bw_bytes"] / 1048576
        except (OSError, KeyError, ValueError, IndexError) as e:
            print(f"report: {fid}: {e}", file=sys.stderr)
    elif fid and r.get("run") == "embed":
        try:
            with open(os.path.join(raw, "fio", fid + ".embed.json")) as f:
                j = json.loads(f.read().strip().splitlines()[-1])
            m["iops"] = j["lookups_per_s"]
            m["ios"] = j["lookups"]
            m["mean_us"] = j["mean_us"]
            m["p50_us"] = j["p50_us"]
            m["p99_us"] = j["p99_us"]
            m["p999_us"] = j["p999_us"]
            m["errors"] = j["errors"]
        except (OSError, KeyError, ValueError, IndexError) as e:
            print(f"report: {fid}: {e}", file=sys.stderr)
    if r.get("sys") in CACHING and r.get("reads", 0) > 0:
        m["hit"] = r["hits"] / r["reads"]
    if r.get("reads", 0) > 0 and r.get("sys") in CACHING:
        m["origin_kib_per_read"] = r["origin_kib"] / r["reads"]
    return m


def sel(recs, **kw):
    out = []
    for r in recs:
        if all(r.get(k) == v for k, v in kw.items()):
            out.append(r)
    return out


def fig(recs, key):
    return summ([r["m"].get(key) for r in recs])


def ratio_per_rep(recs_a, recs_b, key):
    """Per repetition ratio a/b of metric key (reps matched by 'rep')."""
    b_by = {r.get("rep"): r["m"].get(key) for r in recs_b}
    v = []
    for r in recs_a:
        x, y = r["m"].get(key), b_by.get(r.get("rep"))
        if x is not None and y:
            v.append(x / y)
    return summ(v)


# ---------------------------------------------------------------- format
def f_num(x, unit=""):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    if abs(x) >= 100:
        return f"{x:.0f}{unit}"
    if abs(x) >= 10:
        return f"{x:.1f}{unit}"
    return f"{x:.2f}{unit}"


def f_s(s, unit="", scale=1.0):
    """median [min-max] of a summary."""
    if not s:
        return "-"
    if s["n"] == 1:
        return f_num(s["median"] * scale, unit)
    return f"{f_num(s['median'] * scale, unit)} [{f_num(s['min'] * scale)}-{f_num(s['max'] * scale)}]"


def f_pct(s, digits=1):
    """median [min-max] of a summary of ratios, as percentages."""
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median'] * 100:.{digits}f}%"
    return f"{s['median'] * 100:.{digits}f}% [{s['min'] * 100:.{digits}f}-{s['max'] * 100:.{digits}f}]"


def f_ratio(s):
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.2f}x"
    return f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- shared by the three reports
def header_lines(a, env, title, emulation, part=None, bcache_tools=True):
    """The top of a report, down to its infercache line: title, origin, command, date, wall time, guest, host.

    a: the command line (report.py's main()); env: RAW/env.txt. part: the
    report_*.py that wrote the report for report.py, if not report.py itself.
    emulation: the rest of the Guest line, after the guest's memory size.
    bcache_tools: name the bcache-tools version on the Host line. The caller
    adds its own lines (devices, repetitions, ...) after these.
    """
    gsec = None
    try:
        with open(os.path.join(a.raw, "guest_seconds")) as f:
            gsec = float(f.read().strip())
    except (OSError, ValueError):
        pass
    by = "`tools/bench/report.py`" + (f" (`{part}`)" if part else "")
    return [f"# {title}", "",
            f"Generated by {by} from one guest boot. Do not edit: rerun the command.", "",
            f"- Command: `{a.command}`",
            f"- Date: {a.date}",
            f"- Wall time of the whole run (deps, build, boot, all workloads): {a.wall // 60} min {a.wall % 60} s"
            + (f"; workloads in the guest: {gsec / 60:.1f} min" if gsec else "")
            + (f"; vm-run exit status {a.vm_status} (guest command status {a.guest_rc})" if a.vm_status else ""),
            f"- Guest: Linux {env.get('kernel', '?')}, {env.get('cpus', '?')} vCPUs ({env.get('cpu_model', '?')}), "
            f"{env.get('mem_mb', '?')} MB, {emulation}",
            f"- Host: {a.host}; {a.qemu}; {env.get('fio', 'fio ?')}"
            + (f"; bcache-tools {env.get('bcache_tools', '?')}" if bcache_tools else ""),
            f"- infercache: {a.git} (module md5 {env.get('ic_module', '?')})"]


def gp_head(script, name, size, enhanced=True):
    """The first lines of gnuplot script NAME.gp written by tools/bench/SCRIPT: where it came from, a
    pngcairo terminal of SIZE ("width,height"; noenhanced: text as is, no markup), output NAME.png."""
    return (f"# generated by tools/bench/{script}; run from this directory: gnuplot {name}.gp\n"
            f"set terminal pngcairo size {size} font 'sans,10'{'' if enhanced else ' noenhanced'}\n"
            f"set output '{name}.png'\n")


def goal_lines(goals):
    """The Goals section of a report: a table of the (name, met, measured) of every goal, if any."""
    g = ["## Goals", ""]
    if goals:
        g.append(table(["goal", "met?", "measured"],
                       [[n, "**met**" if m else "**missed**", t] for n, m, t in goals]))
    g.append("")
    return g


def write_report(write, stem, body, res, a, plots, default=str):
    """Write STEM.md (the lines of body) and STEM.json (res, with the run's command, date, git, wall time and
    plots added) through write(name, text). default: json.dumps()'s, for what JSON cannot hold."""
    write(stem + ".md", "\n".join(body) + "\n")
    res.update({"command": a.command, "date": a.date, "git": a.git, "wall_seconds": a.wall,
                "plots": [p + ".png" for p in plots]})
    write(stem + ".json", json.dumps(res, indent=1, sort_keys=True, default=default) + "\n")


# ---------------------------------------------------------------- report
class Report:
    def __init__(self, recs, env, args):
        self.recs, self.env, self.args = recs, env, args
        self.md = []
        self.res = {"figures": {}, "goals": [], "env": env}
        self.goals = []
        self.plots = []
        self.lats = [int(x) for x in env.get("LATS", "500 2000").split()]
        self.reps = int(env.get("REPS", "3"))

    def put(self, path, value):
        d = self.res["figures"]
        for p in path[:-1]:
            d = d.setdefault(str(p), {})
        d[str(path[-1])] = value

    def goal(self, name, met, text):
        self.goals.append((name, met, text))
        self.res["goals"].append({"goal": name, "met": met, "detail": text})

    def w(self, *lines):
        self.md.extend(lines)

    # ---------------------------------------------------------- a / b
    def part_ab(self):
        recs = self.recs
        kinds = [k for k in ("nvme", "brd") if sel(recs, wl="a", cache=k)]
        if not kinds:
            return
        self.w("## a, b: warm-cache 4 KiB random reads (hits), QD1 and QD32", "")
        ab_reps, ab_rounds = int(self.env.get("AB_REPS", self.reps)), int(self.env.get("AB_ROUNDS", 1))
        self.w(f"Hot set {self.env.get('HOT_MB')} MiB (fits every cache), warmed first. "
               f"{ab_reps} fio processes per workload and cache, each running {ab_rounds} rounds of one "
               f"{self.env.get('RUNTIME')} s time-based run (+0.1 s ramp) per system, the systems in a rotated "
               f"order each round: {ab_reps * ab_rounds} runs per figure, those of one round within a few "
               "seconds of each other. fio `direct=1`, psync at QD1, libaio at QD32. Ratios are taken "
               "within each round, then median [min-max] over the rounds. `hits` = the system's own hit "
               "counter over its runs.", "")
        warm_rows = []
        for kind in kinds:
            for s in CACHING:
                w = sel(recs, wl="warm_done", cache=kind, sys=s)
                if w:
                    warm_rows.append(f"{SYS_NAMES[s]} on {kind}: {w[0].get('passes')} pass(es)")
        if warm_rows:
            self.w("Warm-up passes (QD16 over the hot set) until a pass had >= 99% hits: "
                   + "; ".join(warm_rows) + ".", "")
        for wl, label in (("a", "QD1"), ("b", "QD32")):
            for kind in kinds:
                rows = []
                base = sel(recs, wl=wl, cache=kind, sys="raw")
                ic = sel(recs, wl=wl, cache=kind, sys="ic")
                for s in ("raw", "linear", "ic", "dmc", "bc"):
                    rr = sel(recs, wl=wl, cache=kind, sys=s)
                    if not rr:
                        continue
                    iops = fig(rr, "iops")
                    rraw = ratio_per_rep(rr, base, "iops")
                    ric = ratio_per_rep(ic, rr, "iops") if s != "ic" else None
                    hit = fig(rr, "hit")
                    entry = {"iops": iops, "mean_us": fig(rr, "mean_us"), "p50_us": fig(rr, "p50_us"),
                             "p99_us": fig(rr, "p99_us"), "p999_us": fig(rr, "p999_us"), "hit_ratio": hit,
                             "ratio_to_raw": rraw,
                             "ratios_to_peers": {p: ratio_per_rep(rr, sel(recs, wl=wl, cache=kind, sys=p), "iops")
                                                 for p in ("raw", "linear", "ic", "dmc", "bc") if p != s}}
                    self.put([wl, kind, s], entry)
                    rows.append([SYS_NAMES[s], f_s(iops), f_ratio(rraw), f_ratio(ric) if ric else "-",
                                 f_s(fig(rr, "mean_us")), f_s(fig(rr, "p99_us")), f_pct(hit)])
                self.w(f"### {wl}. {label}, cache = {CACHE_NAMES[kind]}", "")
                self.w(table(["system", "IOPS", "x raw cache", "infercache / this", "mean us", "p99 us", "hits"], rows), "")
                r = ratio_per_rep(ic, base, "iops")
                lin = ratio_per_rep(sel(recs, wl=wl, cache=kind, sys="linear"), base, "iops")
                icl = ratio_per_rep(ic, sel(recs, wl=wl, cache=kind, sys="linear"), "iops")
                if r:
                    met = r["median"] >= 0.90
                    why = ""
                    if not met:
                        why = self.why_hit_path(wl, kind, r, lin)
                    self.goal(f"{wl}: {label} hit IOPS >= 0.90x raw ({kind})", met,
                              f"infercache {f_ratio(r)} of the raw {kind} device, {f_ratio(icl)} of dm-linear "
                              f"(dm-linear {f_ratio(lin)} of raw)"
                              + (f"; short by {0.90 - r['median']:.2f}x. {why}" if not met else ""))
        # raw origin reference
        rows = []
        for lat in self.lats:
            for wl, label in (("a", "QD1"), ("b", "QD32")):
                rr = sel(recs, wl=wl, cache="none", sys="origin", lat_us=lat)
                if rr:
                    self.put([wl, "origin", str(lat)], {"iops": fig(rr, "iops"), "mean_us": fig(rr, "mean_us"),
                                                        "p99_us": fig(rr, "p99_us")})
                    rows.append([f"{lat / 1000:g} ms null_blk", label, f_s(fig(rr, "iops")),
                                 f_s(fig(rr, "mean_us")), f_s(fig(rr, "p50_us")), f_s(fig(rr, "p99_us"))])
        if rows:
            self.w("### The slow origin alone (reference)", "")
            self.w(table(["origin", "depth", "IOPS", "mean us", "p50 us", "p99 us"], rows), "")
            self.w("null_blk completes each I/O after a fixed hrtimer delay; under TCG the measured "
                   "QD1 latency is well above the configured one (timer slack and emulation cost), "
                   "so the table above, not the nominal value, is the origin latency to compare with.", "")
        self.plot_ab(kinds)

    def why_hit_path(self, wl, kind, r, lin):
        recs = self.recs
        why = []
        if r["max"] >= 0.90:
            why.append(f"The per-round ratios range {r['min']:.2f}-{r['max']:.2f}: the goal is inside this run's "
                       "noise (shared host, TCG), so the median alone does not settle it.")
        if lin and lin["median"] < 0.95:
            why.append(f"dm-linear, which only remaps, reaches {lin['median']:.2f}x: under TCG the device-mapper "
                       "layer itself (clone, remap, completion on an emulated CPU) is a large share of a hit, "
                       f"so {kind} hits cannot get near 1.00x through any dm target here.")
        ic = fig(sel(recs, wl=wl, cache=kind, sys="ic"), "mean_us")
        li = fig(sel(recs, wl=wl, cache=kind, sys="linear"), "mean_us")
        if ic and li:
            why.append(f"Mean latency: infercache {f_num(ic['median'])} us vs dm-linear {f_num(li['median'])} us "
                       f"({ic['median'] - li['median']:+.0f} us per hit for the lookup, per-set lock, policy "
                       "update and completion accounting, emulated).")
        return " ".join(why)

    def plot_ab(self, kinds):
        for wl, label in (("a", "QD1"), ("b", "QD32")):
            lines = []
            for s in ("raw", "linear", "ic", "dmc", "bc"):
                cols = [SYS_NAMES[s].replace(" ", "\\n", 1) if False else SYS_NAMES[s]]
                for kind in kinds:
                    f = self.res["figures"].get(wl, {}).get(kind, {}).get(s, {}).get("iops")
                    cols += [f["median"], f["min"], f["max"]] if f else [0, 0, 0]
                lines.append('"%s" ' % cols[0] + " ".join(f"{x:.1f}" for x in cols[1:]))
            dat = f"{wl}_iops.dat"
            self.write(dat, "# system " + " ".join(f"{k}_median {k}_min {k}_max" for k in kinds) + "\n"
                       + "\n".join(lines) + "\n")
            plots = []
            for i, kind in enumerate(kinds):
                c = 2 + 3 * i
                plots.append(f"'{dat}' using {c}:{c + 1}:{c + 2}:xtic(1) title '{CACHE_NAMES[kind]}'")
            self.gp(f"{wl}_iops", f"{label} 4 KiB random-read hits: IOPS (median, min-max)", "IOPS",
                    "set style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                    "set style fill solid 0.6 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                    "set xtics rotate by -20\n",
                    "plot " + ", \\\n     ".join(plots))

    # ---------------------------------------------------------- c / e
    def part_ce(self):
        recs = self.recs
        if not sel(recs, wl="c"):
            return
        passes = sorted({r.get("pass") for r in sel(recs, wl="c") if r.get("pass")})
        self.w("## c: warm-up passes over a hot set that fits the cache", "")
        self.w(f"Hot set {self.env.get('WARM_MB')} MiB, cache devices {self.env.get('CACHE_MB')} MiB, "
               f"origin null_blk; each pass reads every hot block once in random order at QD1 "
               f"(psync), fresh systems for each of the {self.reps} repetitions; the systems' passes are "
               "interleaved. Figures: median [min-max] over repetitions.", "")
        for lat in self.lats:
            rows = []
            org = sel(recs, wl="c", sys="origin", lat_us=lat)
            if org:
                rows.append(["raw origin (no cache)", "any", "-", f_s(fig(org, "iops")), f_s(fig(org, "p99_us"))])
            for s in CACHING:
                for p in passes:
                    rr = sel(recs, wl="c", sys=s, lat_us=lat, **{"pass": p})
                    if not rr:
                        continue
                    e = {"hit_ratio": fig(rr, "hit"), "iops": fig(rr, "iops"), "p99_us": fig(rr, "p99_us"),
                         "mean_us": fig(rr, "mean_us"),
                         "ratios_to_peers": {q: {"iops": ratio_per_rep(rr, sel(recs, wl="c", sys=q, lat_us=lat, **{"pass": p}), "iops"),
                                                 "p99_us": ratio_per_rep(rr, sel(recs, wl="c", sys=q, lat_us=lat, **{"pass": p}), "p99_us")}
                                             for q in CACHING if q != s}}
                    self.put(["c", str(lat), s, str(p)], e)
                    rows.append([SYS_NAMES[s], p, f_pct(e["hit_ratio"]), f_s(e["iops"]), f_s(e["p99_us"])])
            self.w(f"### c. origin {lat / 1000:g} ms", "")
            self.w(table(["system", "pass", "hit ratio", "IOPS", "p99 us"], rows), "")
            # goals
            ic2 = self.res["figures"].get("c", {}).get(str(lat), {}).get("ic", {}).get("2", {}).get("hit_ratio")
            if ic2:
                met = ic2["median"] >= 0.95
                self.goal(f"c: second-pass hit ratio >= 95% (origin {lat / 1000:g} ms)", met,
                          f"infercache {f_pct(ic2)}" + ("" if met else f"; short by {(0.95 - ic2['median']) * 100:.1f} points. "
                                                        + self.why_c(lat)))
            self.p99_goal("c", lat, [(str(p), lambda s, p=p: self.res["figures"]["c"][str(lat)].get(s, {}).get(str(p), {}).get("p99_us"))
                                     for p in passes], "pass")
        self.plot_c(passes)
        self.part_e()

    def why_c(self, lat):
        rr = sel(self.recs, wl="c", sys="ic", lat_us=lat, **{"pass": 1})
        ex = [r.get("extra", "") for r in rr]
        return (f"infercache counters after pass 1 (per repetition): {'; '.join(ex)}. Misses that were "
                "bypassed (not admitted, or no fill slot) stay misses on the next pass.")

    def p99_goal(self, wl, lat, items, what):
        """items: [(label, getter(sys) -> summary)]; ic p99 must be below every peer's."""
        won, lost = [], []
        for label, get in items:
            ic = get("ic")
            if not ic:
                continue
            peers = {q: get(q) for q in ("dmc", "bc")}
            worse = [(q, v) for q, v in peers.items() if v and v["median"] <= ic["median"]]
            if worse:
                lost.append(f"{what} {label}: infercache {f_num(ic['median'])} us vs "
                            + ", ".join(f"{SYS_NAMES[q]} {f_num(v['median'])} us "
                                        f"(+{(ic['median'] / v['median'] - 1) * 100:.0f}%"
                                        + (", ranges overlap" if v["max"] >= ic["min"] and ic["max"] >= v["min"] else "")
                                        + ")" for q, v in worse))
            else:
                won.append(label)
        if not won and not lost:
            return
        met = not lost
        text = (f"lower in {what}(s) {', '.join(won)}" if won else "") + \
               ("; " if won and lost else "") + ("; ".join(lost) if lost else "")
        if lost:
            text += (". A p99 of a few thousand samples here is set by millisecond stalls of the emulator on a "
                     "shared host (the raw devices show them too: see a and the origin table); where the "
                     "ranges overlap the difference is not significant in this run.")
        self.goal(f"{wl}: p99 lower than every peer (origin {lat / 1000:g} ms)", met, text)

    def part_e(self):
        recs = self.recs
        if not sel(recs, wl="e"):
            return
        last = max(r.get("pass") for r in sel(recs, wl="c"))
        self.w("## e: scan resistance", "")
        self.w(f"After the c passes (hot set cached), a one-pass sequential read of "
               f"{self.env.get('SCAN_MB')} MiB (2x the cache) outside the hot set, bs "
               f"{self.env.get('SCAN_BS')}, QD4; then two QD1 passes over the hot set. "
               "`before` is the last c pass.", "")
        for lat in self.lats:
            rows = []
            for s in CACHING:
                before = sel(recs, wl="c", sys=s, lat_us=lat, **{"pass": last})
                scan = sel(recs, wl="e", sys=s, lat_us=lat, phase="scan")
                a1 = sel(recs, wl="e", sys=s, lat_us=lat, phase="after1")
                a2 = sel(recs, wl="e", sys=s, lat_us=lat, phase="after2")
                if not a1:
                    continue
                e = {"hit_before": fig(before, "hit"), "hit_during_scan": fig(scan, "hit"),
                     "scan_mib_s": fig(scan, "bw_mib"),
                     "hit_after": fig(a1, "hit"), "hit_after2": fig(a2, "hit"),
                     "p99_after_us": fig(a1, "p99_us"), "iops_after": fig(a1, "iops"),
                     "ratios_to_peers": {q: {"p99_us": ratio_per_rep(a1, sel(recs, wl="e", sys=q, lat_us=lat, phase="after1"), "p99_us"),
                                             "iops": ratio_per_rep(a1, sel(recs, wl="e", sys=q, lat_us=lat, phase="after1"), "iops")}
                                         for q in CACHING if q != s}}
                self.put(["e", str(lat), s], e)
                rows.append([SYS_NAMES[s], f_pct(e["hit_before"]), f_pct(e["hit_during_scan"]), f_s(e["scan_mib_s"]),
                             f_pct(e["hit_after"]), f_s(e["p99_after_us"]), f_pct(e["hit_after2"])])
            self.w(f"### e. origin {lat / 1000:g} ms", "")
            self.w(table(["system", "hot hits before", "hits during scan", "scan MiB/s", "hot hits after",
                          "p99 us after", "hot hits, 2nd pass after"], rows), "")
            ic = self.res["figures"].get("e", {}).get(str(lat), {}).get("ic", {}).get("hit_after")
            if ic:
                met = ic["median"] >= 0.90
                ex = " | ".join(dict.fromkeys(r.get("extra", "") for r in sel(recs, wl="e", sys="ic", lat_us=lat, phase="scan")))
                self.goal(f"e: hot-set hit ratio after the scan >= 90% (origin {lat / 1000:g} ms)", met,
                          f"infercache {f_pct(ic)}; its counters (since create) after each scan: {ex}"
                          + ("" if met else
                             f"; short by {(0.90 - ic['median']) * 100:.1f} points: the scan's fills "
                             "evicted hot blocks (see evictions) — the policy let a one-touch stream in."))
            self.p99_goal("e", lat, [("after1", lambda s: self.res["figures"]["e"][str(lat)].get(s, {}).get("p99_after_us"))],
                          "hot pass")
        self.plot_e()

    def plot_c(self, passes):
        for lat in self.lats:
            c = self.res["figures"].get("c", {}).get(str(lat))
            if not c:
                continue
            lines = []
            for p in passes:
                cols = [p]
                for s in CACHING:
                    e = c.get(s, {}).get(str(p), {})
                    for k, sc in (("hit_ratio", 100), ("p99_us", 1)):
                        f = e.get(k)
                        cols += [f["median"] * sc, f["min"] * sc, f["max"] * sc] if f else [float("nan")] * 3
                lines.append(" ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in cols))
            dat = f"c_warmup_{lat}us.dat"
            self.write(dat, "# pass " + " ".join(f"{s}_hit {s}_hmin {s}_hmax {s}_p99 {s}_pmin {s}_pmax" for s in CACHING)
                       + "\n" + "\n".join(lines) + "\n")
            hp, pp = [], []
            for i, s in enumerate(CACHING):
                b = 2 + 6 * i
                hp.append(f"'{dat}' using ($1+{(i - 1) * 0.05}):{b}:{b + 1}:{b + 2} with yerrorlines lw 2 title '{SYS_NAMES[s]}'")
                pp.append(f"'{dat}' using ($1+{(i - 1) * 0.05}):{b + 3}:{b + 4}:{b + 5} with yerrorlines lw 2 title '{SYS_NAMES[s]}'")
            self.gp(f"c_warmup_{lat}us", f"c: warm-up over a hot set that fits the cache (origin {lat / 1000:g} ms)", "",
                    "set multiplot layout 1,2\nset xlabel 'pass'\nset xtics 1\nset key bottom right\n"
                    "set grid\n",
                    "set ylabel 'hit ratio %'\nset yrange [0:105]\nset title 'hit ratio per pass'\nplot "
                    + ", \\\n     ".join(hp)
                    + "\nset ylabel 'p99 latency us (log)'\nset logscale y\nset yrange [*:*]\nset key top right\nset title 'QD1 p99 per pass'\nplot "
                    + ", \\\n     ".join(pp) + "\nunset multiplot", size="1100,450")

    def plot_e(self):
        for lat in self.lats:
            e = self.res["figures"].get("e", {}).get(str(lat))
            if not e:
                continue
            lines = []
            for s in CACHING:
                x = e.get(s)
                if not x:
                    continue
                cols = []
                for k in ("hit_before", "hit_after", "hit_after2"):
                    f = x.get(k)
                    cols += [f["median"] * 100, f["min"] * 100, f["max"] * 100] if f else [0, 0, 0]
                lines.append(f'"{SYS_NAMES[s]}" ' + " ".join(f"{v:.2f}" for v in cols))
            dat = f"e_scan_{lat}us.dat"
            self.write(dat, "# system before(med min max) after after2\n" + "\n".join(lines) + "\n")
            self.gp(f"e_scan_{lat}us", f"e: hot-set hit ratio around a 2x-cache sequential scan (origin {lat / 1000:g} ms)",
                    "hit ratio %",
                    "set style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                    "set style fill solid 0.6 border -1\nset yrange [0:110]\nset key top center horizontal\n",
                    f"plot '{dat}' using 2:3:4:xtic(1) title 'before scan', '' using 5:6:7 title 'first pass after', "
                    "'' using 8:9:10 title 'second pass after'")

    # ---------------------------------------------------------- d
    def part_d(self):
        recs = self.recs
        if not sel(recs, wl="d"):
            return
        self.w("## d: Zipf(1.1) 4 KiB random reads over an origin 4x the cache", "")
        self.w(f"Origin {self.env.get('ORIGIN_MB')} MiB, cache devices {self.env.get('CACHE_MB')} MiB. "
               "Exactly the same request stream for every system: generated once by fio's Zipf generator "
               "(null engine, `write_iolog`; fio hashes the ranks over the device, so hot blocks are "
               "scattered) and replayed on each system (`read_iolog`, `replay_redirect`, no stalls): a QD16 "
               f"warm-up of {self.env.get('ZIPF_WARM')} reads (the three systems at the same time: it is "
               f"not timed), then {self.reps} measured QD1 windows of {self.env.get('ZIPF_IOS')} reads "
               "that continue the stream, one system at a time in a rotated order. `origin KiB/read` is "
               "what the system read from the origin per 4 KiB read (dm-cache promotes whole 32 KiB "
               "blocks). The raw origin row replays the first window.", "")
        for lat in self.lats:
            rows = []
            for s in CACHING + ["origin"]:
                rr = sel(recs, wl="d", sys=s, lat_us=lat, phase="measure")
                if not rr:
                    continue
                wu = sel(recs, wl="d", sys=s, lat_us=lat, phase="warmup")
                e = {"hit_ratio": fig(rr, "hit"), "warmup_hit_ratio": fig(wu, "hit"), "iops": fig(rr, "iops"),
                     "mean_us": fig(rr, "mean_us"), "p50_us": fig(rr, "p50_us"), "p99_us": fig(rr, "p99_us"),
                     "p999_us": fig(rr, "p999_us"), "origin_kib_per_read": fig(rr, "origin_kib_per_read"),
                     "ratios_to_peers": {q: {k: ratio_per_rep(rr, sel(recs, wl="d", sys=q, lat_us=lat, phase="measure"), k)
                                             for k in ("hit", "p99_us", "p999_us", "iops")}
                                         for q in CACHING if q != s}}
                self.put(["d", str(lat), s], e)
                rows.append([SYS_NAMES[s], f_pct(e["hit_ratio"]), f_pct(e["warmup_hit_ratio"]), f_s(e["iops"]),
                             f_s(e["p50_us"]), f_s(e["p99_us"]), f_s(e["p999_us"]), f_s(e["origin_kib_per_read"])])
            self.w(f"### d. origin {lat / 1000:g} ms", "")
            self.w(table(["system", "hit ratio", "hit ratio in warm-up", "IOPS", "p50 us", "p99 us", "p99.9 us",
                          "origin KiB/read"], rows), "")
            d = self.res["figures"].get("d", {}).get(str(lat), {})
            if d.get("ic", {}).get("hit_ratio"):
                ic = d["ic"]["hit_ratio"]["median"]
                worse = [q for q in ("dmc", "bc") if d.get(q, {}).get("hit_ratio") and d[q]["hit_ratio"]["median"] >= ic]
                txt = f"infercache {ic * 100:.2f}% vs " + ", ".join(
                    f"{SYS_NAMES[q]} {d[q]['hit_ratio']['median'] * 100:.2f}%" for q in ("dmc", "bc") if d.get(q, {}).get("hit_ratio"))
                bnd = self.zipf_bounds()
                if bnd:
                    txt += (f". The warm-up read {bnd['warm_distinct']:,} distinct blocks "
                            f"({bnd['warm_distinct'] / bnd['slots']:.1f}x infercache's slots)")
                    txt += (f". Bounds for this stream over the measured windows: {bnd['first']:,} of its "
                            f"{bnd['reads']:,} reads are the first read of their block (a miss for any cache), "
                            f"so no cache exceeds {bnd['ceiling'] * 100:.2f}%; Belady's optimal replacement "
                            f"(with bypass) over {bnd['slots']:,} slots would hit {bnd['opt_full'] * 100:.2f}% "
                            f"fully associative and {bnd['opt_sets'] * 100:.2f}% in infercache's "
                            f"{bnd['sets']:,} sets of {IC_WAYS}")
                    self.put(["d", "bounds"], bnd)
                txt += self.why_d(lat, bnd) if worse else ""
                if worse:
                    txt += ("; below or level by " + ", ".join(f"{(d[q]['hit_ratio']['median'] - ic) * 100:.2f} points ({SYS_NAMES[q]})" for q in worse)
                            + ". All three replayed the same request stream.")
                self.goal(f"d: Zipf hit ratio above dm-cache and bcache (origin {lat / 1000:g} ms)", not worse, txt)
            self.p99_goal("d", lat, [("measured", lambda s: d.get(s, {}).get("p99_us"))], "window")
        self.plot_d()

    def why_d(self, lat, bnd):
        """The infercache counters over the measured windows, as a sentence."""
        import re

        def kv(extra):
            return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", extra)}
        rr = sel(self.recs, wl="d", sys="ic", lat_us=lat)
        warm = [r for r in rr if r.get("phase") == "warmup"]
        wins = [r for r in rr if r.get("phase") == "measure"]
        if not warm or not wins:
            return ""
        last = max(wins, key=lambda r: r.get("t", 0))
        a, b = kv(warm[0].get("extra", "")), kv(last.get("extra", ""))
        m = re.search(r"cached=(\d+)/(\d+)", last.get("extra", ""))
        reads = sum(r["reads"] for r in wins)
        miss = reads - sum(r["hits"] for r in wins)
        d = {k: b.get(k, 0) - a.get(k, 0) for k in ("fills", "rejects", "sequential", "evictions")}
        out = f". Over the measured windows infercache missed {miss:,} of {reads:,} reads"
        if bnd and bnd["reads"] == reads:
            out += f" ({miss - bnd['first']:,} of them not first reads"
            for q in ("bc", "dmc"):
                qq = sel(self.recs, wl="d", sys=q, lat_us=lat, phase="measure")
                if sum(r["reads"] for r in qq) == reads:
                    out += f"; {SYS_NAMES[q]} {reads - sum(r['hits'] for r in qq) - bnd['first']:,}"
            out += ")"
        out += (f": it filled {d['fills']:,} (evicting {d['evictions']:,}) and its admission filter rejected "
                f"{d['rejects']:,}")
        if m:
            out += (f" while {int(m.group(2)) - int(m.group(1)):,} of its {int(m.group(2)):,} slots were "
                    "still free (a set can be full while the cache is not), so rejected blocks miss again")
        return out

    def zipf_bounds(self):
        """What any cache of infercache's size could hit on the replayed d stream.

        The guest saves the stream's offsets (d_stream.txt, one per read, in
        replay order: ZIPF_WARM warm-up reads, then the measured windows).
        Returns the number of measured reads, those that are the first read
        of their block, the ceiling that leaves, and the hit ratios over the
        measured windows of Belady's optimal replacement (with bypass) over
        infercache's slots, fully associative and in its sets (the driver's
        set hash), or None without the stream or the slot count.
        """
        import re
        try:
            ex = next(r.get("extra", "") for r in self.recs if r.get("wl") == "d" and r.get("sys") == "ic")
            slots = int(re.search(r"cached=\d+/(\d+)", ex).group(1))
            warm, ios = int(self.env["ZIPF_WARM"]), int(self.env["ZIPF_IOS"])
            with open(os.path.join(self.args.raw, "d_stream.txt")) as f:
                blocks = [int(x) // 4096 for x in f if x.strip()]
        except (StopIteration, AttributeError, KeyError, ValueError, OSError):
            return None
        end = min(len(blocks), warm + self.reps * ios)
        if end <= warm:
            return None
        blocks = blocks[:end]
        seen = set(blocks[:warm])
        first = 0
        for b in blocks[warm:]:
            if b not in seen:
                first += 1
                seen.add(b)
        warm_distinct = len(set(blocks[:warm]))
        nsets = slots // IC_WAYS
        reads = end - warm
        full = belady_hits(blocks, warm, lambda b: 0, slots)
        sets = belady_hits(blocks, warm, lambda b: ic_oblock_set(b, nsets), IC_WAYS)
        return {"reads": reads, "first": first, "ceiling": 1 - first / reads, "slots": slots, "sets": nsets,
                "warm_distinct": warm_distinct,
                "opt_full": full / reads, "opt_sets": sets / reads}

    def plot_d(self):
        for lat in self.lats:
            d = self.res["figures"].get("d", {}).get(str(lat))
            if not d:
                continue
            lines = []
            for s in CACHING + ["origin"]:
                x = d.get(s)
                if not x:
                    continue
                cols = []
                for k in ("p50_us", "p99_us", "p999_us"):
                    f = x.get(k)
                    cols += [f["median"], f["min"], f["max"]] if f else [0, 0, 0]
                lines.append(f'"{SYS_NAMES[s]}" ' + " ".join(f"{v:.1f}" for v in cols))
            dat = f"d_zipf_{lat}us.dat"
            self.write(dat, "# system p50(med min max) p99 p99.9 (us)\n" + "\n".join(lines) + "\n")
            self.gp(f"d_zipf_{lat}us", f"d: Zipf(1.1) QD1 read latency percentiles (origin {lat / 1000:g} ms)",
                    "latency us (log)",
                    "set style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                    "set style fill solid 0.6 border -1\nset logscale y\nset yrange [10:*]\nset key top left\n",
                    f"plot '{dat}' using 2:3:4:xtic(1) title 'p50', '' using 5:6:7 title 'p99', "
                    "'' using 8:9:10 title 'p99.9'")

    # ---------------------------------------------------------- f
    def part_f(self):
        recs = self.recs
        if not sel(recs, wl="f"):
            return
        env = self.env
        rows_mib = int(env.get("F_ROWS", 0)) * 4 // 1024
        self.w("## f: embedding-table lookups on ext4 (tools/bench/embed_lookup.c)", "")
        self.w(f"ext4 on each system; a table of {env.get('F_ROWS')} rows x 4 KiB ({rows_mib} MiB, "
               f"{rows_mib / max(1, int(env.get('CACHE_MB', 1))):.1f}x the cache) written through the system, "
               f"page cache dropped; {env.get('F_THREADS')} threads, each one O_DIRECT pread of a row at a "
               "time (so QD = threads), rows chosen by Zipf(1.1) with popular rows scattered over the file "
               f"(a fixed permutation), every row's header checked. Warm-up {env.get('F_WARM')} lookups "
               f"(cold start), then {self.reps} windows of {env.get('F_OPS')} lookups.", "")
        rows = []
        base = sel(recs, wl="f", sys="raw", phase="measure")
        errors = sum(r["m"].get("errors", 0) for r in sel(recs, wl="f"))
        for s in ("raw", "origin", "ic", "dmc", "bc"):
            rr = sel(recs, wl="f", sys=s, phase="measure")
            if not rr:
                continue
            wu = sel(recs, wl="f", sys=s, phase="warmup")
            e = {"lookups_per_s": fig(rr, "iops"), "mean_us": fig(rr, "mean_us"), "p50_us": fig(rr, "p50_us"),
                 "p99_us": fig(rr, "p99_us"), "p999_us": fig(rr, "p999_us"), "hit_ratio": fig(rr, "hit"),
                 "warmup_lookups_per_s": fig(wu, "iops"), "warmup_p99_us": fig(wu, "p99_us"),
                 "warmup_hit_ratio": fig(wu, "hit"),
                 "ratio_to_raw": ratio_per_rep(rr, base, "iops"),
                 "ratios_to_peers": {q: {k: ratio_per_rep(rr, sel(recs, wl="f", sys=q, phase="measure"), k)
                                         for k in ("iops", "p99_us")}
                                     for q in ("raw", "origin", "ic", "dmc", "bc") if q != s}}
            self.put(["f", s], e)
            rows.append([SYS_NAMES[s], f_s(e["lookups_per_s"]), f_ratio(e["ratio_to_raw"]), f_s(e["p50_us"]),
                         f_s(e["p99_us"]), f_s(e["p999_us"]), f_pct(e["hit_ratio"]),
                         f_s(e["warmup_lookups_per_s"]), f_pct(e["warmup_hit_ratio"])])
        self.w(table(["system", "lookups/s", "x raw cache", "p50 us", "p99 us", "p99.9 us", "hits",
                      "cold-start lookups/s", "cold-start hits"], rows), "")
        self.w(f"Row header mismatches over all lookups: {errors}.", "")
        self.res["figures"].setdefault("f", {})["row_errors"] = errors
        lines = []
        for s in ("raw", "origin", "ic", "dmc", "bc"):
            x = self.res["figures"]["f"].get(s)
            if not x:
                continue
            cols = []
            for k in ("lookups_per_s", "p99_us"):
                f = x.get(k)
                cols += [f["median"], f["min"], f["max"]] if f else [0, 0, 0]
            lines.append(f'"{SYS_NAMES[s]}" ' + " ".join(f"{v:.1f}" for v in cols))
        self.write("f_embed.dat", "# system lookups/s(med min max) p99_us(med min max)\n" + "\n".join(lines) + "\n")
        self.gp("f_embed", f"f: embedding lookups on ext4, {self.env.get('F_THREADS')} threads, Zipf(1.1) rows", "",
                "set multiplot layout 1,2\nset style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                "set style fill solid 0.6 border -1\nset yrange [0:*]\nset xtics rotate by -25\nunset key\n",
                "set title 'lookups/s'\nplot 'f_embed.dat' using 2:3:4:xtic(1)\n"
                "set title 'p99 latency us'\nplot 'f_embed.dat' using 5:6:7:xtic(1) lc 2\nunset multiplot",
                size="1100,450")

    # ---------------------------------------------------------- output
    def write(self, name, text):
        with open(os.path.join(self.args.out, name), "w") as f:
            f.write(text)

    def gp(self, name, title, ylabel, setup, plot, size="900,480"):
        self.plots.append(name)
        self.write(name + ".gp", gp_head("report.py", name, size)
                   + f"set title \"{title}\"\nset ylabel '{ylabel}'\nset grid ytics\n{setup}{plot}\n")

    def header(self):
        env = self.env
        return header_lines(self.args, env, "dm-infercache benchmark results",
                            "QEMU TCG (software emulation, no KVM); kernel command line "
                            f"`{env.get('cmdline', '')}` (no slub_debug / init_on_free)") + [
            f"- Devices: cache = QEMU NVMe (one controller per system, {env.get('CACHE_MB')} MiB, host file "
            f"in the page cache) or brd; origin = null_blk, memory backed, timer completion "
            f"({', '.join(str(int(x) / 1000) + ' ms' for x in env.get('LATS', '500').split())}), "
            f"32 tags, {env.get('ORIGIN_MB')} MiB, recreated for every experiment. dm-cache: 4 MiB metadata "
            "+ rest of the device as its cache (dm-linear split), 32 KiB blocks, smq, writethrough. "
            f"bcache: make-bcache {env.get('bc_bucket_kib', '?')} KiB buckets, writethrough, sequential_cutoff 0, congested "
            "thresholds 0. infercache: default table (4 KiB blocks, writethrough).",
            f"- Repetitions: {self.reps} of every measured figure; tables give median [min-max].",
            ""]

    def notes(self):
        return ["## Emulator artefacts and caveats", "",
                "- Everything runs under QEMU TCG on a 2-core host that other jobs share: the CPU is "
                "emulated (5-20x slower than native) and the host's load varies during the run. Absolute "
                "IOPS and latencies are therefore not those of real hardware; compare ratios within this "
                "run (runs are interleaved across systems to spread the drift). Software overhead "
                "(device-mapper, the cache's own logic) weighs far more than on real hardware, because "
                "the emulated NVMe and brd are themselves mostly CPU work.",
                "- null_blk completes every I/O after the same hrtimer delay (no seek model), so the "
                "origin's tail is flat and the p99 of a cache reflects its software path and its misses. "
                "Timer slack under TCG makes the measured origin latency larger than the configured one "
                "(see the origin table).",
                "- QEMU's NVMe is backed by a host file in the host page cache: its latency is emulation "
                "cost, not flash. brd is a memcpy with no queue and no interrupt.",
                "- bcache caches written data in writethrough mode, so in f it starts with part of the "
                "table cached; infercache and dm-cache do not allocate on a write miss.",
                "- bcache's hit counters (stats_total) are only updated every ~14 s, so bcache's hit "
                "ratio here is 1 - (origin reads / front-device reads) over each run (a bcache miss reads "
                "exactly the missed range from the origin; readahead is 0). infercache and dm-cache "
                "hit ratios come from their status lines.",
                "- Cache sizes are small (see Devices) so that warm-up and a 4x-cache Zipf origin fit in "
                "the 30-minute budget under TCG; the ratios between systems, not the sizes, are the "
                "result. The sizes are knobs (tools/bench/README.md).", ""]

    def build(self):
        if not any(r.get("wl") in ("a", "b", "c", "d", "e", "f") for r in self.recs):
            return  # only workload w or s ran: leave results.* alone
        for fn in (self.part_ab, self.part_ce, self.part_d, self.part_f):
            try:
                fn()
            except Exception as e:  # keep the report going; say what broke
                import traceback
                traceback.print_exc()
                self.w(f"(report error in {fn.__name__}: {e})", "")
        body = self.header() + goal_lines(self.goals) + self.md + self.notes()
        self.res["records"] = [{k: v for k, v in r.items()} for r in self.recs]
        # no json default here: a figure that JSON cannot hold fails, as it always has
        write_report(self.write, "results", body, self.res, self.args, self.plots, default=None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--wall", type=int, default=0)
    ap.add_argument("--vm-status", type=int, default=0)
    ap.add_argument("--host", default="")
    ap.add_argument("--qemu", default="")
    ap.add_argument("--date", default="")
    ap.add_argument("--git", default="?")
    ap.add_argument("--guest-rc", default="?")
    a = ap.parse_args()
    if not a.date:
        import datetime
        a.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    os.makedirs(a.out, exist_ok=True)
    recs, env = load(a.raw)
    Report(recs, env, a).build()
    if any(r.get("wl") in ("wb", "drain") for r in recs):
        import report_wb  # workload w: writeback.md, writeback.json, wb_*.gp
        report_wb.build(recs, env, a)
    if any(r.get("wl") == "scale" for r in recs):
        import report_scaling  # workload s: scaling.md, scaling.json, scaling.gp
        report_scaling.build(recs, env, a)


if __name__ == "__main__":
    main()
