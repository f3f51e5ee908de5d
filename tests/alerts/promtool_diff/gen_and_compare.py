#!/usr/bin/env python3
"""Differential test: `promtool test rules` (Prometheus 2.42) vs `firedrill rules test`.

Generates N promtool unit-test files from random input series (counter resets,
gaps, stale markers, threshold crossings) over HSOF's alert rules
(hsof-prometheus-alerts.yml, next to this script) and over randomly generated
rules of our own that use every PromQL construct issue 5 lists. Expectations are
learned from promtool itself:

  pass 0  (own rules only) probe the value range of every alert's left-hand side
          and put each threshold between two values the expression really takes,
          so that alerts cross their thresholds;
  pass 1  write the file with empty expectations, run promtool, parse the
          alerts and samples it reports as "got";
  pass 2  write promtool's values as the expectations (promtool then passes) and,
          in ~30% of the files, perturb one expectation (a value's last bit, a
          label, an annotation, a missing or extra alert, a wrong eval_time) so
          that promtool must fail.  ~8% of the files are deliberately broken
          (bad rule file, YAML error, unknown field, parse errors, many-to-many,
          ...).

Then every final file is run through promtool (twice: its output must be
stable, otherwise the generator produced a file whose result depends on
promtool's random series order) and through firedrill, and the results are
compared: exit code, SUCCESS/FAILED, the multiset of failing test cases with
their "exp"/"got" alerts and samples (floats compared bit-exactly through their
shortest repr), and the normalised stdout/stderr text.

Determinism (promtool's loader appends series in Go map order, so aggregation
order across series is random): every aggregation is generated only where its
result is exact in every order: values feeding sum are multiples of 0.75 (or
the group has at most two members, and IEEE addition is commutative); values
feeding avg (2.42 uses the incremental mean m += v/n - m/n) are multiples of
0.75 in groups of at most four series, which keeps every intermediate
exact, or the group has one member; groups whose members are arbitrary floats are
never summed or averaged over more than two, respectively one, series. Rule groups
are always fully ordered (group_eval_order) where order matters.

Usage:
  gen_and_compare.py --promtool /usr/bin/promtool --firedrill build/cli/firedrill \
      --count 200 --seed 1 --workdir /tmp/pdiff [--keep] [--jobs 2]
Exit status 0 when every file agrees, 1 otherwise (also when --firedrill is
missing: then only the promtool side is generated and checked).
"""

import argparse
import copy
import difflib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
HSOF_RULES_SRC = os.path.join(HERE, "hsof-prometheus-alerts.yml")
HSOF_RULES_NAME = "hsof.rules.yml"  # copied into the workdir's files/

TIMEOUT_S = 60

# --------------------------------------------------------------------------
# Small helpers: durations, numbers, Go string literals
# --------------------------------------------------------------------------

S = 1000
M = 60 * S
H = 60 * M


def dur_str(ms, rng=None):
    """A duration string that Prometheus' model.ParseDuration accepts."""
    if ms == 0:
        return rng.choice(["0s", "0m", "0"]) if rng else "0s"
    if rng is not None and ms % S == 0 and rng.random() < 0.25:
        return "%ds" % (ms // S)
    out = ""
    for unit, size in (("h", H), ("m", M), ("s", S), ("ms", 1)):
        if ms >= size:
            out += "%d%s" % (ms // size, unit)
            ms %= size
    return out


def go_duration_string(ms):
    """model.Duration.String() as promtool prints eval_time ('1h30m', '1d', '0s')."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("y", 365 * 24 * H), ("w", 7 * 24 * H), ("d", 24 * H),
                       ("h", H), ("m", M), ("s", S), ("ms", 1)):
        if ms >= size:
            out += "%d%s" % (ms // size, unit)
            ms %= size
    return out


def num(v):
    """Shortest text for a number in series notation / PromQL."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def go_quote(s):
    """A PromQL/Go double-quoted string literal."""
    out = ['"']
    for ch in s:
        if ch == '\\':
            out.append('\\\\')
        elif ch == '"':
            out.append('\\"')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\t':
            out.append('\\t')
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append('\\x%02x' % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_SIMPLE_ESC = {'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t',
               'v': '\v', '\\': '\\', '"': '"', "'": "'"}


def parse_go_string(s, i):
    """Parse a Go double-quoted literal starting at s[i] == '"'. Returns (str, next_i)."""
    if i >= len(s) or s[i] != '"':
        raise ValueError("expected '\"' at %d in %r" % (i, s))
    i += 1
    buf = bytearray()
    while i < len(s):
        c = s[i]
        if c == '"':
            return buf.decode("utf-8", "surrogateescape"), i + 1
        if c == '\\':
            e = s[i + 1]
            if e in _SIMPLE_ESC:
                buf += _SIMPLE_ESC[e].encode()
                i += 2
            elif e == 'x':
                buf.append(int(s[i + 2:i + 4], 16))
                i += 4
            elif e == 'u':
                buf += chr(int(s[i + 2:i + 6], 16)).encode("utf-8", "surrogatepass")
                i += 6
            elif e == 'U':
                buf += chr(int(s[i + 2:i + 10], 16)).encode("utf-8", "surrogatepass")
                i += 10
            elif e in "01234567":
                buf.append(int(s[i + 1:i + 4], 8))
                i += 4
            else:
                raise ValueError("bad escape in %r" % s)
        else:
            buf += c.encode("utf-8", "surrogateescape")
            i += 1
    raise ValueError("unterminated string in %r" % s)


_LABEL_NAME = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')


def parse_label_set(s, i):
    """Parse '{a="b", c="d"}' at s[i]. Returns (tuple of (name, value), next_i)."""
    if s[i] != '{':
        raise ValueError("expected '{' at %d in %r" % (i, s))
    i += 1
    out = []
    if s[i] == '}':
        return tuple(out), i + 1
    while True:
        m = _LABEL_NAME.match(s, i)
        if not m:
            raise ValueError("bad label name at %d in %r" % (i, s))
        name = m.group(0)
        i = m.end()
        if s[i] != '=':
            raise ValueError("expected '=' at %d in %r" % (i, s))
        val, i = parse_go_string(s, i + 1)
        out.append((name, val))
        if s[i] == '}':
            return tuple(out), i + 1
        if s.startswith(', ', i):
            i += 2
        else:
            raise ValueError("expected ', ' at %d in %r" % (i, s))


def canon_float(text):
    """Canonical, bit-exact text for a float printed by Go ('E', -1) or given by us."""
    v = float(text)
    if math.isnan(v):
        return "NaN"
    return repr(v)


def yaml_float(v):
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    return repr(v)


class _Dumper(yaml.SafeDumper):
    pass


class YFloat(float):
    """A float that must be written to YAML with its exact shortest repr."""


class YStr(str):
    """A string that must be written quoted."""


def _repr_yfloat(dumper, v):
    return dumper.represent_scalar("tag:yaml.org,2002:float", yaml_float(float(v)))


def _repr_ystr(dumper, v):
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(v), style="'")


_Dumper.add_representer(YFloat, _repr_yfloat)
_Dumper.add_representer(YStr, _repr_ystr)
_Dumper.ignore_aliases = lambda self, data: True


def dump_yaml(doc):
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1 << 20)


# --------------------------------------------------------------------------
# Input series in promtool's expanding notation
# --------------------------------------------------------------------------

class Notation:
    """Builds a 'values' string slot by slot (one slot per input interval)."""

    def __init__(self):
        self.toks = []
        self.slots = 0

    def lit(self, v):
        self.toks.append(num(v))
        self.slots += 1

    def run(self, a, b, m):
        """a, a+b, ..., a+m*b by repeated addition (m+1 slots). b may be negative."""
        if m == 0:
            self.toks.append("%sx0" % num(a))
        elif b == 0:
            self.toks.append("%sx%d" % (num(a), m))
        elif b > 0:
            self.toks.append("%s+%sx%d" % (num(a), num(b), m))
        else:
            self.toks.append("%s-%sx%d" % (num(a), num(-b), m))
        self.slots += m + 1

    def gap(self, k):
        self.toks.append("_" if k == 1 else "_x%d" % k)
        self.slots += k

    def stale(self):
        self.toks.append("stale")
        self.slots += 1

    def text(self):
        return " ".join(self.toks)


def last_of_run(a, b, m):
    v = a
    for _ in range(m):
        v += b
    return v


def gen_gauge(rng, n, lo, hi, step, start=None, gaps=True, stales=True,
              max_step_mult=4, jump_p=0.15, cross=None):
    """Random walk gauge; values are multiples of `step` in [lo, hi] (when
    `step` is a float like 0.1 the values carry rounding error; fine for
    per-series use).  `cross` = list of thresholds the walk should jump over."""
    nb = Notation()
    k_lo, k_hi = int(math.ceil(lo / step)), int(math.floor(hi / step))
    k = rng.randint(k_lo, k_hi) if start is None else int(round(start / step))
    while nb.slots < n:
        rem = n - nb.slots
        r = rng.random()
        if gaps and r < 0.06 and nb.slots > 0:
            nb.gap(rng.randint(1, min(4, rem)))
        elif stales and r < 0.10 and nb.slots > 0:
            nb.stale()
        elif r < 0.10 + jump_p:
            # threshold crossing / jump
            if cross and rng.random() < 0.7:
                t = rng.choice(cross)
                kt = t / step
                if k * step <= t:
                    k = min(k_hi, int(math.floor(kt)) + rng.randint(1, 6))
                else:
                    k = max(k_lo, int(math.ceil(kt)) - rng.randint(1, 6))
            else:
                k = rng.randint(k_lo, k_hi)
            cnt = rng.randint(1, min(3, rem))
            if cnt == 1 or rng.random() < 0.5:
                for _ in range(cnt):
                    nb.lit(round(k * step, 10))
            else:
                nb.run(round(k * step, 10), 0, cnt - 1)
        else:
            m = rng.randint(0, min(12, rem - 1))
            d = rng.randint(-max_step_mult, max_step_mult)
            # keep inside [k_lo, k_hi]
            while d != 0 and not (k_lo <= k + d * m <= k_hi):
                d = d - 1 if d > 0 else d + 1
            nb.run(round(k * step, 10), round(d * step, 10), m)
            k += d * m
    return nb.text()


def gen_counter(rng, n, max_inc, inc_step=1, reset_p=0.08, gaps=True, stales=True,
                flat_p=0.15, start_max=50, max_run=15):
    """Monotone counter with resets; increments are multiples of inc_step."""
    nb = Notation()
    c = rng.randint(0, start_max) * inc_step
    first = True
    while nb.slots < n:
        rem = n - nb.slots
        r = rng.random()
        if not first and gaps and r < 0.05:
            nb.gap(rng.randint(1, min(3, rem)))
            continue
        if not first and stales and r < 0.08:
            nb.stale()
            continue
        if not first and r < 0.08 + reset_p:
            c = rng.randint(0, 3) * inc_step  # counter reset
        m = rng.randint(0, min(max_run, rem - 1))
        d = 0 if rng.random() < flat_p else rng.randint(0, max_inc)
        nb.run(c, d * inc_step, m)
        c = last_of_run(c, d * inc_step, m)
        c += rng.randint(0, max_inc) * inc_step
        first = False
    return nb.text()


def gen_histogram(rng, n, les, max_obs, gaps=True):
    """Classic histogram buckets (cumulative over le, monotone over time with
    common resets).  Returns {le: values}."""
    nbs = {le: Notation() for le in les}
    base = [0] * len(les)
    cum = 0
    for j in range(len(les)):
        cum += rng.randint(0, 20)
        base[j] = cum
    first = True
    slots = 0
    while slots < n:
        rem = n - slots
        r = rng.random()
        if not first and gaps and r < 0.05:
            k = rng.randint(1, min(3, rem))
            for le in les:
                nbs[le].gap(k)
            slots += k
            continue
        if not first and r < 0.12:
            base = [0] * len(les)  # reset
        m = rng.randint(0, min(12, rem - 1))
        # per-bin observations per step, cumulative over le
        obs = [rng.randint(0, max_obs) for _ in les]
        # skew: sometimes everything lands in a high bucket
        if rng.random() < 0.3:
            hot = rng.randrange(len(les))
            obs = [0] * len(les)
            obs[hot] = rng.randint(1, max_obs)
        inc = []
        s = 0
        for o in obs:
            s += o
            inc.append(s)
        for j, le in enumerate(les):
            nbs[le].run(base[j], inc[j], m)
        base = [last_of_run(base[j], inc[j], m) + inc[j] for j in range(len(les))]
        slots += m + 1
        first = False
    return {le: nbs[le].text() for le in les}


def series_name(metric, labels):
    if not labels:
        return metric
    return metric + "{" + ",".join("%s=%s" % (k, go_quote(v)) for k, v in labels) + "}"


# --------------------------------------------------------------------------
# HSOF rules: metric generators per alert
# --------------------------------------------------------------------------

def load_hsof_alerts():
    with open(HSOF_RULES_SRC) as f:
        doc = yaml.safe_load(f)
    alerts = {}
    for g in doc["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                alerts[r["alert"]] = r["expr"]
    return alerts


# For each HSOF alert: (metric generators, value expressions for promql_expr_test)
# A generator is f(rng, n, ctx) -> list of (series, values).
def _gpus(rng, ctx):
    if "gpus" not in ctx:
        ctx["gpus"] = sorted(rng.sample(["0", "1", "2", "3"], rng.randint(1, 4)))
    return ctx["gpus"]


def _insts(rng, ctx):
    if "insts" not in ctx:
        ctx["insts"] = sorted(rng.sample(["node-a:9100", "node-b:9100", "node-c:9100"],
                                         rng.randint(1, 2)))
    return ctx["insts"]


def regime(rng, lo, hi, below, above):
    """Value range for a walk: the full range or one side of a threshold."""
    r = rng.random()
    if r < 0.35:
        return lo, hi
    if r < 0.7:
        return below
    return above


def hsof_series(alert, rng, n, ctx, interval_s):
    out = []
    if alert in ("GPUUtilizationLow", "GPUUtilizationHigh"):
        # avg() over up to 4 series: multiples of 0.75 keep the incremental mean exact
        if "util_regime" not in ctx:
            ctx["util_regime"] = rng.choice([(0, 99.75, [20, 95]), (0, 24, [20]), (92.25, 99.75, [95])])
        if "util_done" not in ctx:
            ctx["util_done"] = True
            lo, hi, cross = ctx["util_regime"]
            for g in _gpus(rng, ctx):
                out.append((series_name("hsof_gpu_utilization_percent", [("gpu_id", g)]),
                            gen_gauge(rng, n, lo, hi, 0.75, cross=cross, stales=rng.random() < 0.5,
                                      jump_p=0.08)))
    elif alert == "GPUMemoryExhaustion":
        for g in _gpus(rng, ctx):
            total = rng.choice([8, 16, 24, 40, 80]) * 2 ** 30
            out.append((series_name("hsof_gpu_memory_total_bytes", [("gpu_id", g)]),
                        "%dx%d" % (total, n - 1) if rng.random() < 0.8 else
                        gen_gauge(rng, n, total, total, total, gaps=True, stales=True)))
            out.append((series_name("hsof_gpu_memory_used_bytes", [("gpu_id", g)]),
                        gen_gauge(rng, n, 0.5 * total, total, total / 256, cross=[0.9 * total])))
    elif alert == "GPUTemperatureHigh":
        for g in _gpus(rng, ctx):
            out.append((series_name("hsof_gpu_temperature_celsius", [("gpu_id", g)]),
                        gen_gauge(rng, n, 60, 99, 0.5, cross=[85])))
    elif alert in ("GPUDown", "SystemDown"):
        job = "hsof-gpu-exporter" if alert == "GPUDown" else "hsof-main"
        for inst in _insts(rng, ctx):
            out.append((series_name("up", [("job", job), ("instance", inst)]),
                        gen_gauge(rng, n, 0, 1, 1, max_step_mult=0, jump_p=0.3)))
        if rng.random() < 0.3:  # a series the matcher must not select
            out.append((series_name("up", [("job", "other"), ("instance", "x:1")]), "0x%d" % (n - 1)))
    elif alert == "PipelineStageTimeout":
        for st in rng.sample(["load", "select", "train", "export"], rng.randint(1, 3)):
            out.append((series_name("hsof_stage_duration_seconds", [("stage", st)]),
                        gen_gauge(rng, n, 0, 600, 7.5, cross=[300], max_step_mult=8)))
    elif alert == "FeatureSelectionQualityLow":
        lo, hi = regime(rng, 0.3, 0.9, (0.4, 0.59), (0.58, 0.9))
        out.append(("hsof_selection_quality_score",
                    gen_gauge(rng, n, lo, hi, 0.01, cross=[0.6], max_step_mult=3)))
    elif alert == "ModelInferenceLatencyHigh":
        les = ["0.001", "0.0025", "0.005", "0.01", "+Inf"]
        h = gen_histogram(rng, n, les, 6)
        for le in les:
            out.append((series_name("hsof_metamodel_inference_latency_seconds_bucket", [("le", le)]), h[le]))
    elif alert in ("PipelineErrorRate", "ErrorBudgetExhausted"):
        if "errors_done" not in ctx:
            ctx["errors_done"] = True
            out.append(("hsof_errors_total", gen_counter(rng, n, 8, reset_p=0.05)))
            out.append(("hsof_requests_total", gen_counter(rng, n, 200, reset_p=0.05)))
    elif alert == "FeatureProcessingStalled":
        # alternate active and stalled phases of 5-35 minutes
        nb = Notation()
        c = rng.randint(0, 100)
        while nb.slots < n:
            m = min(n - nb.slots - 1, rng.randint(5, 35) * 60 // int(interval_s))
            d = 0 if rng.random() < 0.5 else rng.randint(1, 5)
            if rng.random() < 0.1 and nb.slots:
                c = 0  # reset
            nb.run(c, d, m)
            c = last_of_run(c, d, m) + d
            if rng.random() < 0.15 and nb.slots < n:
                nb.gap(1) if rng.random() < 0.5 else nb.stale()
        out.append(("hsof_features_processed_total", nb.text()))
    elif alert == "HighMemoryUsage":
        for inst in _insts(rng, ctx):
            tot = rng.choice([16, 32, 64]) * 2 ** 30
            out.append((series_name("node_memory_MemTotal_bytes", [("instance", inst)]), "%dx%d" % (tot, n - 1)))
            out.append((series_name("node_memory_MemAvailable_bytes", [("instance", inst)]),
                        gen_gauge(rng, n, 0, rng.choice([0.15, 0.3]) * tot, tot / 512, cross=[0.1 * tot])))
    elif alert == "HighCPUUsage":
        # exactly one idle series per instance: avg by(instance) over one
        # member is exact whatever the order
        for inst in _insts(rng, ctx):
            nb = Notation()
            c = rng.randint(0, 10000)
            busy = rng.random() < 0.6
            while nb.slots < n:
                m = rng.randint(0, min(10, n - nb.slots - 1))
                # idle seconds per interval
                d = rng.randint(0, int(interval_s) // 6) if busy else rng.randint(0, int(interval_s))
                if rng.random() < 0.06 and nb.slots:
                    c = rng.randint(0, 10)  # reset (reboot)
                nb.run(c, d, m)
                c = last_of_run(c, d, m) + (rng.randint(0, int(interval_s) // 6) if busy
                                            else rng.randint(0, int(interval_s)))
            out.append((series_name("node_cpu_seconds_total", [("cpu", "0"), ("instance", inst), ("mode", "idle")]),
                        nb.text()))
            out.append((series_name("node_cpu_seconds_total", [("cpu", "0"), ("instance", inst), ("mode", "user")]),
                        gen_counter(rng, n, int(interval_s))))
    elif alert == "DiskSpaceLow":
        for inst in _insts(rng, ctx):
            size = rng.choice([100, 500, 1000]) * 2 ** 30
            for mp in ["/", "/data"] if rng.random() < 0.4 else ["/"]:
                lab = [("instance", inst), ("mountpoint", mp)]
                out.append((series_name("node_filesystem_size_bytes", lab), "%dx%d" % (size, n - 1)))
                out.append((series_name("node_filesystem_avail_bytes", lab),
                            gen_gauge(rng, n, 0, 0.3 * size, size / 1024, cross=[0.1 * size])))
    elif alert == "BackupFailed":
        out.append(("hsof_backup_failed_total", gen_counter(rng, n, 1, flat_p=0.7, start_max=0)))
    elif alert == "BackupOverdue":
        base = -86400 + rng.randint(-300, 900)
        out.append(("hsof_last_successful_backup_timestamp",
                    gen_gauge(rng, n, base - 600, base + 3600, 60, start=base, max_step_mult=2)))
    elif alert == "BackupStorageSpaceLow":
        tot = rng.choice([1, 2, 4]) * 2 ** 40
        out.append(("hsof_backup_storage_total_bytes", "%dx%d" % (tot, n - 1)))
        lo = rng.choice([0.6, 0.8])
        out.append(("hsof_backup_storage_used_bytes", gen_gauge(rng, n, lo * tot, tot, tot / 400, cross=[0.85 * tot])))
    elif alert == "ThroughputLow":
        out.append(("hsof_datasets_processed_total", gen_counter(rng, n, 1, flat_p=0.5, start_max=5,
                                                                max_run=rng.choice([15, 30]))))
    elif alert == "FeatureReductionRatioAnomaly":
        lo, hi = regime(rng, 0, 0.3, (0.0, 0.06), (0.14, 0.3))
        out.append(("hsof_feature_reduction_ratio", gen_gauge(rng, n, lo, hi, 0.01, cross=[0.05, 0.15])))
    elif alert == "CostBudgetExceeded":
        out.append(("hsof_compute_cost_dollars_total", gen_counter(rng, n, 2, inc_step=0.25, reset_p=0.03)))
    elif alert == "HighLatency":
        les = ["1", "5", "10", "30", "60", "+Inf"]
        h = gen_histogram(rng, n, les, 5)
        for le in les:
            out.append((series_name("hsof_request_duration_seconds_bucket", [("le", le)]), h[le]))
    elif alert == "HealthCheckFailing":
        out.append(("hsof_health_check_status", gen_gauge(rng, n, 0, 2, 1, max_step_mult=0, jump_p=0.3)))
    else:
        raise KeyError(alert)
    return out


# Value expressions worth checking bit-exactly, per HSOF alert.
HSOF_VALUE_EXPRS = {
    "GPUUtilizationLow": ["avg(hsof_gpu_utilization_percent)"],
    "GPUUtilizationHigh": ["avg(hsof_gpu_utilization_percent)", "hsof_gpu_utilization_percent"],
    "GPUMemoryExhaustion": ["(hsof_gpu_memory_used_bytes / hsof_gpu_memory_total_bytes) * 100"],
    "GPUTemperatureHigh": ["hsof_gpu_temperature_celsius"],
    "GPUDown": ['up{job="hsof-gpu-exporter"} == 0', "up"],
    "PipelineStageTimeout": ["hsof_stage_duration_seconds"],
    "FeatureSelectionQualityLow": ["hsof_selection_quality_score"],
    "ModelInferenceLatencyHigh": ["histogram_quantile(0.95, rate(hsof_metamodel_inference_latency_seconds_bucket[5m]))",
                                  "rate(hsof_metamodel_inference_latency_seconds_bucket[5m])"],
    "PipelineErrorRate": ["rate(hsof_errors_total[5m]) * 100", "increase(hsof_errors_total[5m])"],
    "FeatureProcessingStalled": ["increase(hsof_features_processed_total[10m])"],
    "SystemDown": ['up{job="hsof-main"}'],
    "HighMemoryUsage": ["(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes * 100"],
    "HighCPUUsage": ['100 - (avg by(instance) (irate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)',
                     'irate(node_cpu_seconds_total[5m])'],
    "DiskSpaceLow": ['(node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"}) * 100'],
    "BackupFailed": ["hsof_backup_failed_total"],
    "BackupOverdue": ["time() - hsof_last_successful_backup_timestamp"],
    "BackupStorageSpaceLow": ["(hsof_backup_storage_used_bytes / hsof_backup_storage_total_bytes) * 100"],
    "ThroughputLow": ["rate(hsof_datasets_processed_total[10m]) * 600"],
    "FeatureReductionRatioAnomaly": ["abs(hsof_feature_reduction_ratio - 0.1)"],
    "CostBudgetExceeded": ["increase(hsof_compute_cost_dollars_total[1h])"],
    "HighLatency": ["histogram_quantile(0.95, rate(hsof_request_duration_seconds_bucket[5m]))"],
    "ErrorBudgetExhausted": ["(rate(hsof_errors_total[1h]) / rate(hsof_requests_total[1h])) * 100"],
    "HealthCheckFailing": ["hsof_health_check_status != 1", "hsof_health_check_status"],
}

# minimal span (ms) that makes an alert interesting (window + for)
HSOF_SPAN = {
    "FeatureProcessingStalled": 35 * M, "ThroughputLow": 35 * M, "CostBudgetExceeded": 75 * M,
    "ErrorBudgetExhausted": 90 * M, "GPUUtilizationLow": 20 * M, "HighMemoryUsage": 20 * M,
    "HighCPUUsage": 20 * M, "BackupStorageSpaceLow": 20 * M, "FeatureReductionRatioAnomaly": 20 * M,
}

# --------------------------------------------------------------------------
# Own rules: a typed random PromQL generator that keeps results order-exact
# --------------------------------------------------------------------------

# value classes: 'm075' multiples of 0.75 (small), 'dyadic' exact binary
# fractions (small), 'inexact' anything.
JOBS = ["api", "db"]
INSTS = ["i1", "i2"]


class Vec:
    def __init__(self, s, kind, n, labels, constructs=()):
        self.s = s            # expression text (always safe to parenthesise)
        self.kind = kind
        self.n = n            # upper bound of the number of series
        self.labels = frozenset(labels)  # label names on the result (no __name__)
        self.constructs = set(constructs)


class OwnUniverse:
    """Per-file choice of metric families and their series."""

    def __init__(self, rng, n, interval_s):
        self.rng = rng
        self.series = []       # (series, values)
        self.fams = {}         # name -> list of label dicts
        pairs = [(j, i) for j in JOBS for i in INSTS]
        # gauges (multiples of 0.75)
        load = rng.sample(pairs, rng.randint(1, 4))
        self._add("fd_load", [{"job": j, "instance": i} for j, i in load],
                  lambda: gen_gauge(rng, n, 0, 150, 0.75))
        cap_pairs = load if rng.random() < 0.7 else rng.sample(pairs, rng.randint(1, 4))
        self.cap_extra = rng.random() < 0.4   # capacity carries an extra label
        caps = []
        for j, i in cap_pairs:
            d = {"job": j, "instance": i}
            if self.cap_extra:
                d["kind"] = "cap"
            caps.append(d)
        self._add("fd_capacity", caps, lambda: gen_gauge(rng, n, 0.75, 200, 0.75, gaps=False))
        self._add("fd_limit", [{"job": j} for j in rng.sample(JOBS, rng.randint(1, 2))],
                  lambda: gen_gauge(rng, n, 30, 120, 0.75, gaps=False, stales=False))
        self._add("fd_up", [{"job": j, "instance": i} for j, i in rng.sample(pairs, rng.randint(1, 4))],
                  lambda: gen_gauge(rng, n, 0, 1, 1, max_step_mult=0, jump_p=0.3))
        # counters: at most two series each (sums of two floats are order-exact)
        self._add("fd_requests_total", [{"job": "api", "code": c} for c in rng.sample(["200", "500"], rng.randint(1, 2))],
                  lambda: gen_counter(rng, n, 60))
        self._add("fd_errors_total", [{"job": j} for j in rng.sample(JOBS, rng.randint(1, 2))],
                  lambda: gen_counter(rng, n, 5, flat_p=0.3))
        # temperature: arbitrary floats (0.1 steps accumulate rounding error)
        self._add("fd_temp_celsius", [{"sensor": s} for s in rng.sample(["s1", "s2"], rng.randint(1, 2))],
                  lambda: gen_gauge(rng, n, 15, 45, 0.1, max_step_mult=5, cross=[30]))
        self._add("fd_last_success_timestamp", [{"job": "api"}],
                  lambda: gen_gauge(rng, n, -1200, 600, 30, max_step_mult=2))
        # histogram
        self.les = ["0.05", "0.1", "0.5", "1", "+Inf"]
        hjobs = rng.sample(JOBS, rng.randint(1, 2))
        self.fams["fd_latency_seconds_bucket"] = []
        for j in hjobs:
            h = gen_histogram(rng, n, self.les, 4)
            for le in self.les:
                lab = {"job": j, "le": le}
                self.fams["fd_latency_seconds_bucket"].append(lab)
                self.series.append((series_name("fd_latency_seconds_bucket", sorted(lab.items())), h[le]))
        self.hjobs = hjobs

    def _add(self, name, labelsets, gen):
        self.fams[name] = labelsets
        for lab in labelsets:
            self.series.append((series_name(name, sorted(lab.items())), gen()))

    # --- selectors -------------------------------------------------------
    def matchers(self, name):
        """Random matchers; returns (text, matched label dicts)."""
        rng = self.rng
        sets = self.fams[name]
        keys = sorted({k for d in sets for k in d if k != "le"})
        if not keys or rng.random() < 0.35:
            return "", list(sets)
        k = rng.choice(keys)
        vals = sorted({d[k] for d in sets if k in d})
        v = rng.choice(vals) if rng.random() < 0.85 else "zz"
        op = rng.choice(["=", "!=", "=~", "!~"])
        if op in ("=~", "!~") and rng.random() < 0.6:
            v = rng.choice([v[0] + ".*", v + "|zz", "(" + v + ")", ".+"])
        rx = None
        if op in ("=~", "!~"):
            rx = re.compile("^(?:" + v + ")$")

        def ok(d):
            x = d.get(k, "")
            if op == "=":
                return x == v
            if op == "!=":
                return x != v
            if op == "=~":
                return bool(rx.match(x))
            return not rx.match(x)
        cons = {"matcher" + {"=": "_eq", "!=": "_ne", "=~": "_re", "!~": "_nre"}[op]}
        self._last_cons = cons
        return "{%s%s%s}" % (k, op, go_quote(v)), [d for d in sets if ok(d)]

    def sel(self, name, kind):
        self._last_cons = set()
        m, matched = self.matchers(name)
        labels = set()
        for d in self.fams[name]:
            labels |= set(d)
        return Vec(name + m, kind, len(matched), labels, self._last_cons)

    def gauge_sel(self):
        name = self.rng.choice(["fd_load", "fd_load", "fd_capacity", "fd_up", "fd_limit"])
        return self.sel(name, "m075" if name != "fd_up" else "dyadic")


def rand_range(rng, interval_s):
    opts = [60, 120, 180, 300, 600]
    r = rng.choice([o for o in opts if o >= interval_s] or [600])
    return dur_str(r * S)


def par(s):
    """Parenthesise s unless it is a selector or one function call."""
    if re.fullmatch(r'[A-Za-z_:][A-Za-z0-9_:]*(\{[^{}]*\})?', s):
        return s
    m = re.match(r'[A-Za-z_][A-Za-z0-9_]*\(', s)
    if m:
        depth = 0
        for i in range(m.end() - 1, len(s)):
            if s[i] == '(':
                depth += 1
            elif s[i] == ')':
                depth -= 1
                if depth == 0:
                    if i == len(s) - 1:
                        return s
                    break
    return "(" + s + ")"


def gen_vec(u, rng, depth, interval_s):
    """Random vector expression with exactness bookkeeping."""
    choices = ["gauge", "agg", "agg", "rangefn", "rangefn", "histq", "clamp", "abs",
               "scalar_arith", "vecvec", "group_left", "cmp_filter", "cmp_bool",
               "over_time", "over_time", "predict", "time", "scalar_fn", "delta"]
    if depth <= 0:
        choices = ["gauge", "rangefn", "over_time", "histq", "predict", "delta"]
    c = rng.choice(choices)
    R = rand_range(rng, interval_s)
    if c == "gauge":
        return u.gauge_sel()
    if c == "rangefn":
        fn = rng.choice(["rate", "irate", "increase"])
        s = u.sel(rng.choice(["fd_requests_total", "fd_errors_total"]), "inexact")
        return Vec("%s(%s[%s])" % (fn, s.s, R), "inexact", s.n, s.labels, s.constructs | {fn})
    if c == "delta":
        s = u.sel(rng.choice(["fd_temp_celsius", "fd_load"]), "inexact")
        return Vec("delta(%s[%s])" % (s.s, R), "inexact", s.n, s.labels, s.constructs | {"delta"})
    if c == "over_time":
        fn = rng.choice(["avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                         "count_over_time", "last_over_time"])
        base = rng.choice(["fd_load", "fd_temp_celsius", "fd_capacity"])
        s = u.sel(base, "m075")
        kind = "inexact" if base == "fd_temp_celsius" else {
            "avg_over_time": "inexact", "count_over_time": "dyadic"}.get(fn, "m075")
        return Vec("%s(%s[%s])" % (fn, s.s, R), kind, s.n, s.labels, s.constructs | {fn})
    if c == "predict":
        s = u.sel(rng.choice(["fd_temp_celsius", "fd_load"]), "inexact")
        return Vec("predict_linear(%s[%s], %d)" % (s.s, R, rng.choice([60, 300, 3600])),
                   "inexact", s.n, s.labels, s.constructs | {"predict_linear"})
    if c == "histq":
        q = rng.choice(["0.5", "0.9", "0.95", "0.99", "0.25", "0", "1"])
        sel = u.sel("fd_latency_seconds_bucket", "inexact")
        mode = rng.random()
        if mode < 0.4:
            inner = "rate(%s[%s])" % (sel.s, R)
            labels = {"job"}
            n = len(u.hjobs)
        elif mode < 0.7:
            # sum over at most two jobs: commutative, hence order-exact
            inner = "sum by (le) (rate(%s[%s]))" % (sel.s, R)
            labels, n = set(), 1
        else:
            inner = "sum by (job, le) (rate(%s[%s]))" % (sel.s, R)
            labels, n = {"job"}, len(u.hjobs)
        return Vec("histogram_quantile(%s, %s)" % (q, inner), "inexact", n, labels,
                   sel.constructs | {"histogram_quantile", "rate", "sum", "by"})
    if c == "time":
        s = u.sel("fd_last_success_timestamp", "dyadic")
        return Vec("time() - %s" % s.s, "dyadic", s.n, s.labels, s.constructs | {"time", "scalar_vector_arith"})
    if c == "scalar_fn":
        a = u.sel(rng.choice(["fd_limit", "fd_up"]), "m075")
        b = u.gauge_sel()
        # scalar() of a possibly multi-series vector gives NaN; fine
        return Vec("%s * scalar(%s)" % (par(b.s), a.s), "inexact" if b.kind == "inexact" else "dyadic",
                   b.n, b.labels, a.constructs | b.constructs | {"scalar", "scalar_vector_arith"})
    x = gen_vec(u, rng, depth - 1, interval_s)
    xs = par(x.s)
    if c == "agg":
        ops = ["min", "max", "count"]
        if x.kind in ("m075", "dyadic") or x.n <= 2:
            ops.append("sum")
        if (x.kind == "m075" and x.n <= 4) or (x.kind == "dyadic" and x.n <= 2) or x.n <= 1:
            ops.append("avg")
        op = rng.choice(ops)
        labs = sorted(x.labels)
        mode = rng.random()
        if mode < 0.3 or not labs:
            out_labels, txt, cons = set(), "%s(%s)" % (op, x.s), set()
        elif mode < 0.65:
            g = sorted(rng.sample(labs, rng.randint(1, len(labs))))
            out_labels, cons = set(g), {"by"}
            txt = rng.choice(["%s by (%s) (%s)", "%s(%s) by (%s)"])
            txt = txt % ((op, ", ".join(g), x.s) if txt.startswith("%s by") else (op, x.s, ", ".join(g)))
        else:
            g = sorted(rng.sample(labs, rng.randint(1, len(labs))))
            out_labels, cons = x.labels - set(g), {"without"}
            txt = "%s without (%s) (%s)" % (op, ", ".join(g), x.s)
        kind = {"count": "dyadic", "avg": "dyadic" if x.kind != "inexact" else "inexact",
                "sum": x.kind}.get(op, x.kind)
        if op == "sum" and x.kind == "m075" and x.n > 4:
            kind = "m075"
        return Vec(txt, kind, x.n, out_labels, x.constructs | cons | {op})
    if c == "clamp":
        fn = rng.choice(["clamp_min", "clamp_max"])
        k = rng.randint(0, 120) * 0.75
        return Vec("%s(%s, %s)" % (fn, x.s, num(k)), x.kind, x.n, x.labels, x.constructs | {fn})
    if c == "abs":
        k = rng.randint(0, 80) * 0.75
        return Vec("abs(%s - %s)" % (xs, num(k)), x.kind, x.n, x.labels, x.constructs | {"abs"})
    if c == "scalar_arith":
        op, k, kind = rng.choice([("*", 2, x.kind), ("+", 0.75, x.kind), ("-", 1.5, x.kind),
                                  ("/", 4, "dyadic" if x.kind != "inexact" else "inexact"),
                                  ("/", 3, "inexact"), ("*", 0.1, "inexact"), ("*", 100, x.kind)])
        if rng.random() < 0.3 and op in "*+":
            txt = "%s %s %s" % (num(k), op, xs)
        else:
            txt = "%s %s %s" % (xs, op, num(k))
        return Vec(txt, kind, x.n, x.labels, x.constructs | {"scalar_vector_arith"})
    if c == "cmp_filter":
        op = rng.choice([">", "<", ">=", "<=", "==", "!="])
        k = rng.randint(0, 150) * 0.75 if x.kind != "inexact" else round(rng.uniform(0, 50), 2)
        return Vec("%s %s %s" % (xs, op, num(k)), x.kind, x.n, x.labels, x.constructs | {"comparison"})
    if c == "cmp_bool":
        op = rng.choice([">", "<", ">=", "<=", "==", "!="])
        k = rng.randint(0, 150) * 0.75
        return Vec("%s %s bool %s" % (xs, op, num(k)), "dyadic", x.n, x.labels, x.constructs | {"bool", "comparison"})
    if c == "vecvec":
        # one-to-one: fd_load vs fd_capacity (same job/instance; capacity may carry kind="cap")
        a = u.sel("fd_load", "m075")
        b = u.sel("fd_capacity", "m075")
        op = rng.choice(["/", "-", "+", "*", ">", "<", "== bool", ">= bool"])
        if u.cap_extra:
            mt = rng.choice(["on(job, instance)", "ignoring(kind)", "on (instance, job)"])
        else:
            mt = rng.choice(["", "on(job, instance)", "ignoring(kind)"])
        cons = {"on"} if mt.startswith("on") else ({"ignoring"} if mt else set())
        kind = {"/": "inexact", "*": "dyadic"}.get(op, "m075" if "bool" not in op else "dyadic")
        txt = "%s %s %s %s" % (a.s, op, mt, b.s) if mt else "%s %s %s" % (a.s, op, b.s)
        return Vec(txt, kind, min(a.n, b.n), {"job", "instance"},
                   a.constructs | b.constructs | cons | {"vector_arith"} | ({"bool"} if "bool" in op else set()))
    if c == "group_left":
        a = u.sel("fd_load", "m075")
        b = u.sel("fd_limit", "m075")
        if rng.random() < 0.5:
            op = rng.choice(["/", "-", ">", "*"])
            return Vec("%s %s on(job) group_left %s" % (a.s, op, b.s),
                       "inexact" if op == "/" else "dyadic", a.n, {"job", "instance"},
                       a.constructs | b.constructs | {"on", "group_left", "vector_arith"})
        op = rng.choice(["-", "*", "<"])
        return Vec("%s %s on(job) group_right %s" % (b.s, op, a.s), "dyadic", a.n, {"job", "instance"},
                   a.constructs | b.constructs | {"on", "group_right", "vector_arith"})
    raise AssertionError(c)


def gen_scalar_expr(u, rng):
    e = rng.choice([
        ("time()", {"time"}),
        ("time() / 60 + 1", {"time", "scalar_arith"}),
        ("2 * 3 + 1 - 0.5", {"scalar_arith"}),
        ("10 / 4 > bool 2", {"scalar_arith", "bool"}),
        ("scalar(sum(fd_up)) * 2", {"scalar", "sum"}),
        ("scalar(fd_limit) - 1", {"scalar"}),
        ("time() - 30", {"time"}),
        ("clamp_max(fd_load, 75) + 0 * time()", {"clamp_max", "time"}),
        ("-fd_load{job=\"api\"} + 1", {"unary_minus"}),
    ])
    return Vec(e[0], "dyadic", 1, set(), e[1])


# The right-hand side is checked first; promtool reports the first match group
# with duplicates it meets, in random series order, so only one group (job="api")
# may have duplicates, and it has at most two members (their order in the
# message is random and gets normalised).
MANY_TO_MANY_EXPRS = [
    'fd_load + on(job) fd_load{job="api"}',
    'fd_load * on(job) fd_capacity{job="api"}',
    'fd_up == ignoring(instance) fd_up{job="api"}',
    'fd_load / on(job) group_left fd_load{job="api"}',
]


def own_rules(u, rng, interval_s, n_groups):
    """Returns (groups spec, alert list, record list).  Thresholds are filled in
    after probing (pass 0)."""
    groups = []
    alerts = []
    records = []
    rec_vecs = []
    names = rng.sample(["fd_a", "fd_b", "fd_c", "fd_d"], n_groups)
    for gi, gname in enumerate(names):
        rules = []
        for _ in range(rng.randint(1, 3) if rng.random() < 0.5 else 0):
            v = gen_vec(u, rng, rng.randint(0, 2), interval_s)
            rname = "fd:rec_%s_%d:%s" % (gname[-1], len(records), rng.choice(["sum", "val", "ratio"]))
            rules.append({"record": rname, "expr": v.s})
            records.append((rname, v))
            rv = Vec(rname, v.kind, v.n, v.labels, v.constructs | {"recording_rule"})
            rec_vecs.append(rv)
        for _ in range(rng.randint(1, 4)):
            if rec_vecs and rng.random() < 0.3:
                lhs = rng.choice(rec_vecs)
            else:
                lhs = gen_vec(u, rng, rng.randint(0, 2), interval_s)
            aname = "Fd%s%d" % (gname[-1].upper(), len(alerts))
            rule = {"alert": aname, "expr": None, "_lhs": lhs,
                    "_op": rng.choice([">", ">", "<", ">=", "<=", "!=", "=="])}
            if rng.random() < 0.8:
                rule["for"] = rng.choice(["0s", "30s", "1m", "2m", "5m", "90s"])
            if rng.random() < 0.2:
                rule["keep_firing_for"] = rng.choice(["1m", "2m", "3m"])
            labs = {"severity": rng.choice(["warning", "critical", "page"])}
            if rng.random() < 0.3:
                labs["team"] = rng.choice(["core", "db"])
            if rng.random() < 0.2 and "job" in lhs.labels:
                labs["origin"] = "{{ $labels.job }}"
            rule["labels"] = labs
            ann = {}
            tmpl = rng.choice([
                "value {{ $value }}",
                "{{ $labels.job }}/{{ $labels.instance }} is {{ $value }}",
                "Current: {{ $value }}% on {{ $labels.instance }} ({{ $externalLabels.cluster }})",
                "no value here",
                "{{ $value }}",
            ])
            ann["summary"] = tmpl
            if rng.random() < 0.4:
                ann["description"] = "threshold crossed: {{ $value }} for {{ $labels.job }}"
            if rng.random() < 0.85:
                rule["annotations"] = ann
            rules.append(rule)
            alerts.append(rule)
        if rng.random() < 0.2:
            rng.shuffle(rules)
        groups.append({"name": gname, "rules": rules})
    return groups, alerts, records


def finish_rule(rule):
    out = {}
    for k in ("alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"):
        if k in rule and rule[k] is not None:
            out[k] = rule[k]
    return out


# --------------------------------------------------------------------------
# promtool output parsing
# --------------------------------------------------------------------------

class Parsed:
    def __init__(self):
        self.header = []       # stdout lines
        self.status = None     # 'SUCCESS' | 'FAILED' | None
        self.warnings = []
        self.records = []      # list of dicts with 'kind', 'raw' and fields
        self.trailing = []     # unparsed stderr lines (before FAILED)
        self.parse_error = None


_DUP_RE = re.compile(r'(on the (?:left|right) hand-side of the operation: )\[(.*)\](;many-to-many)')


def normalize_msg(msg):
    """Sort the series list in 'found duplicate series' errors (random order)."""
    m = _DUP_RE.search(msg)
    if not m:
        return msg
    body = m.group(2)
    items = []
    i = 0
    try:
        while i < len(body):
            ls, j = parse_label_set(body, i)
            items.append(body[i:j])
            i = j
            if body.startswith(", ", i):
                i += 2
    except (ValueError, IndexError):
        return msg
    return msg[:m.start()] + m.group(1) + "[" + ", ".join(sorted(items)) + "]" + m.group(3) + msg[m.end():]


def parse_samples(s):
    s = s.strip()
    if s == "nil":
        return ()
    out = []
    i = 0
    while i < len(s):
        ls, i = parse_label_set(s, i)
        if s[i] != ' ':
            raise ValueError("expected ' ' after labels in %r" % s)
        j = s.find(", {", i + 1)
        if j < 0:
            j = len(s)
        out.append((ls, canon_float(s[i + 1:j])))
        i = j + 2 if j < len(s) else j
    return tuple(out)


def parse_alert_list(lines):
    """lines: the exp/got part of an alert failure. Returns tuple of (labels, annotations)."""
    out = []
    labels = None
    for ln in lines:
        t = ln.strip()
        if t.startswith("Labels:"):
            labels, _ = parse_label_set(t, len("Labels:"))
        elif t.startswith("Annotations:"):
            ann, j = parse_label_set(t, len("Annotations:"))
            out.append((labels, ann))
    return tuple(out)


def parse_record(rec):
    raw = rec["raw"]
    first = raw[0]
    if rec["kind"] == "alert":
        k = 0
        group = None
        if first.startswith("    name: "):
            group = first[len("    name: "):].rstrip(",")
            k = 1
        m = re.match(r'^    alertname: (.*), time: (\S+), $', raw[k])
        if not m:
            raise ValueError("bad alert header %r" % raw[k])
        rec["group"], rec["alertname"], rec["time"] = group, m.group(1), m.group(2)
        body = raw[k + 1:]
        gi = next(i for i, ln in enumerate(body) if ln.startswith("        got:"))
        rec["exp"] = parse_alert_list(body[:gi])
        rec["got"] = parse_alert_list(body[gi:])
        rec["key"] = ("alert", group, rec["alertname"], rec["time"], rec["exp"], rec["got"])
    elif rec["kind"] == "expr":
        expr, i = parse_go_string(first, len("    expr: "))
        m = re.match(r', time: ([^,]+),(?: err: (.*))?$', first[i:])
        if not m:
            raise ValueError("bad expr header %r" % first)
        rec["expr"], rec["time"] = expr, m.group(1)
        if m.group(2) is not None:
            rec["kind"] = "expr_err"
            rec["msg"] = normalize_msg(m.group(2))
            rec["key"] = ("expr_err", expr, rec["time"])
        else:
            exp = [ln for ln in raw[1:] if ln.startswith("        exp: ")]
            got = [ln for ln in raw[1:] if ln.startswith("        got: ")]
            rec["exp"] = parse_samples(exp[0][len("        exp: "):])
            rec["got"] = parse_samples(got[0][len("        got: "):])
            rec["key"] = ("expr", expr, rec["time"], rec["exp"], rec["got"])
    elif rec["kind"] == "rule_err":
        m = re.match(r'^    rule: (.*?), time: (\S+), err: (.*)$', first)
        if not m:
            raise ValueError("bad rule error %r" % first)
        rec["rule"], rec["time"], rec["msg"] = m.group(1), m.group(2), normalize_msg(m.group(3))
        rec["key"] = ("rule_err", rec["rule"], rec["time"])
    else:
        rec["msg"] = "\n".join(raw)
        rec["key"] = ("other",)


def parse_output(stdout, stderr):
    p = Parsed()
    p.header = stdout.split("\n")
    if any(ln == "  SUCCESS" for ln in p.header):
        p.status = "SUCCESS"
    lines = stderr.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cur = None
    in_failed = False
    for ln in lines:
        if ln.startswith("  WARNING: "):
            p.warnings.append(ln)
            continue
        if ln == "  FAILED:":
            in_failed = True
            p.status = "FAILED"
            continue
        if not in_failed:
            p.trailing.append(ln)
            continue
        if ln.startswith("    name: "):
            cur = {"kind": "alert", "raw": [ln]}
            p.records.append(cur)
        elif ln.startswith("    alertname: "):
            if cur is not None and cur["kind"] == "alert" and len(cur["raw"]) == 1 and cur["raw"][0].startswith("    name: "):
                cur["raw"].append(ln)
            else:
                cur = {"kind": "alert", "raw": [ln]}
                p.records.append(cur)
        elif ln.startswith("    expr: "):
            cur = {"kind": "expr", "raw": [ln]}
            p.records.append(cur)
        elif ln.startswith("    rule: "):
            cur = {"kind": "rule_err", "raw": [ln]}
            p.records.append(cur)
        elif ln.startswith("        ") and cur is not None and cur["kind"] in ("alert", "expr"):
            cur["raw"].append(ln)
        elif ln.startswith("  line ") and cur is not None and cur["kind"] == "other":
            cur["raw"].append(ln)
        else:
            cur = {"kind": "other", "raw": [ln]}
            p.records.append(cur)
    for rec in p.records:
        try:
            parse_record(rec)
        except (ValueError, IndexError, StopIteration) as e:
            p.parse_error = "cannot parse %r: %s" % (rec["raw"][:3], e)
            rec["key"] = ("unparsed", tuple(rec["raw"]))
    return p


def normalized_text(p, strict_messages):
    """Text of a result with random parts normalised (and, unless strict,
    error message texts replaced by a placeholder)."""
    out = list(p.header) + ["--stderr--"] + p.trailing + p.warnings
    if p.status == "FAILED":
        out.append("  FAILED:")
    for rec in p.records:
        raw = list(rec["raw"])
        if rec["kind"] == "expr_err":
            i = raw[0].rfind(", err: ")
            raw[0] = raw[0][:i + 7] + (rec["msg"] if strict_messages else "<message>")
        elif rec["kind"] == "rule_err":
            i = raw[0].find(", err: ")
            raw[0] = raw[0][:i + 7] + (rec["msg"] if strict_messages else "<message>")
        elif rec["kind"] == "other" and not strict_messages:
            raw = ["<file-level error>"]
            if out and out[-1] == raw[0]:
                continue  # see semantic_view: one file-level failure
        out.extend(raw)
    return out


def semantic_view(p, strict_messages):
    keys = []
    for rec in p.records:
        k = rec["key"]
        if strict_messages and "msg" in rec:
            k = k + (rec["msg"],)
        # A file-level failure counts once: promtool stops at the first
        # problem of a rule file where firedrill lists every problem it found.
        if k == ("other",) and k in keys:
            continue
        keys.append(k)
    return sorted(keys, key=repr)


# --------------------------------------------------------------------------
# Running tools
# --------------------------------------------------------------------------

class RunResult:
    def __init__(self, rc, stdout, stderr, secs, timed_out=False, error=None):
        self.rc, self.stdout, self.stderr, self.secs = rc, stdout, stderr, secs
        self.timed_out, self.error = timed_out, error


def run_tool(argv, cwd):
    t0 = time.monotonic()
    try:
        cp = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=TIMEOUT_S)
        return RunResult(cp.returncode, cp.stdout.decode("utf-8", "replace"),
                         cp.stderr.decode("utf-8", "replace"), time.monotonic() - t0)
    except subprocess.TimeoutExpired as e:
        return RunResult(None, (e.stdout or b"").decode("utf-8", "replace"),
                         (e.stderr or b"").decode("utf-8", "replace"), time.monotonic() - t0, True)
    except OSError as e:
        return RunResult(None, "", "", time.monotonic() - t0, error=str(e))


# --------------------------------------------------------------------------
# Building one test file
# --------------------------------------------------------------------------

BROKEN_KINDS = ["rule_yaml", "rule_expr", "test_yaml", "unknown_field", "expr_parse",
                "labels_parse", "missing_alertname", "many_to_many_rule", "many_to_many_expr",
                "dup_group_order", "missing_rule_file", "string_result", "bad_series",
                "unknown_rule_field", "dup_series"]


class FileBuilder:
    def __init__(self, idx, seed, workdir, promtool):
        self.idx = idx
        self.rng = random.Random("%s/%d" % (seed, idx))
        self.workdir = workdir
        self.promtool = promtool
        self.name = "t%04d" % idx
        self.relpath = os.path.join("files", self.name + ".yml")
        self.path = os.path.join(workdir, self.relpath)
        self.own_rules_rel = self.name + ".rules.yml"
        self.constructs = set()
        self.promtool_secs = 0.0
        self.perturbation = None
        self.broken = None

    def promtool_run(self):
        r = run_tool([self.promtool, "test", "rules", self.relpath], self.workdir)
        self.promtool_secs += r.secs
        if r.timed_out or r.error:
            raise RuntimeError("promtool failed to run on %s: %s" % (self.relpath, r.error or "timeout"))
        return r

    def write(self, doc):
        text = dump_yaml(doc)
        if self.broken == "test_yaml":
            lines = text.split("\n")
            i = self.rng.randrange(1, max(2, len(lines) - 1))
            lines.insert(i, self.rng.choice(["  - bad: [1, 2", "\tinterval: 1m", " x: y: z", "- - -: :"]))
            text = "\n".join(lines)
        with open(self.path, "w") as f:
            f.write(text)

    def write_rules(self, groups):
        with open(os.path.join(self.workdir, "files", self.own_rules_rel), "w") as f:
            f.write(dump_yaml({"groups": groups}))

    # ---- plan ---------------------------------------------------------
    def build(self):
        rng = self.rng
        mode = rng.choices(["hsof", "own", "both"], [0.4, 0.4, 0.2])[0]
        self.broken = rng.choice(BROKEN_KINDS) if rng.random() < 0.08 else None
        if self.broken in ("many_to_many_rule", "many_to_many_expr") and mode == "hsof":
            mode = "both"
        eval_iv = rng.choice([15, 30, 60, 60, 60])
        iv = rng.choice([x for x in (15, 30, 60, 60, 120) if x >= 15])
        hsof_alerts = []
        if mode in ("hsof", "both"):
            all_alerts = list(load_hsof_alerts())
            hsof_alerts = rng.sample(all_alerts, rng.randint(2, 6) if mode == "hsof" else rng.randint(1, 3))
        span = 10 * M + rng.randint(0, 20) * M
        for a in hsof_alerts:
            span = max(span, HSOF_SPAN.get(a, 0) + rng.randint(0, 10) * M)
        # keep promtool's work bounded (all 23 HSOF rules are evaluated at
        # every step, ~3.5 ms per step)
        max_steps = 60 if hsof_alerts else 150
        while span // (eval_iv * S) > max_steps:
            eval_iv *= 2
        while span // (iv * S) > 400:
            iv *= 2
        self.eval_iv_ms = eval_iv * S
        self.iv_ms = iv * S
        self.span = span
        n = span // (iv * S) + 1 + rng.randint(0, 3)
        self.n = n

        series = []
        ctx = {}
        for a in hsof_alerts:
            series += hsof_series(a, rng, n, ctx, iv)
        self.hsof_alerts = hsof_alerts
        self.own_groups = []
        self.own_alerts = []
        self.records = []
        u = None
        if mode in ("own", "both"):
            u = OwnUniverse(rng, n, iv)
            series += u.series
            self.own_groups, self.own_alerts, self.records = own_rules(u, rng, iv, rng.randint(1, 3))
        self.u = u
        rng.shuffle(series)
        self.series = series

        # eval times (ms)
        steps = span // self.eval_iv_ms

        def etime():
            t = rng.randint(0, steps) * self.eval_iv_ms
            if rng.random() < 0.2:
                t += rng.randint(1, self.eval_iv_ms // S - 1) * S if self.eval_iv_ms > S else 0
            return min(t, span)
        self.etime = etime

        # rule files / group order
        rule_files = []
        if hsof_alerts:
            rule_files.append(HSOF_RULES_NAME)
        if self.own_groups:
            rule_files.append(self.own_rules_rel if rng.random() < 0.85 else self.name + ".rules.y*ml")
        self.rule_files = rule_files
        self.group_order = None
        if self.own_groups:
            order = [g["name"] for g in self.own_groups]
            rng.shuffle(order)
            self.group_order = order

        # alert tests
        alert_names = hsof_alerts + [a["alert"] for a in self.own_alerts]
        self.alert_tests = []
        if alert_names:
            for _ in range(rng.randint(3, 10)):
                self.alert_tests.append({"eval_time": etime(), "alertname": rng.choice(alert_names)})
            if rng.random() < 0.2:
                self.alert_tests.append({"eval_time": etime(), "alertname": "NoSuchAlert"})
        # promql tests
        self.expr_tests = []
        exprs = []
        for a in hsof_alerts:
            exprs += HSOF_VALUE_EXPRS[a]
            self.constructs.add("hsof:" + a)
        if u is not None:
            for _ in range(rng.randint(3, 8)):
                v = gen_vec(u, rng, rng.randint(0, 3), iv)
                exprs.append(v.s)
                self.constructs |= v.constructs
            if rng.random() < 0.3:
                v = gen_scalar_expr(u, rng)
                exprs.append(v.s)
                self.constructs |= v.constructs
            if rng.random() < 0.12:
                exprs.append(rng.choice(MANY_TO_MANY_EXPRS))
                self.constructs.add("many_to_many")
            for rname, v in self.records:
                if rng.random() < 0.5:
                    exprs.append(rname)
            if rng.random() < 0.2:
                exprs.append("ALERTS")
            for a in self.own_alerts:
                self.constructs |= a["_lhs"].constructs
        for e in exprs:
            for _ in range(rng.randint(1, 2)):
                self.expr_tests.append({"expr": e, "eval_time": etime()})
        rng.shuffle(self.expr_tests)
        self.ext_labels = {"cluster": rng.choice(["eu-1", "us-2"])} if rng.random() < 0.5 else None
        self.test_name = rng.choice([None, None, "group %d" % self.idx])
        self.write_eval_interval = not (eval_iv == 60 and rng.random() < 0.5)

        if self.own_alerts:
            self.probe_thresholds()
        self.write_rules_final()
        self.inject_broken_rules()

        # pass 1: empty expectations
        doc = self.doc(expect=None)
        self.inject_broken_test(doc)
        self.write(doc)
        r = self.promtool_run()
        p1 = parse_output(r.stdout, r.stderr)
        if p1.parse_error:
            raise RuntimeError("%s: pass 1 output unparseable: %s" % (self.relpath, p1.parse_error))
        expect = self.learn(p1)
        # NaN never equals NaN in promtool's comparison, so an expectation of
        # NaN always fails; keep such test cases in only some files
        self.dropped_exprs = set()
        for i, got in expect["exprs"].items():
            if any(v == "NaN" for _, v in got) and rng.random() < 0.75:
                self.dropped_exprs.add(i)
        # pass 2
        doc = self.doc(expect=expect)
        self.inject_broken_test(doc)
        want_fail = self.broken is None and rng.random() < 0.3
        if want_fail:
            for attempt in range(4):
                d2 = self.perturb(doc)
                if d2 is None:
                    break
                self.write(d2)
                r = self.promtool_run()
                if r.rc != 0:
                    doc = d2
                    break
                self.perturbation = None
            else:
                self.perturbation = None
        self.write(doc)
        return self

    # ---- pass 0: thresholds between values the LHS really takes -----------
    def probe_thresholds(self):
        rng = self.rng
        tests = []
        steps = self.span // self.eval_iv_ms
        times = sorted(set(rng.randint(0, steps) * self.eval_iv_ms for _ in range(8)))
        for a in self.own_alerts:
            for t in times:
                tests.append({"expr": a["_lhs"].s, "eval_time": t})
        # rules needed for recorded series: write them with placeholder thresholds
        for a in self.own_alerts:
            a["expr"] = "%s %s 0" % (a["_lhs"].s, a["_op"])
        self.write_rules_final()
        doc = {"rule_files": self.rule_files, "evaluation_interval": dur_str(self.eval_iv_ms),
               "group_eval_order": self.group_order,
               "tests": [{"interval": dur_str(self.iv_ms),
                          "input_series": [{"series": YStr(s), "values": YStr(v)} for s, v in self.series],
                          "promql_expr_test": [{"expr": YStr(t["expr"]), "eval_time": dur_str(t["eval_time"]),
                                                "exp_samples": [{"labels": "probe_sentinel", "value": 0}]}
                                               for t in tests]}]}
        if not doc["group_eval_order"]:
            del doc["group_eval_order"]
        self.write(doc)
        r = self.promtool_run()
        p = parse_output(r.stdout, r.stderr)
        vals = {}
        for rec in p.records:
            if rec["kind"] == "expr":
                for _, v in rec["got"]:
                    f = float(v)
                    if math.isfinite(f):
                        vals.setdefault(rec["expr"], set()).add(f)
        for a in self.own_alerts:
            vs = sorted(vals.get(a["_lhs"].s, ()))
            if not vs:
                thr = num(rng.randint(0, 100) * 0.75)
            elif len(vs) == 1 or rng.random() < 0.2:
                thr = repr(rng.choice(vs)) if rng.random() < 0.8 else repr(vs[0] + 1)
            else:
                i = rng.randrange(len(vs) - 1)
                mid = vs[i] + (vs[i + 1] - vs[i]) / 2
                thr = repr(mid)
            if thr.endswith(".0"):
                thr = thr[:-2]
            a["expr"] = "%s %s %s" % (a["_lhs"].s, a["_op"], thr)
        self.constructs.add("threshold_probe")

    def write_rules_final(self):
        if not self.own_groups:
            return
        groups = []
        for g in self.own_groups:
            gg = {"name": g["name"]}
            if self.rng.random() < 0.2:
                gg["interval"] = self.rng.choice(["30s", "2m"])  # ignored by promtool
            gg["rules"] = [finish_rule(r) for r in g["rules"]]
            groups.append(gg)
        self.write_rules(groups)

    # ---- documents --------------------------------------------------------
    def doc(self, expect):
        rng = random.Random("%s/doc" % self.name)  # formatting choices stable across passes
        doc = {"rule_files": list(self.rule_files)}
        if self.write_eval_interval:
            doc["evaluation_interval"] = dur_str(self.eval_iv_ms, rng)
        if self.group_order:
            doc["group_eval_order"] = list(self.group_order)
        tg = {}
        if self.test_name:
            tg["name"] = self.test_name
        tg["interval"] = dur_str(self.iv_ms, rng)
        if self.ext_labels:
            tg["external_labels"] = dict(self.ext_labels)
        tg["input_series"] = [{"series": YStr(s), "values": YStr(v)} for s, v in self.series]
        if self.alert_tests:
            lst = []
            for i, t in enumerate(self.alert_tests):
                item = {"eval_time": dur_str(t["eval_time"], rng), "alertname": t["alertname"]}
                exp = expect["alerts"].get(i) if expect else None
                if exp:
                    item["exp_alerts"] = []
                    for labels, ann in exp:
                        el = {}
                        for k, v in labels:
                            if k == "alertname" and rng.random() < 0.7:
                                continue
                            el[k] = YStr(v)
                        a = {}
                        if el or rng.random() < 0.5:
                            a["exp_labels"] = el
                        if ann:
                            a["exp_annotations"] = {k: YStr(v) for k, v in ann}
                        item["exp_alerts"].append(a)
                elif rng.random() < 0.3:
                    item["exp_alerts"] = []
                lst.append(item)
            tg["alert_rule_test"] = lst
        if self.expr_tests:
            lst = []
            for i, t in enumerate(self.expr_tests):
                if i in getattr(self, "dropped_exprs", ()):
                    continue
                item = {"expr": YStr(t["expr"]), "eval_time": dur_str(t["eval_time"], rng)}
                exp = expect["exprs"].get(i) if expect else None
                if exp:
                    item["exp_samples"] = [{"labels": YStr(labels_text(ls, rng)), "value": YFloat(float(v))}
                                           for ls, v in exp]
                elif rng.random() < 0.5:
                    item["exp_samples"] = []
                lst.append(item)
            tg["promql_expr_test"] = lst
        doc["tests"] = [tg]
        return doc

    def learn(self, p):
        """Map test index -> got, from a pass-1 result (same order as the file)."""
        alerts, exprs = {}, {}
        # alert failures are reported sorted by eval_time (stable within one
        # eval_time, in file order); promql failures in file order
        by_key = {}
        for rec in p.records:
            if rec["kind"] == "alert":
                by_key.setdefault(("a", rec["alertname"], rec["time"]), []).append(rec["got"])
            elif rec["kind"] == "expr":
                by_key.setdefault(("e", rec["expr"], rec["time"]), []).append(rec["got"])
        for i, t in enumerate(self.alert_tests):
            k = ("a", t["alertname"], go_duration_string(t["eval_time"]))
            if by_key.get(k):
                alerts[i] = by_key[k][0]
        for i, t in enumerate(self.expr_tests):
            k = ("e", t["expr"], go_duration_string(t["eval_time"]))
            if by_key.get(k):
                exprs[i] = by_key[k][0]
        self.n_alert_exp = sum(1 for v in alerts.values() if v)
        self.n_expr_exp = sum(1 for v in exprs.values() if v)
        return {"alerts": alerts, "exprs": exprs}

    # ---- perturbations (promtool must then fail) ---------------------------
    def perturb(self, doc):
        rng = self.rng
        d = copy.deepcopy(doc)
        tg = d["tests"][0]
        atests = tg.get("alert_rule_test", [])
        etests = tg.get("promql_expr_test", [])
        opts = []
        with_samples = [t for t in etests if t.get("exp_samples")]
        with_alerts = [t for t in atests if t.get("exp_alerts")]
        if any(math.isfinite(s["value"]) for t in with_samples for s in t["exp_samples"]):
            opts += ["value_bit"] * 3
        if with_samples:
            opts += ["sample_label", "drop_sample"]
        if with_alerts:
            opts += ["drop_alert", "alert_label", "annotation"]
        if atests:
            opts += ["extra_alert", "alert_time"]
        if etests:
            opts += ["expr_time"]
        if not opts:
            return None
        kind = rng.choice(opts)
        if kind == "value_bit":
            cands = [s for t in with_samples for s in t["exp_samples"] if math.isfinite(s["value"])]
            s = rng.choice(cands)
            v = float(s["value"])
            s["value"] = YFloat(math.nextafter(v, math.inf if rng.random() < 0.5 else -math.inf))
        elif kind == "sample_label":
            t = rng.choice(with_samples)
            s = rng.choice(t["exp_samples"])
            txt = str(s["labels"])
            if '="' in txt:
                s["labels"] = YStr(re.sub(r'="([^"]*)"', lambda m: '="%sX"' % m.group(1), txt, count=1))
            else:
                s["labels"] = YStr('{extra="1"}')
        elif kind == "drop_sample":
            t = rng.choice(with_samples)
            t["exp_samples"].pop(rng.randrange(len(t["exp_samples"])))
        elif kind == "drop_alert":
            t = rng.choice(with_alerts)
            t["exp_alerts"].pop(rng.randrange(len(t["exp_alerts"])))
        elif kind == "alert_label":
            t = rng.choice(with_alerts)
            a = rng.choice(t["exp_alerts"])
            a.setdefault("exp_labels", {})["severity"] = "nonexistent"
        elif kind == "annotation":
            t = rng.choice(with_alerts)
            a = rng.choice(t["exp_alerts"])
            ann = a.setdefault("exp_annotations", {})
            if ann:
                k = rng.choice(sorted(ann))
                ann[k] = YStr(ann[k] + " ")
            else:
                ann["summary"] = "x"
        elif kind == "extra_alert":
            t = rng.choice(atests)
            t.setdefault("exp_alerts", []).append({"exp_labels": {"severity": "warning", "bogus": "yes"}})
        elif kind in ("alert_time", "expr_time"):
            t = rng.choice(atests if kind == "alert_time" else etests)
            cur = parse_dur(t["eval_time"])
            nt = cur + self.eval_iv_ms if cur == 0 or rng.random() < 0.5 else cur - self.eval_iv_ms
            t["eval_time"] = dur_str(nt)
        self.perturbation = kind
        return d

    # ---- deliberately broken files ------------------------------------------
    def inject_broken_rules(self):
        b = self.broken
        rules_path = os.path.join(self.workdir, "files", self.own_rules_rel)
        if b == "rule_yaml":
            with open(rules_path, "w") as f:
                f.write("groups:\n- name: broken\n  rules:\n   - alert: X\n  expr: up\n")
            self.ensure_rule_file()
        elif b == "rule_expr":
            with open(rules_path, "w") as f:
                f.write("groups:\n- name: broken\n  rules:\n  - alert: X\n    expr: sum(rate(x[5m]) by (job)\n")
            self.ensure_rule_file()
        elif b == "unknown_rule_field":
            with open(rules_path, "w") as f:
                f.write("groups:\n- name: broken\n  rules:\n  - alert: X\n    expr: up == 0\n    severity: page\n")
            self.ensure_rule_file()
        elif b == "many_to_many_rule":
            groups = [{"name": "m2m", "rules": [{"alert": "ManyToMany", "expr": "fd_dup > on(job) fd_dup"}]}]
            # only one group may fail at a time: a failing rule stops the test group
            # and two groups failing at the same step would be reported in random order
            with open(rules_path, "w") as f:
                f.write(dump_yaml({"groups": [g for g in [
                    {"name": g["name"], "rules": [finish_rule(r) for r in g["rules"]]} for g in self.own_groups]] + groups}))
            self.ensure_rule_file()
            if self.group_order is not None:
                self.group_order = self.group_order + ["m2m"]
            self.series.append(('fd_dup{job="api",instance="zz1"}', "1x%d" % (self.n - 1)))
            self.series.append(('fd_dup{job="api",instance="zz2"}', "2x%d" % (self.n - 1)))
        elif b == "missing_rule_file":
            self.rule_files = self.rule_files + ["does-not-exist.rules.yml"]

    def ensure_rule_file(self):
        if self.own_rules_rel not in self.rule_files:
            self.rule_files = self.rule_files + [self.own_rules_rel]

    def inject_broken_test(self, doc):
        b = self.broken
        tg = doc["tests"][0]
        if b == "unknown_field":
            where = self.rng.choice(["top", "group", "alert", "expr"])
            if where == "top":
                doc["evaluation_intervall"] = "1m"
            elif where == "group" or not (tg.get("alert_rule_test") or tg.get("promql_expr_test")):
                tg["intervals"] = "1m"
            elif where == "alert" and tg.get("alert_rule_test"):
                tg["alert_rule_test"][0]["exp_alert"] = []
            else:
                (tg.get("promql_expr_test") or tg["alert_rule_test"])[0]["exp_sample"] = []
        elif b == "expr_parse":
            tg.setdefault("promql_expr_test", []).append(
                {"expr": YStr(self.rng.choice(["sum(rate(x[5m]) by (job)", "x +", "rate(x[5m)", "x{a=}", "1 +* 2"])),
                 "eval_time": "1m"})
        elif b == "labels_parse":
            tg.setdefault("promql_expr_test", []).append(
                {"expr": "vector(1)", "eval_time": "1m", "exp_samples": [{"labels": YStr('{a="b"'), "value": 1}]})
        elif b == "missing_alertname":
            tg.setdefault("alert_rule_test", []).append({"eval_time": "2m"})
        elif b == "many_to_many_expr":
            tg["input_series"].append({"series": YStr('fd_dup{job="api",instance="zz1"}'), "values": YStr("1x10")})
            tg["input_series"].append({"series": YStr('fd_dup{job="api",instance="zz2"}'), "values": YStr("2x10")})
            tg.setdefault("promql_expr_test", []).append({"expr": YStr("fd_dup + on(job) fd_dup"), "eval_time": "1m"})
        elif b == "dup_group_order":
            doc["group_eval_order"] = ["fd_x", "fd_x"]
        elif b == "string_result":
            tg.setdefault("promql_expr_test", []).append({"expr": YStr('"text"'), "eval_time": "0s"})
        elif b == "dup_series":
            # a second definition of a series replaces the first one entirely
            if tg["input_series"]:
                first = tg["input_series"][0]
                tg["input_series"].append({"series": first["series"],
                                           "values": YStr("_x2 " + " ".join(["7"] * 5))})
        elif b == "bad_series":
            tg["input_series"].append({"series": YStr("bad_series"), "values": YStr(self.rng.choice(
                ["1 a 3", "1+1", "stalex2", "1 2 3+-1x2"]))})


def parse_dur(s):
    s = str(s)
    if s in ("0", "0s", "0m"):
        return 0
    total = 0
    for val, unit in re.findall(r'(\d+)(ms|y|w|d|h|m|s)', s):
        total += int(val) * {"ms": 1, "s": S, "m": M, "h": H, "d": 24 * H, "w": 7 * 24 * H,
                             "y": 365 * 24 * H}[unit]
    return total


def labels_text(ls, rng):
    """A promtool exp_samples 'labels' string for a label tuple (random but
    equivalent spellings)."""
    d = dict(ls)
    name = d.pop("__name__", None)
    body = ", ".join("%s=%s" % (k, go_quote(v)) for k, v in sorted(d.items(), key=lambda kv: kv[0]))
    if name is not None and rng.random() < 0.85:
        return name + ("{" + body + "}" if body or rng.random() < 0.3 else "")
    if name is not None:
        return "{__name__=%s%s}" % (go_quote(name), (", " + body) if body else "")
    return "{" + body + "}"


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def describe(run):
    return "rc=%s%s\n--- stdout ---\n%s--- stderr ---\n%s" % (
        run.rc, " (TIMEOUT)" if run.timed_out else "", run.stdout, run.stderr)


def compare(pa, pb, ra, rb, strict_messages, semantic_only, label_a, label_b):
    """Returns a list of difference descriptions (empty when equal)."""
    diffs = []
    # firedrill exits 2 for a file it cannot read or load, where promtool
    # exits 1 for that and for failing tests alike: the verdict is the same.
    def verdict(label, rc):
        return 1 if label == "firedrill" and rc == 2 else rc
    if verdict(label_a, ra.rc) != verdict(label_b, rb.rc):
        diffs.append("exit code: %s=%s %s=%s" % (label_a, ra.rc, label_b, rb.rc))
    if pa.status != pb.status:
        diffs.append("status: %s=%s %s=%s" % (label_a, pa.status, label_b, pb.status))
    for p, lab in ((pa, label_a), (pb, label_b)):
        if p.parse_error:
            diffs.append("%s output not parseable: %s" % (lab, p.parse_error))
    sa, sb = semantic_view(pa, strict_messages), semantic_view(pb, strict_messages)
    if sa != sb:
        only_a = list(sa)
        only_b = []
        for k in sb:
            if k in only_a:
                only_a.remove(k)
            else:
                only_b.append(k)
        d = "failing test cases differ:"
        for k in only_a:
            d += "\n  only in %s: %s" % (label_a, fmt_key(k))
        for k in only_b:
            d += "\n  only in %s: %s" % (label_b, fmt_key(k))
        diffs.append(d)
    if len(pa.warnings) != len(pb.warnings) or (strict_messages and pa.warnings != pb.warnings):
        diffs.append("warnings differ: %r vs %r" % (pa.warnings, pb.warnings))
    if not semantic_only:
        ta, tb = normalized_text(pa, strict_messages), normalized_text(pb, strict_messages)
        if ta != tb:
            ud = "\n".join(difflib.unified_diff(ta, tb, label_a, label_b, lineterm="", n=2))
            diffs.append("output text differs (normalised):\n" + ud)
    return diffs


def fmt_key(k):
    kind = k[0]
    if kind == "alert":
        _, group, name, t, exp, got = k[:6]
        return "alert %s at %s%s\n      exp=%s\n      got=%s" % (
            name, t, " (group %s)" % group if group else "", fmt_alerts(exp), fmt_alerts(got))
    if kind == "expr":
        _, expr, t, exp, got = k[:5]
        return "expr %r at %s\n      exp=%s\n      got=%s" % (expr, t, fmt_samples(exp), fmt_samples(got))
    return repr(k)


def fmt_alerts(lst):
    return "[" + "; ".join("%s %s" % (dict(l), dict(a)) for l, a in lst) + "]"


def fmt_samples(lst):
    return "[" + "; ".join("%s %s" % ("{" + ", ".join("%s=%r" % kv for kv in l) + "}", v) for l, v in lst) + "]"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

ALL_CONSTRUCTS = ["sum", "min", "max", "count", "avg", "by", "without", "matcher_eq", "matcher_ne",
                  "matcher_re", "matcher_nre", "bool", "on", "ignoring", "rate", "irate", "increase",
                  "delta", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                  "count_over_time", "histogram_quantile", "predict_linear", "abs", "clamp_min",
                  "clamp_max", "time", "scalar_vector_arith", "vector_arith", "comparison",
                  "many_to_many", "group_left", "group_right", "scalar"]


def process_file(idx, args, firedrill_ok):
    fb = FileBuilder(idx, args.seed, args.workdir, args.promtool)
    res = {"idx": idx, "file": fb.relpath, "diffs": [], "error": None}
    try:
        fb.build()
    except Exception as e:  # generator problem: report, do not hide
        import traceback
        res["error"] = "generation failed: %s\n%s" % (e, traceback.format_exc())
        return res, fb
    res["constructs"] = fb.constructs
    res["alert_tests"] = (len(fb.alert_tests), getattr(fb, "n_alert_exp", 0))
    res["expr_tests"] = (len(fb.expr_tests), getattr(fb, "n_expr_exp", 0))
    res["perturbation"] = fb.perturbation
    res["broken"] = fb.broken
    runs = []
    t_final = 0.0
    for _ in range(args.promtool_runs):
        r = run_tool([args.promtool, "test", "rules", fb.relpath], args.workdir)
        t_final += r.secs
        runs.append(r)
    res["promtool_final_secs"] = runs[0].secs
    res["promtool_total_secs"] = fb.promtool_secs + t_final
    parsed = [parse_output(r.stdout, r.stderr) for r in runs]
    res["promtool_rc"] = runs[0].rc
    for r in runs:
        if r.timed_out or r.error:
            res["error"] = "promtool did not run: %s" % (r.error or "timeout")
            return res, fb
    if parsed[0].parse_error:
        res["error"] = "promtool output not parseable: %s\n%s" % (parsed[0].parse_error, describe(runs[0]))
        return res, fb
    for j in range(1, len(runs)):
        d = compare(parsed[0], parsed[j], runs[0], runs[j], True, False, "promtool#1", "promtool#%d" % (j + 1))
        if d:
            res["error"] = ("promtool is not deterministic on this file (generator bug):\n" + "\n".join(d))
            return res, fb
    if fb.broken is None and fb.perturbation is None and runs[0].rc != 0:
        # only expectations that can never pass (NaN != NaN) may do this
        res["note"] = "promtool fails an unperturbed file"
        other = [rec for rec in parsed[0].records
                 if rec["kind"] in ("alert", "other", "unparsed")
                 or (rec["kind"] == "expr" and not any(v == "NaN" for _, v in rec["exp"]))]
        if other:
            res["error"] = ("promtool fails an unperturbed file for a reason other than NaN "
                            "(generator bug):\n" + describe(runs[0]))
            return res, fb
    if firedrill_ok:
        rf = run_tool([args.firedrill, "rules", "test", fb.relpath], args.workdir)
        res["firedrill_secs"] = rf.secs
        if rf.timed_out or rf.error:
            res["diffs"].append("firedrill did not complete: %s" % (rf.error or "timeout after %ds" % TIMEOUT_S))
        else:
            pf = parse_output(rf.stdout, rf.stderr)
            res["diffs"] = compare(parsed[0], pf, runs[0], rf, args.strict_messages, args.semantic_only,
                                   "promtool", "firedrill")
        if res["diffs"]:
            res["promtool_out"] = describe(runs[0])
            res["firedrill_out"] = describe(rf)
    return res, fb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--promtool", default="/usr/bin/promtool")
    ap.add_argument("--firedrill", default=None, help="path to build/cli/firedrill")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the workdir even when everything agrees")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--promtool-runs", type=int, default=2,
                    help="runs of promtool per final file; all must agree (determinism check)")
    ap.add_argument("--strict-messages", action="store_true",
                    help="also compare error message texts (parse errors, YAML errors, eval errors)")
    ap.add_argument("--semantic-only", action="store_true",
                    help="compare exit codes and failing test cases only, not the output text")
    ap.add_argument("--max-diffs", type=int, default=10, help="print at most this many mismatching files")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    print("seed: %d" % args.seed, flush=True)
    if not os.path.isfile(args.promtool):
        print("promtool not found at %s" % args.promtool)
        return 1
    firedrill_ok = bool(args.firedrill) and os.path.isfile(args.firedrill) and os.access(args.firedrill, os.X_OK)
    if args.firedrill:
        args.firedrill = os.path.abspath(args.firedrill)
    args.promtool = os.path.abspath(args.promtool)
    args.workdir = os.path.abspath(args.workdir)
    files_dir = os.path.join(args.workdir, "files")
    if os.path.isdir(files_dir):
        shutil.rmtree(files_dir)
    os.makedirs(files_dir)
    shutil.copyfile(HSOF_RULES_SRC, os.path.join(files_dir, HSOF_RULES_NAME))

    t0 = time.monotonic()
    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = [ex.submit(process_file, i, args, firedrill_ok) for i in range(args.count)]
        for f in futs:
            results.append(f.result()[0])
    wall = time.monotonic() - t0

    gen_errors = [r for r in results if r["error"]]
    mism = [r for r in results if r["diffs"]]
    ok = [r for r in results if not r["error"]]
    n_fail = sum(1 for r in ok if r.get("promtool_rc") not in (0, None))
    n_pert = sum(1 for r in ok if r.get("perturbation"))
    n_broken = sum(1 for r in ok if r.get("broken"))
    notes = [r for r in ok if r.get("note")]
    t_final = sum(r.get("promtool_final_secs", 0) for r in ok)
    t_all = sum(r.get("promtool_total_secs", 0) for r in ok)
    t_fd = sum(r.get("firedrill_secs", 0) for r in ok)
    covered = set()
    for r in ok:
        covered |= r.get("constructs", set())
    missing = [c for c in ALL_CONSTRUCTS if c not in covered]

    for r in gen_errors[:args.max_diffs]:
        print("\n=== %s: %s" % (r["file"], r["error"]))
    for r in mism[:args.max_diffs]:
        print("\n=== MISMATCH %s (perturbation=%s, broken=%s)" % (r["file"], r.get("perturbation"), r.get("broken")))
        for d in r["diffs"]:
            print(d)
        print("--- promtool: " + r["promtool_out"])
        print("--- firedrill: " + r["firedrill_out"])
    print()
    print("files: %d  promtool verdicts: %d pass, %d fail (%d perturbed, %d broken, %d unperturbed failing)"
          % (len(ok), len(ok) - n_fail, n_fail, n_pert, n_broken, len(notes)))
    at = [sum(r.get("alert_tests", (0, 0))[i] for r in ok) for i in (0, 1)]
    et = [sum(r.get("expr_tests", (0, 0))[i] for r in ok) for i in (0, 1)]
    print("test cases: %d alert_rule_test (%d with firing alerts), %d promql_expr_test (%d with samples)"
          % (at[0], at[1], et[0], et[1]))
    print("promtool time: %.1f s for the %d final files (one run each, %.0f ms/file); %.1f s in all promtool runs"
          % (t_final, len(ok), 1000 * t_final / max(1, len(ok)), t_all))
    if firedrill_ok:
        print("firedrill time: %.1f s for %d files (%.0f ms/file)" % (t_fd, len(ok), 1000 * t_fd / max(1, len(ok))))
    print("wall time: %.1f s with %d jobs" % (wall, args.jobs))
    if missing:
        print("constructs not covered by this run: %s" % ", ".join(missing))
    status = 0
    if gen_errors:
        print("%d files could not be generated or promtool misbehaved (see above)" % len(gen_errors))
        status = 1
    if not firedrill_ok:
        print("firedrill binary not found or not executable: %r -- only the promtool side was checked" % args.firedrill)
        status = 1
    elif mism:
        print("MISMATCH on %d of %d files (seed %d)" % (len(mism), len(ok), args.seed))
        status = 1
    else:
        print("firedrill agrees with promtool on all %d files (seed %d)" % (len(ok), args.seed))
    if status == 0 and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    else:
        print("test files kept in %s" % files_dir)
    return status


if __name__ == "__main__":
    sys.exit(main())
