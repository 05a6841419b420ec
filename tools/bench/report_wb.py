# SPDX-License-Identifier: GPL-2.0
"""Workload w of tools/bench (writeback): raw results -> writeback.{md,json} + plots.

Called by report.py when the raw results hold writeback records (written by
tools/bench/guest-writeback.sh):

- "wb" (w1): one run per system and repetition: one fio process with a
  Zipf(1.1) 4 KiB random-read job logging every I/O (completion time in unix
  ms, total latency in ns) and a write-burst job starting after a few seconds;
  plus RAW/wb/<id>.trace, the origin's read/write sectors sampled every 0.1 s.
  Phases, from the logs: (a) from 0.5 s after the first read to the burst's
  first submission; the burst (first submission to last completion); (b) from
  the burst's last completion until the origin has received all the burst's
  sectors (= everything is written back), or the end of the run if never.
- "drain" (w2): dirty a known amount with writeback held back, let it go,
  time until the origin has it all; "wb_raw": the origin alone written with
  fio in the same patterns.

Ratios are per repetition ((b)/(a) within one run; drain/raw within one
repetition), then median [min-max].
"""
import gzip
import json
import math
import os
import re

from report import f_num, f_ratio, f_s, goal_lines, gp_head, header_lines, sel, summ, table, write_report

NAMES = {
    "icw": "infercache (writeback)",
    "wc": "dm-writecache",
    "bcw": "bcache (writeback_percent 10)",
    "bcw0": "bcache (writeback_percent 0)",
    "origin": "raw origin",
}
ORDER = ["icw", "wc", "bcw", "bcw0"]
METHODS = {
    ("icw", "idle"): "infercache, idle drain (writeback_resume)",
    ("icw", "flush"): "infercache, `flush` message",
    ("wc", "cleaner"): "dm-writecache, `cleaner` message",
    ("bcw0", "wp0"): "bcache, writeback_percent 0 (writeback_running 1)",
}
GOAL_RATIO, GOAL_DRAIN = 1.3, 0.8


def pct(sorted_v, q):
    """nearest-rank percentile of a sorted list"""
    if not sorted_v:
        return None
    k = max(0, min(len(sorted_v) - 1, math.ceil(q * len(sorted_v)) - 1))
    return sorted_v[k]


def lat_stats(samples, t0, t1):
    """samples: [(t_ms, lat_us)] completed in (t0, t1]: n, iops, mean/p50/p99/p99.9 (us)"""
    v = sorted(l for t, l in samples if t0 < t <= t1)
    dur = (t1 - t0) / 1000.0
    if not v or dur <= 0:
        return {"n": len(v), "dur_s": dur}
    return {"n": len(v), "dur_s": dur, "iops": len(v) / dur, "mean_us": sum(v) / len(v),
            "p50_us": pct(v, 0.50), "p99_us": pct(v, 0.99), "p999_us": pct(v, 0.999)}


def read_log(path):
    """fio lat log -> [(t_ms, lat_us)]"""
    out = []
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt") as f:
        for line in f:
            p = line.split(",")
            if len(p) >= 2:
                out.append((int(p[0]), int(p[1]) / 1000.0))
    return out


def find_log(raw, fid, job):
    d = os.path.join(raw, "wb")
    for n in sorted(os.listdir(d)):
        if n.startswith(f"{fid}.{job}_lat.") and (n.endswith(".log") or n.endswith(".log.gz")):
            return os.path.join(d, n)
    return None


def read_trace(path):
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                out.append((int(p[0]), int(p[1]), int(p[2])))
    return out


def cap(s):
    return s[:1].upper() + s[1:]


def kv(extra):
    return dict(re.findall(r"(\w+)=([^,]*)", extra or ""))


class WbReport:
    def __init__(self, recs, env, args, header_lines):
        self.recs, self.env, self.args = recs, env, args
        self.header_lines = header_lines
        self.md, self.goals, self.plots = [], [], []
        self.res = {"figures": {}, "goals": [], "runs": [], "drains": [], "env": env}

    def w(self, *lines):
        self.md.extend(lines)

    def goal(self, name, met, text):
        self.goals.append((name, met, text))
        self.res["goals"].append({"goal": name, "met": met, "detail": text})

    def write(self, name, text):
        with open(os.path.join(self.args.out, name), "w") as f:
            f.write(text)

    def gp(self, name, title, setup, plot, size="900,480"):
        self.plots.append(name)
        self.write(name + ".gp", gp_head("report_wb.py", name, size, enhanced=False)
                   + f"set title \"{title}\"\nset grid ytics\n{setup}{plot}\n")

    # ------------------------------------------------------------ w1
    def analyse_run(self, r):
        raw = self.args.raw
        fid = r["fio"]
        rl, bl = find_log(raw, fid, "read"), find_log(raw, fid, "burst")
        tp = os.path.join(raw, "wb", fid + ".trace")
        if not rl or not bl or not os.path.exists(tp):
            raise FileNotFoundError(f"{fid}: logs or trace missing")
        reads, burst, trace = read_log(rl), read_log(bl), read_trace(tp)
        ws0, bsec = int(r["ws0"]), int(r["burst_sectors"])
        t_first = min(t for t, _ in reads)
        t_last = max(t for t, _ in reads)
        t_bs = min(t - l / 1000.0 for t, l in burst)
        t_be = max(t for t, _ in burst)

        def wr(t):  # origin sectors written since the run started, at time t
            v = 0
            for tt, _, ws in trace:
                if tt > t:
                    break
                v = ws - ws0
            return v
        t_launch = int(r.get("t_launch_ms") or t_bs)  # the burst's fio process started
        t_rel = int(r.get("t_release_ms") or t_be)  # writeback let go (or the burst's end)
        t_clean = next((tt for tt, _, ws in trace if tt >= t_bs and ws - ws0 >= bsec), None)
        t_b_end = t_clean if t_clean is not None else t_last
        x = {"sys": r["sys"], "rep": r.get("rep"), "id": fid, "hold": r.get("hold", 0),
             "a": lat_stats(reads, t_first + 500, min(t_launch, t_bs)),
             "burst": lat_stats(reads, t_bs, t_be),
             "b": lat_stats(reads, t_rel, max(t_b_end, t_rel)),
             "burst_plus_b": lat_stats(reads, t_bs, max(t_b_end, t_rel)),
             "burst_s": (t_be - t_bs) / 1000.0,
             "burst_mib_s": bsec / 2048 / max(1e-3, (t_be - t_bs) / 1000.0),
             "origin_mib_in_burst": (wr(t_be) - wr(t_bs)) / 2048,
             "dirty_mib_at_b_start": (bsec - wr(t_rel)) / 2048,
             "written_back_mib_in_b": (wr(t_b_end) - wr(t_rel)) / 2048,
             "b_s": max(0, t_b_end - t_rel) / 1000.0,
             "clean": t_clean is not None,
             "dirty_mib_at_end": max(0, bsec - wr(t_last)) / 2048,
             "hit_ratio": (r["hits"] / r["reads"]) if r.get("reads") else None,
             "extra": r.get("extra", "")}
        x["ratio_b_a"] = (x["b"]["p99_us"] / x["a"]["p99_us"]) if x["b"].get("p99_us") and x["a"].get("p99_us") else None
        x["ratio_burst_plus_b_a"] = (x["burst_plus_b"]["p99_us"] / x["a"]["p99_us"]) \
            if x["burst_plus_b"].get("p99_us") and x["a"].get("p99_us") else None
        x["_series"] = (reads, trace, t_bs, t_rel, ws0, bsec)
        return x

    def part_w1(self):
        runs = []
        for r in sel(self.recs, wl="wb"):
            try:
                runs.append(self.analyse_run(r))
            except (OSError, ValueError, KeyError) as e:
                print(f"report_wb: {r.get('fio')}: {e}")
        if not runs:
            return
        # infercache's backoffs per run: the counter is cumulative per table
        prev = 0
        for x in sorted((x for x in runs if x["sys"] == "icw"), key=lambda x: x["id"]):
            b = kv(x["extra"]).get("backoffs")
            if b and b.isdigit():
                x["ic_backoffs"] = int(b) - prev
                prev = int(b)
        self.runs = runs
        env = self.env
        systems = [s for s in ORDER if any(x["sys"] == s for x in runs)]
        qd = env.get("WB_QD", "1")
        hold = env.get("WB_HOLD", "0") == "1"
        self.w("## w1: read latency while a write burst is written back", "")
        self.w(f"Zipf(1.1) 4 KiB random reads (fio, `direct=1`, QD{qd}, "
               f"{'psync' if qd == '1' else 'libaio'}) over the first {env.get('WB_READ_MB')} MiB, warmed first "
               "(infercache and bcache hold all of it; dm-writecache does not cache reads: its reads go to the "
               f"origin), run without a pause through the whole run. After {env.get('WB_BASE_S')} s of reads, a "
               f"burst (a second fio process) of {env.get('WB_BURST_MB')} MiB "
               f"({int(env.get('WB_BURST_MB', 0)) * 100 // max(1, int(env.get('CACHE_MB', 1)))}% of the cache) of "
               f"{'4 KiB random writes, each block once, scattered over ' + str(4 * int(env.get('WB_BURST_MB', 0))) + ' MiB' if env.get('WB_BURST') == 'rand' else '128 KiB sequential writes'}"
               ", QD16. "
               + ("Writeback is held back while the burst is written (infercache `writeback_pause`, bcache "
                  "`writeback_running 0`, dm-writecache by its default watermarks) and let go when it ends "
                  "(`writeback_resume`, `writeback_running 1`, dm-writecache's `cleaner` message), so every system "
                  "starts (b) with the whole burst dirty and writes all of it back in (b) unless it holds back "
                  "by itself. " if hold else
                  "Writeback is not held back: each system writes back during the burst as it sees fit. ")
               + "Every read is logged; the phases are cut from the logs: **(a)** before the burst (from 0.5 s "
               "after the first read), **burst** while it is written, **(b)** from "
               + ("letting writeback go" if hold else "the burst's end")
               + " until the origin has received all of the burst (everything written back; the origin's write "
               f"sectors are sampled every 0.1 s), at most {env.get('WB_WINDOW_S')} s. Ratios are (b)/(a) within "
               f"each run; {env.get('WB_REPS')} runs per system, systems in a rotated order. `written back in (b)` "
               "is what reached the origin during (b): a system that writes back little in (b) does not pay for "
               "it there.", "")
        rows, fig = [], {}
        for s in systems:
            xs = [x for x in runs if x["sys"] == s]
            e = {k: summ([x[ph].get(m) for x in xs]) for ph in ("a", "burst", "b") for m in ("p99_us",)
                 for k in [f"{ph}_{m}"]}
            e.update({f"{ph}_{m}": summ([x[ph].get(m) for x in xs]) for ph in ("a", "burst", "b", "burst_plus_b")
                      for m in ("p50_us", "p99_us", "p999_us", "iops", "mean_us", "n")})
            e["ratio_b_a"] = summ([x["ratio_b_a"] for x in xs])
            e["ratio_burst_plus_b_a"] = summ([x["ratio_burst_plus_b_a"] for x in xs])
            for k in ("b_s", "written_back_mib_in_b", "dirty_mib_at_b_start", "origin_mib_in_burst", "burst_mib_s",
                      "dirty_mib_at_end", "hit_ratio"):
                e[k] = summ([x[k] for x in xs])
            e["clean_runs"] = sum(1 for x in xs if x["clean"])
            e["runs"] = len(xs)
            if s == "icw":
                e["backoffs"] = summ([x.get("ic_backoffs") for x in xs])
            fig[s] = e
            rows.append([NAMES[s], f_s(e["a_p50_us"]), f_s(e["a_p99_us"]), f_s(e["burst_p99_us"]), f_s(e["b_p50_us"]),
                         f_s(e["b_p99_us"]), f"**{f_ratio(e['ratio_b_a'])}**", f_s(e["a_iops"]), f_s(e["b_iops"]),
                         f_s(e["b_s"], " s"), f_s(e["written_back_mib_in_b"]), f"{e['clean_runs']}/{e['runs']}",
                         f_s(e["origin_mib_in_burst"])])
        self.res["figures"]["w1"] = fig
        self.w(table(["system", "(a) p50 us", "(a) p99 us", "burst p99 us", "(b) p50 us", "(b) p99 us",
                      "(b)/(a) p99", "(a) IOPS", "(b) IOPS", "(b) lasted", "MiB written back in (b)",
                      "clean by the end", "MiB to the origin during the burst"], rows), "")
        hr = [f"{NAMES[s]} {f_s(fig[s]['hit_ratio'], '', 100)}%" for s in systems if s != "wc" and fig[s]["hit_ratio"]]
        if hr:
            self.w("Read hit ratio over the whole run (the system's counters): " + "; ".join(hr) + ".", "")
        # per-run detail
        drows = []
        for x in sorted(runs, key=lambda x: x["id"]):
            ex = kv(x["extra"])
            note = ""
            if x["sys"] == "icw":
                note = (f"backoffs {x.get('ic_backoffs', '?')}, target {ex.get('target_us', '?')} us, "
                        f"last window p99 {ex.get('read_p99_us', '?')} us, dirty {ex.get('dirty', '?')}")
            elif x["sys"] == "wc":
                note = f"free {ex.get('free', '?')}/{ex.get('blocks', '?')}"
            else:
                note = f"dirty_data {ex.get('dirty_data', '?')}"
            drows.append([x["id"], NAMES[x["sys"]], x["rep"], f_num(x["a"].get("p99_us")), f_num(x["burst"].get("p99_us")),
                          f_num(x["b"].get("p99_us")), f"{x['ratio_b_a']:.2f}x" if x["ratio_b_a"] else "-",
                          f"{x['b']['n']}", f"{x['burst_s']:.1f} s", f"{x['b_s']:.1f} s",
                          f"{x['written_back_mib_in_b']:.1f}", "yes" if x["clean"] else "no", note])
            self.res["runs"].append({k: v for k, v in x.items() if k != "_series"})
        self.w("<details><summary>Every run</summary>", "")
        self.w(table(["run", "system", "rep", "(a) p99", "burst p99", "(b) p99", "(b)/(a)", "(b) reads", "burst took",
                      "(b) lasted", "MiB written back in (b)", "clean", "system's counters after"], drows), "")
        self.w("</details>", "")
        self.w1_goals(fig)
        self.plot_w1(fig, systems)

    def w1_goals(self, fig):
        ic = fig.get("icw")
        if not ic or not ic["ratio_b_a"]:
            return
        r = ic["ratio_b_a"]
        met = r["median"] <= GOAL_RATIO
        txt = (f"infercache (b)/(a) read p99 {f_ratio(r)}: {f_num(ic['b_p99_us']['median'])} us while writing back "
               f"vs {f_num(ic['a_p99_us']['median'])} us before; (b) lasted {f_s(ic['b_s'], ' s')} and wrote back "
               f"{f_s(ic['written_back_mib_in_b'])} MiB; clean in {ic['clean_runs']}/{ic['runs']} runs")
        if ic.get("backoffs"):
            txt += f"; the controller backed off in {f_s(ic['backoffs'])} windows per run"
        if not met:
            txt += f". Missed by {r['median'] / GOAL_RATIO - 1:.0%} (goal {GOAL_RATIO}x). " + self.why_w1(fig)
        self.goal(f"w1: infercache read p99 with writeback running <= {GOAL_RATIO}x without", met, txt)
        peers = [q for q in ("wc", "bcw") if fig.get(q) and fig[q]["b_p99_us"]]
        if ic["b_p99_us"] and peers:
            worse = [q for q in peers if fig[q]["b_p99_us"]["median"] <= ic["b_p99_us"]["median"]]
            parts = []
            for q in peers + (["bcw0"] if fig.get("bcw0") and fig["bcw0"]["b_p99_us"] else []):
                v = fig[q]
                parts.append(f"{NAMES[q]} {f_s(v['b_p99_us'])} us ({f_s(v['written_back_mib_in_b'])} MiB written back "
                             f"in (b), which lasted {f_s(v['b_s'], ' s')})")
            txt = f"(b) read p99: infercache {f_s(ic['b_p99_us'])} us vs " + "; ".join(parts)
            if worse:
                txt += ". Missed against " + ", ".join(
                    f"{NAMES[q]} by {ic['b_p99_us']['median'] / fig[q]['b_p99_us']['median'] - 1:.0%}" for q in worse)
                txt += ". " + self.why_peer(fig, worse)
            self.goal("w1: infercache read p99 under writeback better than dm-writecache and bcache", not worse, txt)

    def why_w1(self, fig):
        ic = fig["icw"]
        why = []
        bs = ic["b_s"]["median"] if ic["b_s"] else 0
        wb = ic["written_back_mib_in_b"]["median"] if ic["written_back_mib_in_b"] else 0
        maxage = 10
        if bs and bs > maxage - 2:
            why.append(f"(b) lasted {bs:.1f} s, past max_dirty_age ({maxage} s by default): once the burst's "
                       "deadlines pass, writeback runs at full speed whatever the read latency, so the end of "
                       "(b) is writeback at full speed, which sets the p99")
        ex = [kv(x["extra"]) for x in self.runs if x["sys"] == "icw"]
        tg = [e.get("target_us") for e in ex if e.get("target_us")]
        if tg:
            a99 = ic["a_p99_us"]["median"]
            why.append(f"the controller's automatic target at the end of the runs: {', '.join(tg)} us, "
                       f"{min(int(t) for t in tg) / a99:.1f}-{max(int(t) for t in tg) / a99:.1f}x the (a) p99 "
                       f"({f_num(a99)} us) where 1.2x is meant: its baseline is learnt from 100 ms windows in which "
                       "no writeback ran (half way towards a faster one, 1/16 towards a slower one; each window's "
                       "p99 rounded up to the top of its histogram bucket, up to +25%), and with a p99 that swings "
                       "window to window on a loaded emulated host it both over- and under-shoots; it backed off in "
                       f"{f_s(ic['backoffs'])} windows per run" if ic.get("backoffs") else "")
        burst = ic.get("burst_p99_us")
        if burst and burst["median"] > ic["a_p99_us"]["median"] * GOAL_RATIO:
            why.append(f"the burst itself already lifts the p99 to {f_num(burst['median'])} us (writes and reads "
                       "share the emulated NVMe and the 2 vCPUs)")
        if wb:
            why.append(f"{wb:.1f} MiB written back in {bs:.1f} s = {wb / max(bs, 1e-3):.1f} MiB/s while reads ran")
        why.append("under TCG the emulated NVMe and null_blk are CPU work on the same 2 vCPUs as fio: writeback "
                   "steals CPU from the reads even when the devices are idle")
        return cap("; ".join(w for w in why if w)) + "."

    def why_peer(self, fig, worse):
        out = []
        burst = float(self.env.get("WB_BURST_MB", 0) or 0)
        for q in worse:
            v = fig[q]
            wb = v["written_back_mib_in_b"]["median"] if v["written_back_mib_in_b"] else 0
            if burst and wb < burst / 2:
                out.append(f"{NAMES[q]} wrote back only {wb:.1f} of the {burst:g} MiB during its (b) "
                           f"({v['clean_runs']}/{v['runs']} runs clean by the end): its reads ran beside little "
                           "writeback, the rest stays dirty for later"
                           + (" (its PI controller aims at 10% dirty and re-computes the rate every 5 s)"
                              if q == "bcw" else ""))
            elif q == "wc":
                out.append("dm-writecache's reads all go to the origin (it does not cache reads), and its (b) was "
                           f"{f_s(v['b_s'], ' s')}")
        return cap("; ".join(out)) + ("." if out else "")

    def plot_w1(self, fig, systems):
        lines = []
        for s in systems:
            cols = []
            for k in ("a_p99_us", "burst_p99_us", "b_p99_us"):
                f = fig[s].get(k)
                cols += [f["median"], f["min"], f["max"]] if f else [0, 0, 0]
            lines.append(f'"{NAMES[s]}" ' + " ".join(f"{v:.1f}" for v in cols))
        self.write("wb_p99.dat", "# system (a)_p99(med min max) burst_p99 (b)_p99 (us)\n" + "\n".join(lines) + "\n")
        self.gp("wb_p99", f"w1: Zipf 4 KiB read p99 before, during and after a {self.env.get('WB_BURST_MB')} MiB write burst",
                "set ylabel 'read p99 us (log)'\nset style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                "set style fill solid 0.6 border -1\nset logscale y\nset yrange [10:*]\nset key top left\n"
                "set xtics rotate by -15\n",
                "plot 'wb_p99.dat' using 2:3:4:xtic(1) title '(a) no writeback', '' using 5:6:7 title 'burst', "
                "'' using 8:9:10 title '(b) writing back'")
        # timeline of the first repetition: read p99 per 0.5 s and dirty MiB
        tl = []
        for i, s in enumerate(systems):
            xs = sorted((x for x in self.runs if x["sys"] == s), key=lambda x: x["rep"] or 0)
            if not xs:
                continue
            reads, trace, t_bs, t_be, ws0, bsec = xs[0]["_series"]  # t_be: (b) starts
            bins = {}
            for t, l in reads:
                bins.setdefault(int((t - t_be) // 200), []).append(l)
            lat = [f"{k * 0.2 + 0.1:.2f} {pct(sorted(v), 0.99):.1f}" for k, v in sorted(bins.items()) if len(v) >= 20]
            # before the burst nothing is dirty; the burst's own writes are not
            # logged per block, so during it this counts written-but-not-yet-
            # written-back data as if the whole burst were already there
            dirty = [f"{(tt - t_be) / 1000:.2f} {0.0 if tt < t_bs else max(0.0, (bsec - (ws - ws0)) / 2048):.2f}"
                     for tt, _, ws in trace]
            self.write(f"wb_timeline_{s}.dat", "# s since (b) began, read p99 us per 0.2 s\n" + "\n".join(lat)
                       + "\n\n\n# s since (b) began, MiB of the burst not yet on the origin\n" + "\n".join(dirty) + "\n")
            tl.append((s, i + 1))
        if tl:
            p1 = ", \\\n     ".join(f"'wb_timeline_{s}.dat' index 0 using 1:2 with lines lw 2 lc {c} title '{NAMES[s]}'"
                                    for s, c in tl)
            p2 = ", \\\n     ".join(f"'wb_timeline_{s}.dat' index 1 using 1:2 with lines lw 2 lc {c} title '{NAMES[s]}'"
                                    for s, c in tl)
            x0 = -(int(self.env.get("WB_BASE_S", 6) or 6) + 4)
            self.gp("wb_timeline", "w1, first repetition: read p99 per 0.2 s and burst data not yet written back",
                    "set multiplot layout 2,1\nset xlabel 's since writeback was let go (the burst starts at the dirty rise)'\n"
                    f"set key outside right\nset xrange [{x0}:10]\nset arrow from 0, graph 0 to 0, graph 1 nohead dt 2\n",
                    f"set ylabel 'read p99 us (log)'\nset logscale y\nplot {p1}\n"
                    f"unset logscale y\nset title ''\nset ylabel 'MiB not yet written back'\nset yrange [0:*]\nplot {p2}\n"
                    "unset multiplot", size="1100,700")

    # ------------------------------------------------------------ w2
    def part_w2(self):
        drains = sel(self.recs, wl="drain")
        if not drains:
            return
        mbps = sorted({int(d.get("mbps", 0)) for d in drains})
        for mb in mbps:
            self.part_w2_one(mb, [d for d in drains if int(d.get("mbps", 0)) == mb],
                             [r for r in sel(self.recs, wl="wb_raw") if int(r.get("mbps", 0)) == mb], first=mb == mbps[0])

    def part_w2_one(self, mb, drains, raws, first):
        lim = f"origin limited to {mb} MiB/s" if mb else "origin without a bandwidth limit"
        key = f"{mb}mbps" if mb else "nolimit"
        dmb = self.env.get("WB_DRAIN_MB")
        if first:
            self.w("## w2: drain rate with no reads", "")
            self.w_w2_intro(dmb)
        self.w(f"### {lim}", "")
        if mb:
            self.w(f"The origins are null_blk with `mbps={mb}` (a bandwidth limit on all their I/O, on top of the "
                   "timer): the origin, not the emulated cache device, is the bottleneck, as with a disk or a "
                   "network volume behind an NVMe cache.", "")
        else:
            self.w("null_blk with the timer alone: a memory copy per write, so under TCG the raw origin takes "
                   "large writes faster than any cache can read them back from the emulated NVMe; the ratio "
                   "then measures the cache device's read path as much as the writeback engine.", "")
        fig = {}
        rows = []
        self.w2_body(mb, key, lim, drains, raws, fig, rows)

    def w_w2_intro(self, dmb):
        self.w(f"{dmb} MiB made dirty with writeback held back (seq: 128 KiB sequential writes; rand: 4 KiB random "
               f"writes, each block once, scattered over {4 * int(dmb or 0)} MiB), then let go; the drain time "
               "runs from letting go until the origin has received all of it (its write sectors sampled every "
               "20 ms). No reads. The origin alone is written with fio in the same patterns (seq with 256 KiB "
               "writes, infercache's largest batch) at QD16 and QD32 (the origin's queue depth, and "
               "infercache's default writeback_inflight); the ratio is to the better of the two, per repetition. How each "
               "system was held back and let go:", "")
        for (s, m), n in METHODS.items():
            self.w(f"- {n}" + {
                "idle": ": `writeback_pause` during the burst, then `writeback_resume`; no reads: the controller "
                        "drains at full speed.",
                "flush": ": `writeback_pause` during the burst, then `dmsetup message ... flush` (blocks until "
                         "clean); time = the message's.",
                "cleaner": ": created with the default watermarks (the burst stays under high_watermark 50), "
                           "then the `cleaner` message (write back everything); a fresh dm-writecache every time.",
                "wp0": ": `writeback_running 0` during the burst, then 1; writeback_percent 0 = no rate limit "
                       "(writeback_delay 0).",
            }[m])
        self.w("")

    def w2_body(self, mb, key, lim, drains, raws, fig, rows):
        raw_bw = {}  # (pattern, qd, rep) -> MiB/s
        for r in raws:
            try:
                with open(os.path.join(self.args.raw, "fio", r["fio"] + ".json")) as f:
                    txt = f.read()
                j = json.loads(txt[txt.index("{"):])
                for job in j["jobs"]:
                    pat, qd = job["jobname"].split(".")
                    raw_bw[(pat, int(qd), r.get("rep"))] = job["write"]["bw_bytes"] / 1048576
            except (OSError, KeyError, ValueError) as e:
                print(f"report_wb: raw {r.get('fio')}: {e}")
        patterns = [p for p in ("seq", "rand") if any(d["pattern"] == p for d in drains)]
        # infercache's batches per drain: its writeback_ios counter is
        # cumulative over the table, which lives through this group's drains
        prev = 0
        for d in sorted((d for d in drains if d["sys"] == "icw"), key=lambda d: d["id"]):
            n = kv(d.get("extra", "")).get("wb_ios", "")
            if n.isdigit():
                d["wb_batches"] = int(n) - prev
                prev = int(n)
        for pat in patterns:
            reps = sorted({d["rep"] for d in drains if d["pattern"] == pat})
            raw16 = summ([raw_bw.get((pat, 16, r)) for r in reps])
            raw32 = summ([raw_bw.get((pat, 32, r)) for r in reps])
            best = {r: max([v for v in (raw_bw.get((pat, 16, r)), raw_bw.get((pat, 32, r))) if v] or [0]) for r in reps}
            fig[pat] = {"raw_qd16_mib_s": raw16, "raw_qd32_mib_s": raw32}
            rows.append([pat, "raw origin, fio QD16", f_s(raw16), "-", "-", "-", "-"])
            rows.append([pat, "raw origin, fio QD32", f_s(raw32), "-", "-", "-", "-"])
            for (s, m), name in METHODS.items():
                dd = [d for d in drains if d["pattern"] == pat and d["sys"] == s and d["method"] == m]
                if not dd:
                    continue
                rates, ratios, r16 = [], [], []
                for d in dd:
                    rate = d["drained_sectors"] / 2048 / max(1e-6, d["drain_us"] / 1e6) if d["done"] else None
                    d["rate_mib_s"] = rate
                    rates.append(rate)
                    if rate and best.get(d["rep"]):
                        ratios.append(rate / best[d["rep"]])
                    if rate and raw_bw.get((pat, 16, d["rep"])):
                        r16.append(rate / raw_bw[(pat, 16, d["rep"])])
                    self.res["drains"].append(d)
                e = {"mib_s": summ(rates), "ratio_to_raw": summ(ratios), "ratio_to_raw_qd16": summ(r16),
                     "seconds": summ([d["drain_us"] / 1e6 for d in dd]),
                     "burst_mib_s": summ([d["burst_bw_bytes"] / 1048576 for d in dd]),
                     "in_burst_mib": summ([d["written_in_burst_sectors"] / 2048 for d in dd]),
                     "done": sum(d["done"] for d in dd), "runs": len(dd),
                     "batches_per_s": summ([d["wb_batches"] / (d["drain_us"] / 1e6) for d in dd
                                            if d.get("wb_batches") and d["drain_us"]]),
                     "blocks_per_batch": summ([d["drained_sectors"] / 8 / d["wb_batches"] for d in dd
                                               if d.get("wb_batches")]),
                     "dirty_after_kib": summ([d["dirty_after_kib"] for d in dd])}
                fig[pat][f"{s}:{m}"] = e
                rows.append([pat, name, f_s(e["mib_s"]), f"**{f_ratio(e['ratio_to_raw'])}**", f_ratio(e["ratio_to_raw_qd16"]),
                             f_s(e["seconds"], " s") + ("" if e["done"] == e["runs"] else f" ({e['runs'] - e['done']} not done)"),
                             f_s(e["burst_mib_s"])])
        self.res["figures"].setdefault("w2", {})[key] = fig
        self.w(table(["pattern", "system", "MiB/s", "x raw (best of QD16/32)", "x raw QD16", "drain time",
                      "burst written at MiB/s"], rows), "")
        for pat in patterns:
            e = fig[pat].get("icw:idle")
            if not e or not e["ratio_to_raw"]:
                if e:
                    self.goal(f"w2: infercache idle drain >= {GOAL_DRAIN}x the origin's raw write rate ({pat}, {lim})", False,
                              f"the drain never finished in {e['runs'] - e['done']} of {e['runs']} runs")
                continue
            r = e["ratio_to_raw"]
            met = r["median"] >= GOAL_DRAIN
            txt = (f"{f_s(e['mib_s'])} MiB/s = {f_ratio(r)} of the raw origin's best "
                   f"(QD16 {f_s(fig[pat]['raw_qd16_mib_s'])}, QD32 {f_s(fig[pat]['raw_qd32_mib_s'])} MiB/s); "
                   f"{f_ratio(e['ratio_to_raw_qd16'])} of QD16")
            if not met:
                txt += f". Short by {1 - r['median'] / GOAL_DRAIN:.0%} of the goal. " + self.why_w2(fig, pat)
            self.goal(f"w2: infercache idle drain >= {GOAL_DRAIN}x the origin's raw write rate ({pat}, {lim})", met, txt)
        self.plot_w2(fig, patterns, key, lim)

    def why_w2(self, fig, pat):
        f = fig[pat]
        why = []
        q16, q32 = f.get("raw_qd16_mib_s"), f.get("raw_qd32_mib_s")
        ic = f["icw:idle"]
        if ic.get("batches_per_s") and ic.get("blocks_per_batch"):
            bps = ic["batches_per_s"]["median"]
            long_drain = ic["seconds"] and ic["seconds"]["median"] >= 2  # many 100 ms windows
            why.append(f"infercache issued {bps:.0f} batches/s of {ic['blocks_per_batch']['median']:.1f} blocks "
                       "on average"
                       + (" - about writeback_inflight per 100 ms controller window: the engine is waiting for "
                          "its ticks instead of refilling on completions" if long_drain and 100 <= bps <= 340 else ""))
        if ic.get("batches_per_s") and ic.get("blocks_per_batch") and q16:
            bps = ic["batches_per_s"]["median"]
            bpb = ic["blocks_per_batch"]["median"]
            inflight = 32  # infercache's default writeback_inflight
            cycle = inflight / bps * 1000  # ms per batch with writeback_inflight batches in flight
            raw_io_kib = 256 if pat == "seq" else 4
            raw_cycle = 16 / (q16["median"] * 1024 / raw_io_kib) * 1000  # fio at QD16
            why.append(f"with {inflight} batches in flight each took {cycle:.1f} ms from start to end, where fio's "
                       f"{raw_io_kib} KiB writes at QD16 took {raw_cycle:.1f} ms each on the same origin: every batch "
                       f"first reads its {bpb:.1f} blocks from the cache, one 4 KiB read per block (its slots are "
                       "spread over the sets even when the origin blocks are contiguous), then hands the origin "
                       "write to a work item"
                       + ("; bcache reads a dirty extent in one I/O, dm-writecache copies cache-contiguous runs"
                          if pat == "seq" else ""))
        fl = f.get("icw:flush")
        if fl and fl["mib_s"] and f["icw:idle"]["mib_s"] and fl["mib_s"]["median"] > f["icw:idle"]["mib_s"]["median"] * 1.2:
            idl = f["icw:idle"]["mib_s"]
            if fl["mib_s"]["min"] <= idl["max"]:
                why.append(f"`flush` drained at {f_s(fl['mib_s'])} MiB/s (its range overlaps the idle drain's: no "
                           "clear difference)")
            else:
                why.append(f"`flush` drains at {f_s(fl['mib_s'])} MiB/s, so the idle path leaves speed unused")
        peers = [(k, v) for k, v in f.items() if ":" in k and not k.startswith("icw") and v.get("mib_s")]
        for k, v in peers:
            if v["mib_s"]["median"] > f["icw:idle"]["mib_s"]["median"]:
                why.append(f"{METHODS[tuple(k.split(':'))]} drains at {f_num(v['mib_s']['median'])} MiB/s")
        if pat == "rand":
            why.append("scattered 4 KiB blocks give writeback little to coalesce: every block is its own write, "
                       "and each costs a read from the cache device first (the raw fio run writes from memory)")
        why.append("every written-back block is read from the emulated NVMe first; under TCG that read is CPU "
                   "work on the same 2 vCPUs")
        return cap("; ".join(why)) + "."

    def plot_w2(self, fig, patterns, key, lim):
        cols = [("raw_qd16_mib_s", "raw origin QD16"), ("raw_qd32_mib_s", "raw origin QD32")] + \
               [(f"{s}:{m}", {"icw:idle": "infercache idle", "icw:flush": "infercache flush",
                              "wc:cleaner": "dm-writecache cleaner", "bcw0:wp0": "bcache wp 0"}[f"{s}:{m}"])
                for (s, m) in METHODS]
        lines = []
        for pat in patterns:
            vals = []
            for k, _ in cols:
                v = fig[pat].get(k)
                v = v.get("mib_s") if v and "mib_s" in v else v
                vals += [v["median"], v["min"], v["max"]] if v else [0, 0, 0]
            lines.append(f'"{pat}" ' + " ".join(f"{x:.2f}" for x in vals))
        name = "wb_drain" if key == "nolimit" else f"wb_drain_{key}"
        self.write(f"{name}.dat", "# pattern " + " ".join(f"[{n}](med min max)" for _, n in cols) + "\n" + "\n".join(lines) + "\n")
        plots = [f"'{name}.dat' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}{':xtic(1)' if i == 0 else ''} title '{n}'"
                 for i, (_, n) in enumerate(cols)]
        self.gp(name, f"w2: drain rate of {self.env.get('WB_DRAIN_MB')} MiB dirty, no reads, {lim} (median, min-max)",
                "set ylabel 'MiB/s'\nset style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                "set style fill solid 0.6 border -1\nset yrange [0:*]\nset key outside right\n",
                "plot " + ", \\\n     ".join(plots), size="1000,480")

    # ------------------------------------------------------------ output
    def notes(self):
        env = self.env
        return ["## How the systems were set up, and caveats", "",
                f"- infercache: `0 <origin sectors> infercache <cache> <origin> 2 mode writeback"
                f"{(' ' + env['IC_WB_OPTS']) if env.get('IC_WB_OPTS') else ''}` (the contract's defaults: "
                "max_dirty_age 10 s, dirty_high 50%, read_latency_target auto = 1.2x the read p99 seen while no "
                "writeback runs, writeback_inflight 16, no rate ceiling).",
                (f"- dm-writecache: `writecache s <origin> <cache> 4096 0` (defaults: high_watermark 50, "
                 "low_watermark 45), a fresh one for every run; the burst stays under the high watermark, and "
                 "the `cleaner` message lets it write back everything (at full speed, kcopyd)."
                 if env.get("WB_HOLD") == "1" else
                 f"- dm-writecache (w1): `writecache s <origin> <cache> 4096 <n> {env.get('WB_WC_OPTS', '')}`: it "
                 "writes back once the used blocks reach high_watermark and until they drop under low_watermark; "
                 "with the defaults (50/45) a burst of a quarter of the cache would never be written back, so "
                 "there would be nothing to measure.")
                + " It does not cache reads (its reads are served by the origin), and it does not look at read "
                "latency when writing back (only writes to the origin pause it).",
                "- bcache: `make-bcache` with the same bucket size as `make bench`, cache_mode writeback, "
                "sequential_cutoff 0, congested thresholds 0, writeback_delay 0 (its default 30 s is a sleep after "
                "every pass over the index that a wake-up does not shorten, so a burst could wait up to a minute "
                "before any writeback). writeback_percent 10 (default): writeback rate set by its PI controller "
                "toward 10% dirty, re-computed every 5 s, full speed only after ~30 s of no I/O at all; "
                "writeback_percent 0: no rate limit, writeback bios at idle I/O priority.",
                "- The read load never pauses, so none of the systems sees an idle device during w1.",
                "- Everything runs under QEMU TCG on a 2-core host that other jobs share: the emulated NVMe and "
                "null_blk are CPU work on the same 2 vCPUs as fio and the writeback, so writeback interferes with "
                "reads through the CPU as much as through the devices. In w1 (and the first w2 table) null_blk has no "
                f"bandwidth limit (a fixed {env.get('LATS', '500').split()[0]} us timer per I/O, 32 tags): the "
                "origin's write rate is set by its queue depth and the emulated CPU. Compare ratios within this "
                "run, not absolute numbers.",
                "- p99 of a phase with few reads (short (b)) is coarse: see the read counts under 'Every run'.", ""]

    def build(self):
        self.part_w1()
        self.part_w2()
        body = list(self.header_lines) + goal_lines(self.goals) + self.md + self.notes()
        write_report(self.write, "writeback", body, self.res, self.args, self.plots)


def header(env, a):
    return header_lines(a, env, "dm-infercache writeback benchmark (issue 4)",
                        "QEMU TCG (software emulation, no KVM), no slub_debug / init_on_free", part="report_wb.py") + [
        f"- Devices: every system has its own QEMU NVMe controller ({env.get('CACHE_MB')} MiB, host file in the "
        f"page cache) and its own null_blk origin ({env.get('ORIGIN_MB')} MiB, memory backed, timer completion "
        f"{int(env.get('LATS', '500').split()[0]) / 1000:g} ms, 32 tags, no scheduler; the regions the "
        "workload writes were written once before, so no run pays null_blk's first-write page allocation).",
        f"- Repetitions: {env.get('WB_REPS')} of every figure; tables give median [min-max].", ""]


def build(recs, env, args):
    WbReport(recs, env, args, header(env, args)).build()
