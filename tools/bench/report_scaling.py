# SPDX-License-Identifier: GPL-2.0
"""Workload s of tools/bench (hit scaling, 1 vs 2 CPUs): raw results -> scaling.{md,json} + plot.

Called by report.py when the raw results hold "scale" records (written by
tools/bench/guest-scaling.sh). One record per system and fio process, with
the system's counters read around the process; the fio JSON holds the jobs:

- SYS.c1.rN     one job pinned to CPU 0 (cpu1 online, idle), iodepth QD
- SYS.c2a.rN, SYS.c2b.rN   two jobs at the same time, pinned to CPU 0 and
                CPU 1, iodepth QD/2 each
- SYS.c1off.rN  one job on CPU 0 with cpu1 offline (another fio process)

Per round N: IOPS of each configuration (c2 = the sum of its two jobs), the
2/1 scaling factor, and ratios between systems; then median [min-max] over
the rounds. The rounds' runs of all systems are close together in time (the
c1 and c2 runs of a round are in one fio process), so drift of the emulator's
speed largely cancels in the ratios.
"""
import json
import os
import sys

from report import f_num, f_pct, f_ratio, f_s, gp_head, header_lines, summ, table, write_report

NAMES = {
    "raw": "raw cache device",
    "linear": "dm-linear",
    "ic": "infercache",
    "icw": "infercache (mode writeback)",
    "null": "fio null engine (no I/O)",
    "nullclk": "fio null engine, clock read per I/O",
}
ORDER = ["raw", "linear", "ic", "icw", "null", "nullclk"]
REFS = ("null", "nullclk")  # no I/O: references, not systems
PLOT_NAMES = {"raw": "raw device", "icw": "infercache (wb)", "null": "null engine", "nullclk": "null + clock"}
CACHE_NAMES = {"brd": "brd (RAM disk)", "nvme": "QEMU NVMe"}
CFGS = ("c1", "c2", "c1off")


def job_figs(j):
    """iops, ios, cpu seconds (fio's usr+sys of the job) and mean latency of one fio job."""
    rd = j["read"]
    rt_s = j.get("job_runtime", 0) / 1000.0
    cpu_s = (j.get("usr_cpu", 0) + j.get("sys_cpu", 0)) / 100.0 * rt_s
    lat = rd.get("lat_ns") or rd.get("clat_ns") or {}
    return {"iops": rd["iops"], "ios": rd["total_ios"], "cpu_s": cpu_s, "runtime_s": rt_s,
            "mean_us": lat.get("mean", 0) / 1000.0 or None}  # none with gtod_reduce


def load_runs(raw, recs):
    """{(cache, sys, rep): {cfg: {...}}} from the fio JSON of the scale records."""
    runs = {}
    cache = {}
    for r in recs:
        if r.get("wl") != "scale" or not r.get("fio"):
            continue
        fid = r["fio"]
        if fid not in cache:
            try:
                with open(os.path.join(raw, "fio", fid + ".json")) as f:
                    cache[fid] = json.load(f)
            except (OSError, ValueError) as e:
                print(f"report_scaling: {fid}: {e}", file=sys.stderr)
                cache[fid] = None
        j = cache[fid]
        if not j:
            continue
        s, rep = r["sys"], int(r.get("rep", 0))
        key = (r.get("cache"), s, rep)
        d = runs.setdefault(key, {"order": r.get("order", ""), "hits": 0, "reads": 0})
        d["reads"] += r.get("reads", 0)
        d["hits"] += r.get("hits", 0)
        jobs = {x.get("jobname"): x for x in j.get("jobs", [])}
        for cfg, names in (("c1", [f"{s}.c1.r{rep}"]), ("c1off", [f"{s}.c1off.r{rep}"]),
                           ("c2", [f"{s}.c2a.r{rep}", f"{s}.c2b.r{rep}"])):
            if not all(n in jobs for n in names):
                continue
            parts = [job_figs(jobs[n]) for n in names]
            ios = sum(p["ios"] for p in parts)
            d[cfg] = {"iops": sum(p["iops"] for p in parts),
                      "per_job_iops": [p["iops"] for p in parts],
                      "ios": ios,
                      "cpu_us_per_io": sum(p["cpu_s"] for p in parts) * 1e6 / ios if ios else None,
                      "mean_us": (sum(p["mean_us"] for p in parts) / len(parts)
                                  if all(p["mean_us"] for p in parts) else None),
                      "fio": fid}
    return runs


def per_rep(runs, cache, s, fn):
    """fn(run of SYS in round N) per round, Nones dropped, summarised."""
    out = []
    for (c, x, rep), d in sorted(runs.items(), key=lambda kv: kv[0][2]):
        if c == cache and x == s:
            try:
                v = fn(d)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            if v is not None:
                out.append(v)
    return summ(out)


def cross(runs, cache, a, b, fn):
    """fn(run of a, run of b) for every round both have, summarised."""
    out = []
    for (c, x, rep), d in runs.items():
        if c != cache or x != a:
            continue
        e = runs.get((cache, b, rep))
        if not e:
            continue
        try:
            v = fn(d, e)
        except (KeyError, TypeError, ZeroDivisionError):
            v = None
        if v is not None:
            out.append(v)
    return summ(out)


def scale(d, base="c1"):
    return d["c2"]["iops"] / d[base]["iops"]


class ScaleReport:
    def __init__(self, recs, env, args):
        self.recs, self.env, self.args = recs, env, args
        self.runs = load_runs(args.raw, recs)
        self.md = []
        self.res = {"figures": {}, "env": env}
        self.plots = []

    def w(self, *lines):
        self.md.extend(lines)

    def write(self, name, text):
        with open(os.path.join(self.args.out, name), "w") as f:
            f.write(text)

    def kinds(self):
        seen = [c for (c, _, _) in self.runs]
        return [k for k in ("brd", "nvme") if k in seen] + sorted({c for c in seen if c not in ("brd", "nvme")})

    def systems(self, kind):
        seen = {s for (c, s, _) in self.runs if c == kind}
        return [s for s in ORDER if s in seen] + sorted(seen - set(ORDER))

    # ------------------------------------------------------------ figures
    def figures(self, kind):
        runs, out = self.runs, {}
        for s in self.systems(kind):
            e = {}
            for cfg in CFGS:
                e[cfg] = {"iops": per_rep(runs, kind, s, lambda d, c=cfg: d[c]["iops"]),
                          "cpu_us_per_io": per_rep(runs, kind, s, lambda d, c=cfg: d[c]["cpu_us_per_io"]),
                          "mean_us": per_rep(runs, kind, s, lambda d, c=cfg: d[c]["mean_us"])}
            e["scaling"] = per_rep(runs, kind, s, scale)
            e["scaling_vs_offline"] = per_rep(runs, kind, s, lambda d: scale(d, "c1off"))
            e["offline_vs_online_1cpu"] = per_rep(runs, kind, s, lambda d: d["c1off"]["iops"] / d["c1"]["iops"])
            e["cpu1_share_at_2"] = per_rep(runs, kind, s,
                                           lambda d: d["c2"]["per_job_iops"][1] / d["c2"]["iops"])
            e["cpu_per_io_2_over_1"] = per_rep(runs, kind, s, lambda d: d["c2"]["cpu_us_per_io"] /
                                               d["c1"]["cpu_us_per_io"])
            if s in ("ic", "icw"):
                e["hit_ratio"] = per_rep(runs, kind, s, lambda d: d["hits"] / d["reads"] if d["reads"] else None)
            e["ratios"] = {}
            for q in self.systems(kind):
                if q == s:
                    continue
                e["ratios"][q] = {
                    "iops_c1": cross(runs, kind, s, q, lambda a, b: a["c1"]["iops"] / b["c1"]["iops"]),
                    "iops_c2": cross(runs, kind, s, q, lambda a, b: a["c2"]["iops"] / b["c2"]["iops"]),
                    "iops_c1off": cross(runs, kind, s, q, lambda a, b: a["c1off"]["iops"] / b["c1off"]["iops"]),
                    "scaling": cross(runs, kind, s, q, lambda a, b: scale(a) / scale(b)),
                }
            out[s] = e
        return out

    # ------------------------------------------------------------ tables
    def part(self, kind):
        f = self.figures(kind)
        self.res["figures"][kind] = f
        self.w(f"## Cache = {CACHE_NAMES.get(kind, kind)}", "")
        rows = []
        for s, e in f.items():
            hit = e.get("hit_ratio")
            rows.append([NAMES.get(s, s), f_s(e["c1"]["iops"]), f_s(e["c2"]["iops"]), f"**{f_ratio(e['scaling'])}**",
                         f_s(e["c1off"]["iops"]), f_ratio(e["scaling_vs_offline"]),
                         f"{f_s(e['c1']['cpu_us_per_io'])} / {f_s(e['c2']['cpu_us_per_io'])}",
                         f_pct(hit, 2)])
        self.w(table(["system", "1 CPU IOPS", "2 CPUs IOPS", "2 CPUs / 1 CPU", "1 CPU, cpu1 offline, IOPS",
                      "2 CPUs / 1 CPU offline", "CPU us per I/O, 1 / 2 CPUs", "hits"], rows), "")
        rows = []
        for a, b in (("ic", "linear"), ("ic", "raw"), ("linear", "raw"), ("icw", "ic"), ("icw", "linear"),
                     ("ic", "null"), ("linear", "null"), ("raw", "null"), ("nullclk", "null")):
            x = f.get(a, {}).get("ratios", {}).get(b)
            if not x or not x["iops_c1"]:
                continue
            if b in REFS:
                rows.append([f"{NAMES[a]}'s scaling / {NAMES[b]}'s", "-", "-", "-", f"**{f_ratio(x['scaling'])}**"])
                continue
            rows.append([f"{NAMES[a]} / {NAMES[b]}", f_ratio(x["iops_c1"]), f_ratio(x["iops_c2"]),
                         f_ratio(x["iops_c1off"]), f"**{f_ratio(x['scaling'])}**"])
        self.w(table(["IOPS ratio, same round", "at 1 CPU", "at 2 CPUs", "at 1 CPU, cpu1 offline",
                      "2/1 scaling of the first / of the second"], rows), "")
        self.w(self.findings(kind, f), "")

    def findings(self, kind, f):
        ic, lin, raw, nul, clk = (f.get(k) for k in ("ic", "linear", "raw", "null", "nullclk"))
        if not ic:
            return ""
        out = [f"On {CACHE_NAMES.get(kind, kind)}, infercache went from {f_s(ic['c1']['iops'])} hits/s on one "
               f"CPU to {f_s(ic['c2']['iops'])} on two: a factor of {f_ratio(ic['scaling'])}"]
        others = []
        if lin:
            others.append(f"dm-linear {f_ratio(lin['scaling'])}")
        if raw:
            others.append(f"the raw device {f_ratio(raw['scaling'])}")
        if nul:
            others.append(f"fio's null engine, which does no I/O, {f_ratio(nul['scaling'])}")
        if others:
            out[0] += " (" + ", ".join(others) + ")."
        else:
            out[0] += "."
        for q in ("linear", "raw"):
            x = ic["ratios"].get(q, {}).get("scaling")
            if not x:
                continue
            if x["min"] > 1.0:
                verdict = "better in every round"
            elif x["max"] < 1.0:
                verdict = "worse in every round"
            else:
                verdict = "the rounds straddle 1.00x, so no difference is shown"
            who = "dm-linear's" if q == "linear" else "the raw device's"
            out.append(f"Infercache's scaling relative to {who}: {f_ratio(x)} ({verdict}).")
        if nul and nul["scaling"]:
            out.append(f"The null engine, a pure CPU load, gained {f_ratio(nul['scaling'])} at the same moments: "
                       "the host's two cores are shared with QEMU's main loop (which emulates the NVMe "
                       "controllers) and other jobs, so two vCPUs are less than two CPUs here.")
        if clk and clk["scaling"]:
            out.append(f"The same engine reading the clock around every I/O (fio's default) scales "
                       f"{f_ratio(clk['scaling'])}: the guest's clock is the HPET, and every read of it is "
                       "served by QEMU under its global lock.")
        return " ".join(out)

    def details(self):
        rows = []
        for (kind, s, rep), d in sorted(self.runs.items(), key=lambda kv: (kv[0][0], kv[0][2], ORDER.index(kv[0][1])
                                                                         if kv[0][1] in ORDER else 99)):
            c1, c2, co = d.get("c1"), d.get("c2"), d.get("c1off")
            rows.append([kind, rep, d.get("order", ""), NAMES.get(s, s),
                         f_num(c1["iops"]) if c1 else "-",
                         (f"{f_num(c2['iops'])} ({' + '.join(f_num(x) for x in c2['per_job_iops'])})") if c2 else "-",
                         f"{c2['iops'] / c1['iops']:.2f}x" if c1 and c2 else "-",
                         f_num(co["iops"]) if co else "-",
                         f"{c1['cpu_us_per_io']:.1f} / {c2['cpu_us_per_io']:.1f}" if c1 and c2 and c1["cpu_us_per_io"]
                         and c2["cpu_us_per_io"] else "-",
                         f"{d['hits'] / d['reads'] * 100:.2f}%" if d["reads"] and s in ("ic", "icw") else "-"])
        return ["<details><summary>Every round</summary>", "",
                table(["cache", "round", "order", "system", "1 CPU", "2 CPUs (CPU 0 + CPU 1)", "2/1", "1 CPU offline",
                       "CPU us/I/O 1 / 2", "hits"], rows), "", "</details>", ""]

    # ------------------------------------------------------------ plot
    def plot(self, kinds):
        lines = ["# system " + " ".join(f"{k}_c1_med {k}_c1_min {k}_c1_max {k}_c2_med {k}_c2_min {k}_c2_max "
                                        f"{k}_scale_med {k}_scale_min {k}_scale_max" for k in kinds)]
        systems = [s for s in ORDER if any(s in self.res["figures"].get(k, {}) for k in kinds)]
        for s in systems:
            cols = []
            for k in kinds:
                e = self.res["figures"].get(k, {}).get(s)
                for x in ((e or {}).get("c1", {}).get("iops"), (e or {}).get("c2", {}).get("iops"),
                          (e or {}).get("scaling")):
                    cols += [x["median"], x["min"], x["max"]] if x else [0, 0, 0]
            lines.append(f'"{PLOT_NAMES.get(s, NAMES.get(s, s))}" ' + " ".join(f"{v:.3f}" for v in cols))
        self.write("scaling.dat", "\n".join(lines) + "\n")
        io_systems = [s for s in systems if s not in REFS]
        panels = []
        for i, k in enumerate(kinds):
            c = 2 + 9 * i
            # rows of the I/O systems only (the null engine's IOPS would dwarf them)
            every = f"every ::0::{len(io_systems) - 1}"
            panels.append(f"set title '{CACHE_NAMES.get(k, k)}: 4 KiB reads/s (median, min-max)'\n"
                          f"plot 'scaling.dat' {every} using {c}:{c + 1}:{c + 2}:xtic(1) title '1 CPU', "
                          f"'' {every} using {c + 3}:{c + 4}:{c + 5} title '2 CPUs'")
        sc = [f"'scaling.dat' using {2 + 9 * i + 6}:{2 + 9 * i + 7}:{2 + 9 * i + 8}:xtic(1) "
              f"title '{CACHE_NAMES.get(k, k)}'" for i, k in enumerate(kinds)]
        panels.append("set title '2 CPUs / 1 CPU (median, min-max; 2.0 = perfect)'\nset yrange [0:2.6]\n"
                      "set arrow 1 from graph 0, first 2 to graph 1, first 2 nohead dt 2\n"
                      "plot " + ", ".join(sc))
        n = len(panels)
        self.plots.append("scaling")
        self.write("scaling.gp", gp_head("report_scaling.py", "scaling", f"{480 * n},480")
                   + f"set multiplot layout 1,{n} title \"4 KiB random-read hits, warm cache, QD "
                   f"{self.env.get('SC_QD', '?')} in total, 1 vs 2 vCPUs (QEMU TCG)\"\n"
                   "set grid ytics\nset style data histogram\nset style histogram errorbars gap 2 lw 1\n"
                   "set style fill solid 0.6 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                   "set xtics rotate by -25\nset key top right\n"
                   + "\n".join(panels) + "\nunset multiplot\n")

    # ------------------------------------------------------------ output
    def header(self):
        env = self.env
        qd = int(env.get("SC_QD", "0") or 0)
        return header_lines(self.args, env, "dm-infercache hit-path scaling, 1 vs 2 CPUs (issue 5, item 3)",
                            "QEMU TCG (software emulation, multi-threaded: one host thread per vCPU, plus QEMU's "
                            "main loop, which emulates the NVMe controllers), no slub_debug / init_on_free",
                            part="report_scaling.py", bcache_tools=False) + [
            f"- Devices: brd `/dev/ram0` (raw, dm-linear) and `/dev/ram1` (infercache), every page written "
            f"once; QEMU NVMe controllers 0 (raw, dm-linear) and 1 (infercache), {env.get('CACHE_MB')} MiB, host "
            "files in the host page cache, no I/O scheduler. infercache: `0 <origin sectors> infercache "
            "<cache> <origin> 0` (4 KiB blocks, writethrough) over a null_blk origin "
            f"({env.get('ORIGIN_MB')} MiB, {env.get('LATS', '500').split()[0]} us timer), which hits never touch.",
            f"- Workload: fio `direct=1`, libaio, 4 KiB random reads (`norandommap`) over the first "
            f"{env.get('SC_HOT_MB')} MiB (`gtod_reduce`: fio reads the clock rarely, see the caveats), which infercache holds (warmed first until a pass had >= 99% hits; "
            "`hits` below are its own counters over each round's runs), time based, "
            f"{env.get('SC_RUNTIME')} s per run after 0.2 s of ramp. **1 CPU**: one job pinned to CPU 0 "
            f"(`cpus_allowed=0`), iodepth {qd}, cpu1 online and idle. **2 CPUs**: two jobs at the same time, "
            f"pinned to CPU 0 and CPU 1, iodepth {qd // 2} each (the same total queue depth), different "
            "random seeds; their IOPS summed. **1 CPU, cpu1 offline**: one job on CPU 0 after "
            "`echo 0 > /sys/devices/system/cpu/cpu1/online` (a one-vCPU guest: no other CPU for "
            "interrupts, kworkers or QEMU's second vCPU thread), in a second fio process of the round.",
            f"- Rounds: {env.get('SC_REPS')}. A round = one fio process with the 1-CPU and the 2-CPU run of "
            "every system (systems in a rotated order each round; 1 CPU first in odd rounds, 2 CPUs first in "
            "even ones) and one fio process with the cpu1-offline runs (after it in odd rounds, before it in "
            "even ones). Ratios are taken within a round, then median [min-max] over the rounds.",
            "- `CPU us per I/O`: fio's own usr+sys CPU time of its job(s) over their I/Os (the guest's "
            "accounting: a vCPU descheduled by the host still counts as busy, so it rises when the host is "
            "short of cores, for every system alike).", ""]

    def notes(self):
        return ["## Caveats", "",
                "- QEMU TCG on a host with 2 cores that other jobs share: two vCPUs get two host cores only "
                "when nothing else runs, and QEMU's main loop (which emulates the NVMe controllers, and their "
                "completions) needs a core too. The null engine's factor is what a pure CPU load gained at the "
                "same moments (less than 2.0). On NVMe an I/O path can gain more than that: on one CPU the vCPU "
                "also waits for QEMU to emulate the controller (every doorbell write is an MMIO exit served "
                "under QEMU's global lock), and two CPUs overlap those waits; that is also why fio's CPU time "
                "per NVMe I/O falls from 1 to 2 CPUs. The measurement shows whether infercache's hit path "
                "loses ground against dm-linear and the raw device when a second CPU issues hits, not how far "
                "it scales on real hardware.",
                "- TCG does not show what shared data costs on real hardware: a cache line written by one CPU "
                "and then by the other costs a coherence miss, which the emulation (tens of host instructions "
                "per guest instruction) dilutes to nothing. What it can show is a CPU waiting for the other "
                "one: a lock that serialises, or a shared resource of the emulator itself (the HPET, below).",
                "- The guest's clocksource is the HPET: the kernel marks the TSC unstable under TCG. Every "
                "HPET read is an MMIO access that QEMU serves under its global lock (the same lock its NVMe "
                "emulation runs under), so anything that reads the clock per I/O serialises the vCPUs here, "
                "as it would not on real hardware (a TSC read is per CPU). fio therefore runs with "
                "`gtod_reduce` (no per-I/O time stamps, no latency figures); the `fio null engine, clock read "
                "per I/O` row shows what the clock reads alone cost in scaling. The block layer still stamps "
                "every NVMe request (`iostats`), and a writeback-capable infercache target times every read "
                "(`ktime_get_ns()` twice): on this emulator both pay that lock, on hardware neither would "
                "much.",
                "- brd completes a read in the submitting task (a copy from RAM, no interrupt), so a brd run "
                "on one CPU is that CPU's work alone; QEMU NVMe completes through an interrupt per queue (one "
                "queue per CPU), and its emulation runs outside the vCPUs.",
                "- The hot set is spread over the whole cache's sets (4 KiB blocks, 16 ways a set): two CPUs "
                "reading random blocks of it rarely take the same set lock at once. A skewed load (a few "
                "very hot blocks) would contend where this one does not; see Documentation/design.rst, "
                "\"How the hit path scales\".", ""]

    def build(self):
        kinds = self.kinds()
        if not kinds:
            return
        for k in kinds:
            try:
                self.part(k)
            except Exception as e:  # keep the report going; say what broke
                import traceback
                traceback.print_exc()
                self.w(f"(report error on {k}: {e})", "")
        warm = [r for r in self.recs if r.get("wl") == "s_warm_done"]
        if warm:
            self.w("Warm-up passes (QD16 over the hot set) until a pass had >= 99% hits: "
                   + "; ".join(f"{NAMES.get(r['sys'], r['sys'])} on {r.get('cache')}: {r.get('passes')}"
                               for r in warm) + ".", "")
        self.plot(kinds)
        body = self.header() + ["![scaling](scaling.png)", ""] + self.md + self.details() + self.notes()
        self.res["runs"] = [{"cache": c, "sys": s, "rep": r, **d} for (c, s, r), d in sorted(self.runs.items())]
        write_report(self.write, "scaling", body, self.res, self.args, self.plots)


def build(recs, env, args):
    ScaleReport(recs, env, args).build()
