// The native stack end to end (scripts/run-stack.sh, what `make run` starts): PostgreSQL, the
// collector, Prometheus with the repo's scrape config and alert rules, the Todo API and the
// workload generator, with fast cadences. After the workload has run for a while, every PromQL
// expression of grafana/dashboards/*.json and config/alerts.yml runs against the real Prometheus
// and must return data (an error or an empty result fails, naming the dashboard/panel/rule and
// the query). Also checked: the Todo API's spans and logs reached the debug exporter, the
// workload's requests are in Prometheus, and Ctrl-C (SIGTERM here) leaves no process behind.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import YAML from 'yaml';

import {
  dashboardQueries,
  promQuery,
  promVariable,
  ruleQueries,
  splitComparison,
  substitute,
  variableValues,
} from './lib/stack.mjs';
import { findCollector, findTodoApi, freePort, repoRoot, sleep } from './todo-api/helpers.mjs';

const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
// How long the workload runs before the queries: long enough for rate(...[1m]) to have several
// samples at the 2 s cadences below.
const WORKLOAD_SECONDS = Number(process.env.STACK_WORKLOAD_SECONDS ?? 24);

// ---- the extractor, on a fixture ----------------------------------------------------------------

describe('PromQL extraction (fixture)', () => {
  const fixture = {
    title: 'Fixture',
    templating: {
      list: [
        { name: 'route', type: 'query', datasource: { type: 'prometheus', uid: 'prometheus' },
          query: { query: 'label_values(http_server_request_duration_seconds_count, http_route)' },
          current: { text: 'All', value: '$__all' } },
        { name: 'job', type: 'custom', current: { text: 'todo-api', value: 'todo-api' } },
        { name: 'logs', type: 'query', datasource: { type: 'loki', uid: 'loki' }, query: 'label_values(level)' },
      ],
    },
    panels: [
      { id: 1, title: 'Rate', type: 'timeseries', datasource: { uid: 'prometheus' },
        targets: [{ refId: 'A', expr: 'sum(rate(x_total{job=~"$job",route=~"${route:regex}"}[$__rate_interval]))' }] },
      { id: 2, title: 'Logs', type: 'logs', datasource: { type: 'loki', uid: 'loki' },
        targets: [{ refId: 'A', expr: '{service_name="todo-api"}' }] },
      { id: 3, title: 'Row', type: 'row', collapsed: true, panels: [
        { id: 4, title: 'Inner', datasource: { type: 'prometheus', uid: 'prometheus' },
          targets: [{ refId: 'B', expr: 'increase(y[$__range]) / $__range_s' },
                    { refId: 'C', expr: 'z[[route]]', datasource: { type: 'tempo', uid: 'tempo' } }] },
      ] },
    ],
    rows: [{ title: 'Old', panels: [{ id: 5, title: 'Legacy', targets: [{ refId: 'A', expr: 'up' }] }] }],
  };

  test('finds Prometheus targets in panels, collapsed rows and old rows, and query variables', () => {
    const qs = dashboardQueries(fixture, 'fixture.json');
    assert.deepEqual(qs.map((q) => q.expr), [
      'sum(rate(x_total{job=~"$job",route=~"${route:regex}"}[$__rate_interval]))',
      'increase(y[$__range]) / $__range_s',
      'up',
      'label_values(http_server_request_duration_seconds_count, http_route)',
    ]);
    assert.match(qs[1].where, /fixture\.json \(Fixture\) \/ Row \/ panel 4 "Inner" target B/);
    assert.equal(qs[3].kind, 'variable');
  });

  test('substitutes built-in and dashboard variables as the contract says', () => {
    const vals = variableValues(fixture);
    assert.deepEqual(vals, { route: '.*', job: 'todo-api', logs: '.*' });
    const [a, b] = dashboardQueries(fixture).map((q) => substitute(q.expr, vals));
    assert.equal(a, 'sum(rate(x_total{job=~"todo-api",route=~".*"}[1m]))');
    assert.equal(b, 'increase(y[5m]) / 300');
    assert.equal(substitute('a[[route]]b $__interval $routes'), 'a[[route]]b 30s $routes');
    assert.equal(substitute('a[[route]] $route_x $route', { route: 'r' }), 'ar $route_x r');
  });

  test('splits alert expressions at their last top-level comparison', () => {
    assert.deepEqual(splitComparison('sum(rate(a{x=~"b>c"}[5m])) / sum(rate(b[5m])) > 0.05'), {
      query: 'sum(rate(a{x=~"b>c"}[5m])) / sum(rate(b[5m]))', op: '>', threshold: '0.05' });
    assert.deepEqual(splitComparison('histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m]))) >= 1'), {
      query: 'histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))', op: '>=', threshold: '1' });
    assert.deepEqual(splitComparison('(a > 1) != bool 0'), { query: '(a > 1)', op: '!=', threshold: '0' });
    assert.equal(splitComparison('sum(rate(a[5m]))'), null);
    assert.equal(splitComparison('a{b!="c"}'), null);
    const rq = ruleQueries({ groups: [{ name: 'g', rules: [
      { alert: 'High', expr: 'x / y > 0.5' }, { record: 'r:x', expr: 'sum(x)' }, { alert: 'NoCmp', expr: 'x' },
    ] }] });
    assert.deepEqual(rq.map((r) => [r.kind, r.expr, r.needData]), [
      ['alert', 'x / y > 0.5', false], ['alert-query', 'x / y', true], ['record', 'sum(x)', true],
      ['alert', 'x', false], ['alert-query', 'x', true],
    ]);
    assert.equal(rq[4].noComparison, true);
  });
});

// ---- the real stack -----------------------------------------------------------------------------

function pgAvailable() {
  const base = '/usr/lib/postgresql';
  return process.env.PG_BIN || (fs.existsSync(base) && fs.readdirSync(base).some((v) =>
    fs.existsSync(path.join(base, v, 'bin', 'initdb'))));
}

function workloadBin(todoApi) {
  return process.env.TODO_WORKLOAD_BIN ?? path.join(path.dirname(todoApi), 'todo-workload');
}

const missing = [];
let collectorBin;
let todoApiBin;
try {
  todoApiBin = findTodoApi();
  collectorBin = findCollector();
} catch (e) {
  missing.push(e.message);
}
if (!collectorBin) missing.push('collector binary');
if (todoApiBin && !fs.existsSync(workloadBin(todoApiBin))) missing.push(`${workloadBin(todoApiBin)} (build todo-workload)`);
if (!fs.existsSync(PROMETHEUS_BIN)) missing.push(`${PROMETHEUS_BIN} (apt-get install prometheus)`);
if (!pgAvailable()) missing.push('PostgreSQL server (apt-get install postgresql)');

// Processes whose working directory or command line is inside dir.
function processesIn(dir) {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cwd.startsWith(dir) || cmd.includes(dir)) found.push(`${pid}: ${cmd.trim()} (cwd ${cwd})`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

describe('native stack: make run, PromQL of the dashboards and alerts', { skip: missing.length ? `missing: ${missing.join(', ')}` : false }, () => {
  let runDir;
  let proc;
  let out = '';
  let exit = null;
  let ports;
  let promUrl;

  const pidsOf = () =>
    fs.existsSync(path.join(runDir, 'pids'))
      ? fs.readFileSync(path.join(runDir, 'pids'), 'utf8').trim().split('\n').filter(Boolean)
          .map((l) => l.split(' ')).map(([name, pid]) => ({ name, pid: Number(pid) }))
      : [];

  before(async () => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-stack-'));
    // PostgreSQL runs as the postgres user when we are root: it must reach the run dir.
    fs.chmodSync(runDir, 0o755);
    ports = {};
    for (const k of ['OTLP_GRPC_PORT', 'OTLP_HTTP_PORT', 'OTC_METRICS_PORT', 'OTC_HEALTH_PORT',
      'TODO_API_PORT', 'PROMETHEUS_PORT', 'PG_PORT']) {
      let p;
      do p = await freePort(); while (Object.values(ports).includes(p));
      ports[k] = p;
    }
    promUrl = `http://127.0.0.1:${ports.PROMETHEUS_PORT}`;
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      RUN_DIR: runDir,
      COLLECTOR_BIN: collectorBin,
      TODO_API_BIN: todoApiBin,
      TODO_WORKLOAD_BIN: workloadBin(todoApiBin),
      PROMETHEUS_BIN,
      PROM_SCRAPE_INTERVAL: '2s',
      PROM_EVAL_INTERVAL: '2s',
      OTEL_METRIC_EXPORT_INTERVAL: '2000',
      OTEL_BSP_SCHEDULE_DELAY: '1000',
      OTEL_BLRP_SCHEDULE_DELAY: '500',
      WORKLOAD_RATE: '25',
      WORKLOAD_CONCURRENCY: '4',
      WORKLOAD_DURATION: '0',
    };
    delete env.LOKI_URL;
    delete env.LOKI_PUSH_URL;
    delete env.TEMPO_ENDPOINT;
    delete env.TEMPO_OTLP_ENDPOINT;
    proc = spawn('bash', [path.join(repoRoot, 'scripts', 'run-stack.sh')], {
      env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((exit = { code, signal }))));
    proc.exitedPromise = exited;
    const deadline = Date.now() + 60000;
    while (!/the stack is up/.test(out)) {
      if (exit) throw new Error(`run-stack.sh exited during start-up (${JSON.stringify(exit)}):\n${out}`);
      if (Date.now() > deadline) throw new Error(`the stack did not come up in 60 s:\n${out}`);
      await sleep(200);
    }
    await sleep(WORKLOAD_SECONDS * 1000);
  });

  after(async () => {
    // Only when a test failed half-way: the normal stop is the last test.
    if (proc && !exit) {
      proc.kill('SIGTERM');
      await Promise.race([proc.exitedPromise, delay(30000, null, { ref: false })]);
    }
    for (const { pid } of runDir ? pidsOf() : []) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone: the expected case
      }
    }
    if (runDir && fs.existsSync(path.join(runDir, 'postgres', 'data', 'postmaster.pid'))) {
      const pgCtl = fs.readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_ctl`)
        .find((p) => fs.existsSync(p));
      const args = ['-D', path.join(runDir, 'postgres', 'data'), '-m', 'immediate', 'stop'];
      if (process.getuid() === 0) spawnSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args]);
      else spawnSync(pgCtl, args);
    }
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  });

  test('the stack printed where each component listens', () => {
    for (const p of [ports.TODO_API_PORT, ports.OTLP_GRPC_PORT, ports.OTLP_HTTP_PORT, ports.PROMETHEUS_PORT, ports.PG_PORT]) {
      assert.match(out, new RegExp(`127\\.0\\.0\\.1:${p}\\b`), `port ${p} not printed:\n${out}`);
    }
    assert.deepEqual(pidsOf().map((p) => p.name).sort(), ['collector', 'postgres', 'prometheus', 'todo-api', 'workload']);
  });

  test("the Todo API's spans and logs reached the debug exporter", async () => {
    const log = fs.readFileSync(path.join(runDir, 'logs', 'collector.log'), 'utf8');
    const sum = (re) => [...log.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
    const spans = sum(/Traces \{[^}]*\\"spans\\": (\d+)/g);
    const records = sum(/Logs \{[^}]*\\"log records\\": (\d+)/g);
    assert.ok(spans > 50, `spans in the debug exporter's lines: ${spans}\n${log.slice(-2000)}`);
    assert.ok(records > 50, `log records in the debug exporter's lines: ${records}`);
    // The same through the collector's self-metrics as Prometheus scraped them.
    for (const m of ['otelcol_exporter_sent_spans', 'otelcol_exporter_sent_log_records']) {
      const r = await promQuery(promUrl, `sum(${m}{job="otelc",exporter="debug"})`);
      assert.ok(r.ok && r.count === 1 && Number(r.result[0].value[1]) > 0, `${m}: ${JSON.stringify(r)}`);
    }
    const r = await promQuery(promUrl, 'sum(otelcol_exporter_sent_metric_points{exporter="prometheus_remote_write"})');
    assert.ok(r.ok && r.count === 1 && Number(r.result[0].value[1]) > 0, `remote write sent nothing: ${JSON.stringify(r)}`);
  });

  test("the workload's requests, with their errors, are in Prometheus", async () => {
    const r = await promQuery(promUrl,
      'sum by (http_response_status_code) (http_server_request_duration_seconds_count{job="todo-api"})');
    assert.ok(r.ok, r.error);
    const codes = Object.fromEntries(r.result.map((s) => [s.metric.http_response_status_code, Number(s.value[1])]));
    for (const c of ['200', '201', '204', '400', '404', '422']) {
      assert.ok(codes[c] > 0, `no ${c} responses in Prometheus: ${JSON.stringify(codes)}`);
    }
    const total = Object.values(codes).reduce((a, b) => a + b, 0);
    assert.ok(total >= WORKLOAD_SECONDS * 10, `only ${total} requests recorded`);
    // Both copies of the metrics: remote write (job todo-api) and the direct scrape.
    const up = await promQuery(promUrl, 'up{job=~"otelc|todo-api-scrape"} == 1');
    assert.equal(up.count, 2, `scrape targets not up: ${JSON.stringify(up.result)}`);
  });

  test('every PromQL expression of the dashboards and the alert rules returns data', async (t) => {
    const items = [];
    const dashDir = path.join(repoRoot, 'grafana', 'dashboards');
    const dashFiles = fs.existsSync(dashDir) ? fs.readdirSync(dashDir).filter((f) => f.endsWith('.json')).sort() : [];
    for (const f of dashFiles) {
      const d = JSON.parse(fs.readFileSync(path.join(dashDir, f), 'utf8'));
      const vals = variableValues(d);
      for (const q of dashboardQueries(d, f)) items.push({ ...q, query: substitute(q.expr, vals), needData: true });
    }
    const alertsFile = path.join(repoRoot, 'config', 'alerts.yml');
    if (fs.existsSync(alertsFile)) {
      for (const q of ruleQueries(YAML.parse(fs.readFileSync(alertsFile, 'utf8')), 'config/alerts.yml')) {
        items.push({ ...q, query: q.expr });
      }
    }
    if (!dashFiles.length || !fs.existsSync(alertsFile)) {
      t.diagnostic(`not there yet: ${!dashFiles.length ? 'grafana/dashboards/*.json ' : ''}${fs.existsSync(alertsFile) ? '' : 'config/alerts.yml'}`);
    }
    t.diagnostic(`${items.length} expressions from ${dashFiles.length} dashboards and ${fs.existsSync(alertsFile) ? 1 : 0} rules file`);
    // The checker itself, against this Prometheus: no data and an error are both told apart.
    const none = await promQuery(promUrl, 'no_such_metric_for_the_checker');
    assert.ok(none.ok && none.count === 0, JSON.stringify(none));
    const bad = await promQuery(promUrl, 'sum((');
    assert.ok(!bad.ok && bad.error, JSON.stringify(bad));
    const failures = [];
    for (const it of items) {
      if (it.noComparison) {
        failures.push(`${it.where}: the alert expr has no top-level comparison (contract: "<query> <cmp> <threshold>")\n    ${it.expr}`);
        continue;
      }
      const r = it.kind === 'variable' ? await promVariable(promUrl, it.query) : await promQuery(promUrl, it.query);
      if (!r.ok) failures.push(`${it.where}: error ${r.error}\n    ${it.query}`);
      else if (it.needData && r.count === 0) failures.push(`${it.where}: no data\n    ${it.query}`);
    }
    assert.equal(failures.length, 0, `${failures.length} of ${items.length} expressions failed:\n  ${failures.join('\n  ')}`);
  });

  test('SIGTERM stops everything in reverse order, prints the summary, exits 0, leaves no process', async () => {
    const pids = pidsOf();
    proc.kill('SIGTERM');
    await Promise.race([proc.exitedPromise, delay(60000, null, { ref: false })]);
    assert.deepEqual(exit, { code: 0, signal: null }, out.slice(-3000));
    const order = [...out.matchAll(/run-stack:\s+(\S+) stopped/g)].map((m) => m[1]);
    assert.deepEqual(order, ['workload', 'todo-api', 'collector', 'prometheus', 'postgres']);
    assert.match(out, /todo-workload summary: \d+ requests/);
    assert.match(out, /^all\s+\d+/m);
    for (const { name, pid } of pids) {
      // A zombie has exited: the postmaster, daemonized by pg_ctl, is reaped by init in its own
      // time.
      let state = null;
      try {
        state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
      } catch {
        // gone
      }
      assert.ok(state === null || state === 'Z', `${name} (pid ${pid}) still running (state ${state})`);
    }
    assert.deepEqual(processesIn(runDir), []);
  });
});
