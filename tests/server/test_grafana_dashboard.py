#!/usr/bin/python3
"""test_grafana_dashboard.py - server_grafana_dashboard: the example Grafana
dashboard (docker/grafana-dashboard.json) is a well-formed dashboard (unique
panel ids, every panel and target on the ${datasource} variable, the grid
24 wide, a refId and an expression per target), every expression is valid
PromQL (`promtool check rules` on a rule file made of them, Grafana's
$__rate_interval and $instance filled in), and every rendezvous_* metric it
uses - with the label values it selects - is one a running rendezvousd
exports on /metrics (on the operator's listener), like
server_prometheus_rules does for the alert rules.

Usage: test_grafana_dashboard.py --server PATH --source DIR
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time
import urllib.request

NAME = re.compile(r"\b(rendezvous_[a-z0-9_]+)(\{[^}]*\})?")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def check_structure(d):
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in d:
            fail("the dashboard has no %r" % key)
    names = [v.get("name") for v in d.get("templating", {}).get("list", [])]
    if "datasource" not in names or "instance" not in names:
        fail("templating lacks the datasource / instance variables: %s" % names)
    ids, exprs = set(), []
    for p in walk(d.get("panels", [])):
        pid, title = p.get("id"), p.get("title", "?")
        if pid in ids:
            fail("panel id %s used twice" % pid)
        ids.add(pid)
        g = p.get("gridPos", {})
        if not all(k in g for k in "hwxy") or g["x"] + g["w"] > 24:
            fail("panel %r: bad gridPos %s" % (title, g))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail("panel %r is not on the ${datasource} variable" % title)
        targets = p.get("targets", [])
        if not targets:
            fail("panel %r has no query" % title)
        refs = set()
        for t in targets:
            if not t.get("expr") or not t.get("refId") or t["refId"] in refs:
                fail("panel %r: a target without expr or with a missing/duplicate refId" % title)
            refs.add(t.get("refId"))
            if t.get("datasource", {}).get("uid") != "${datasource}":
                fail("panel %r: a target not on ${datasource}" % title)
            if 'instance=~"$instance"' not in t.get("expr", ""):
                fail("panel %r: %r ignores the $instance variable" % (title, t.get("expr")))
            exprs.append((title, t["expr"]))
    return exprs


def promql(e):
    return e.replace("$__rate_interval", "5m").replace("$instance", ".*")


def check_promtool(exprs, tmp):
    if not shutil.which("promtool"):
        fail("promtool not installed (scripts/bootstrap --test: prometheus)")
        return
    rules = os.path.join(tmp, "dashboard-rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n- name: dashboard\n  rules:\n")
        for i, (_, e) in enumerate(exprs):
            f.write("  - record: dashboard:expr_%d\n    expr: %s\n" % (i, json.dumps(promql(e))))
    r = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
    if r.returncode != 0:
        fail("promtool check rules on the dashboard's expressions:\n" + r.stdout + r.stderr)
    else:
        print("ok: promtool: %d expressions are valid PromQL" % len(exprs))


def metrics_of(server, tmp):
    log = os.path.join(tmp, "server.log")
    out = open(log, "w")
    p = subprocess.Popen([server, "--listen", "127.0.0.1", "--port", "0", "--stun-port", "0",
                          "--operator-listen", "127.0.0.1:0", "--db", os.path.join(tmp, "r.db")],
                         stdout=out, stderr=out)
    try:
        port = None
        for _ in range(200):
            m = re.search(r"operator on http://127\.0\.0\.1:(\d+)", open(log).read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if not port:
            print(open(log).read())
            fail("the server did not start")
            return ""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            return r.read().decode()
    finally:
        p.terminate()
        p.wait(timeout=10)


def check_metrics(exprs, text):
    series = [l for l in text.splitlines() if l and not l.startswith("#")]
    checked = set()
    for title, e in exprs:
        for name, labels in NAME.findall(e):
            rows = [l for l in series if re.match(re.escape(name) + r"[{ ]", l)]
            if not rows:
                fail("panel %r uses %s, which /metrics does not export" % (title, name))
                continue
            checked.add(name)
            # label values the query selects exactly (instance is Prometheus')
            for k, v in re.findall(r'([a-z_]+)="([^"]*)"', labels or ""):
                if k != "instance" and not any('%s="%s"' % (k, v) in l for l in rows):
                    fail("panel %r selects %s{%s=%r}, which /metrics does not export"
                         % (title, name, k, v))
    if len(checked) < 20:
        fail("only %d metric names in the dashboard" % len(checked))
    print("ok: %d metric names of the dashboard are exported by /metrics" % len(checked))
    return checked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()
    path = os.path.join(a.source, "docker", "grafana-dashboard.json")
    with open(path) as f:
        d = json.load(f)
    tmp = tempfile.mkdtemp(prefix="rdv-grafana-")
    try:
        exprs = check_structure(d)
        print("ok: %s: %d panels, %d queries" % (path, len(list(walk(d["panels"]))), len(exprs)))
        check_promtool(exprs, tmp)
        check_metrics(exprs, metrics_of(a.server, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
