// Static checks of the docker-compose stack (issue 5): the compose file, the Dockerfiles, the
// configs in config/ and the Grafana provisioning, without Docker. Everything here runs in a few
// seconds: files are parsed and cross-checked, promtool checks the Prometheus files, and the
// collector binary validates its config. The PromQL of the dashboards and the alert rules is run
// against a real Prometheus by stack_promql.test.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { OTC_BIN, runCollectorCommand } from './lib/collector.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const rel = (...p) => path.join(ROOT, ...p);
const read = (...p) => fs.readFileSync(rel(...p), 'utf8');

// YAML.parse with duplicate keys and other errors reported, not silently merged.
function parseYaml(file) {
  const doc = YAML.parseDocument(read(file), { uniqueKeys: true });
  assert.deepEqual(doc.errors.map((e) => e.message), [], `${file} does not parse`);
  return doc.toJS();
}

const REQUIRED_SERVICES = ['postgres', 'todo-api', 'collector', 'tempo', 'loki', 'prometheus', 'grafana', 'workload'];
const ALLOWED_HOST_PORTS = new Set([3000, 8000, 4317, 4318]);
const DEPENDS_CONDITIONS = new Set(['service_healthy', 'service_started', 'service_completed_successfully']);
const DATASOURCE_UIDS = ['prometheus', 'loki', 'tempo'];

const compose = parseYaml('docker-compose.yml');
const services = compose.services ?? {};

// The host port of a compose port entry ("3000:3000", "127.0.0.1:3000:3000/tcp", {published}),
// or null when nothing is published on the host.
function hostPort(entry) {
  if (typeof entry === 'object') return entry.published == null ? null : Number(entry.published);
  const parts = String(entry).replace(/\/(tcp|udp)$/, '').split(':');
  return parts.length >= 2 ? Number(parts[parts.length - 2]) : null;
}

// Splits "name:tag" (registry hosts with ports kept whole) and refuses digests-only forms.
function imageTag(image) {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? image.slice(colon + 1) : null;
}

test('compose file: the required services exist', () => {
  for (const name of REQUIRED_SERVICES) assert.ok(services[name], `service ${name} missing`);
});

test('compose file: every image has a pinned tag, never latest', () => {
  for (const [name, svc] of Object.entries(services)) {
    assert.ok(svc.image || svc.build, `${name}: neither image nor build`);
    if (!svc.image) continue;
    const tag = imageTag(svc.image);
    assert.ok(tag, `${name}: image ${svc.image} has no tag`);
    assert.notEqual(tag, 'latest', `${name}: image ${svc.image} uses :latest`);
    if (!svc.build) {
      // Pulled images must name a release, i.e. a tag with a version number in it.
      assert.match(tag, /\d+\.\d+/, `${name}: image ${svc.image} is not pinned to a version`);
    }
  }
});

test('compose file: builds point at existing Dockerfiles', () => {
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.build) continue;
    const ctx = typeof svc.build === 'string' ? svc.build : svc.build.context;
    const dockerfile = (typeof svc.build === 'object' && svc.build.dockerfile) || 'Dockerfile';
    assert.ok(fs.existsSync(path.join(ROOT, ctx, dockerfile)), `${name}: ${ctx}/${dockerfile} does not exist`);
  }
});

test('compose file: health checks, and depends_on with conditions on checked services', () => {
  for (const [name, svc] of Object.entries(services)) {
    // The workload generator serves nothing; every other service must be checkable.
    if (name !== 'workload') {
      assert.ok(svc.healthcheck && !svc.healthcheck.disable, `${name}: no health check`);
      assert.ok(Array.isArray(svc.healthcheck.test) && svc.healthcheck.test.length > 1, `${name}: health check test`);
    }
    if (!svc.depends_on) continue;
    assert.ok(!Array.isArray(svc.depends_on), `${name}: depends_on must use the long form with conditions`);
    for (const [dep, spec] of Object.entries(svc.depends_on)) {
      assert.ok(services[dep], `${name} depends on unknown service ${dep}`);
      assert.ok(DEPENDS_CONDITIONS.has(spec?.condition), `${name} → ${dep}: condition ${spec?.condition}`);
      if (spec.condition === 'service_healthy') {
        assert.ok(services[dep].healthcheck && !services[dep].healthcheck.disable,
          `${name} waits for ${dep} to be healthy, but ${dep} has no health check`);
      }
    }
  }
  // The start order the stack needs: the API after its database, the generator after the API.
  assert.equal(services['todo-api'].depends_on.postgres.condition, 'service_healthy');
  assert.equal(services.workload.depends_on['todo-api'].condition, 'service_healthy');
  assert.equal(services.collector.depends_on.prometheus.condition, 'service_healthy');
});

test('compose file: only Grafana 3000, the Todo API 8000 and OTLP 4317/4318 are published', () => {
  const published = new Map();
  for (const [name, svc] of Object.entries(services)) {
    for (const p of svc.ports ?? []) {
      const port = hostPort(p);
      if (port == null) continue;
      assert.ok(ALLOWED_HOST_PORTS.has(port), `${name} publishes ${port}`);
      assert.ok(!published.has(port), `port ${port} published twice`);
      published.set(port, name);
    }
  }
  assert.deepEqual(Object.fromEntries([...published].sort()), {
    3000: 'grafana', 4317: 'collector', 4318: 'collector', 8000: 'todo-api',
  });
});

test('compose file: mounted files exist, named volumes are declared', () => {
  const declared = new Set(Object.keys(compose.volumes ?? {}));
  for (const [name, svc] of Object.entries(services)) {
    for (const v of svc.volumes ?? []) {
      const source = typeof v === 'object' ? v.source : String(v).split(':')[0];
      const type = typeof v === 'object' ? v.type : source.startsWith('.') || source.startsWith('/') ? 'bind' : 'volume';
      if (type === 'bind') {
        assert.ok(source.startsWith('./'), `${name}: bind mount ${source} must be relative to the repository`);
        assert.ok(fs.existsSync(rel(source)), `${name}: ${source} does not exist`);
      } else {
        assert.ok(declared.has(source), `${name}: volume ${source} is not declared`);
      }
    }
  }
});

test('compose file: Prometheus gets remote write, exemplars, and both of its files', () => {
  const prom = services.prometheus;
  const cmd = prom.command.join(' ');
  assert.match(cmd, /--web\.enable-remote-write-receiver/);
  assert.match(cmd, /--enable-feature=[\w,-]*exemplar-storage/);
  const cfg = prom.command.find((a) => a.startsWith('--config.file=')).split('=')[1];
  const mounts = Object.fromEntries(prom.volumes.map((v) => String(v).split(':')).map(([s, t]) => [t, s]));
  assert.equal(mounts[cfg], './config/prometheus.yml');
  // rule_files are relative to prometheus.yml, so alerts.yml must sit next to it.
  const promYml = parseYaml('config/prometheus.yml');
  for (const f of promYml.rule_files) {
    assert.equal(mounts[path.posix.join(path.posix.dirname(cfg), f)], `./config/${f}`, `rule file ${f} not mounted next to the config`);
  }
});

test('prometheus.yml: the scrape jobs of the contract, targets as host:port literals', () => {
  const cfg = parseYaml('config/prometheus.yml');
  const jobs = Object.fromEntries(cfg.scrape_configs.map((j) => [j.job_name, j]));
  assert.deepEqual(jobs.otelc.static_configs.flatMap((s) => s.targets), ['collector:8888']);
  assert.deepEqual(jobs['todo-api-scrape'].static_configs.flatMap((s) => s.targets), ['todo-api:8000']);
  assert.ok(!jobs['todo-api'], 'job todo-api is reserved for the OTLP metrics arriving by remote write');
  assert.deepEqual(cfg.rule_files, ['alerts.yml']);
  // Every scraped host is a compose service.
  for (const j of cfg.scrape_configs) {
    for (const t of j.static_configs.flatMap((s) => s.targets)) {
      assert.ok(services[t.split(':')[0]], `${j.job_name}: target ${t} is not a compose service`);
    }
  }
});

test('promtool accepts prometheus.yml and alerts.yml', (t) => {
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status !== 0) {
    t.skip('promtool not installed (Debian package prometheus)');
    return;
  }
  const cfg = spawnSync('promtool', ['check', 'config', rel('config/prometheus.yml')], { encoding: 'utf8' });
  assert.equal(cfg.status, 0, cfg.stdout + cfg.stderr);
  const rules = spawnSync('promtool', ['check', 'rules', rel('config/alerts.yml')], { encoding: 'utf8' });
  assert.equal(rules.status, 0, rules.stdout + rules.stderr);
});

test('alerts.yml: the alerts the issue asks for, each with its comparison last', () => {
  const rules = parseYaml('config/alerts.yml').groups.flatMap((g) => g.rules);
  const byName = Object.fromEntries(rules.filter((r) => r.alert).map((r) => [r.alert, r]));
  const want = {
    TodoApiHighErrorRate: /http_server_request_duration_seconds_count[\s\S]*5\.\.[\s\S]*>\s*0\.05\s*$/,
    TodoApiHighLatency: /histogram_quantile\(0\.95[\s\S]*http_server_request_duration_seconds_bucket[\s\S]*>\s*1\s*$/,
    TodoApiDatabaseErrors: /db_client_operation_duration_seconds_count[\s\S]*error_type/,
    CollectorRefusingData: /otelcol_receiver_refused_spans[\s\S]*otelcol_receiver_refused_metric_points[\s\S]*otelcol_receiver_refused_log_records/,
    CollectorExporterFailing: /otelcol_exporter_send_failed_spans/,
    CollectorDroppingData: /otelcol_dropped_items/,
  };
  for (const [name, re] of Object.entries(want)) {
    assert.ok(byName[name], `alert ${name} missing`);
    assert.match(byName[name].expr.trim(), re, name);
  }
  for (const r of rules.filter((x) => x.alert)) {
    assert.match(r.expr.trim(), /(>|<|==|!=|>=|<=)\s*[0-9.]+$/, `${r.alert}: the threshold comparison must come last`);
    assert.ok(r.labels?.severity, `${r.alert}: no severity`);
    assert.ok(r.annotations?.summary, `${r.alert}: no summary`);
    // `or vector(0)` belongs in numerators only: right after a division it would hide a missing
    // denominator.
    assert.doesNotMatch(r.expr, /\/\s*\(\s*sum\([^)]*\)\)\s*or\s+vector/, `${r.alert}: or vector(0) in a denominator`);
  }
});

test('collector validate accepts config/collector.yaml', async (t) => {
  if (!fs.existsSync(OTC_BIN)) {
    t.skip(`collector binary ${OTC_BIN} not built (set OTC_BIN)`);
    return;
  }
  const res = await runCollectorCommand(['validate', '--config', rel('config/collector.yaml')]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
});

test('collector.yaml: exports to the compose services and serves what compose checks', () => {
  const cfg = parseYaml('config/collector.yaml');
  // ${env:NAME:-default} → default: the value the stack runs with.
  const dflt = (v) => String(v).replace(/\$\{env:[A-Z_]+:-([^}]*)\}/g, '$1');
  const hosts = Object.values(cfg.exporters).map((e) => new URL(
    /^[a-z]+:\/\//.test(dflt(e.endpoint)) ? dflt(e.endpoint) : `grpc://${dflt(e.endpoint)}`).hostname);
  assert.deepEqual(hosts.sort(), ['loki', 'prometheus', 'tempo']);
  for (const h of hosts) assert.ok(services[h], `exporter host ${h} is not a compose service`);
  assert.equal(cfg.receivers.otlp.protocols.grpc.endpoint, '0.0.0.0:4317');
  assert.equal(cfg.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318');
  assert.equal(cfg.extensions.health_check.endpoint, '0.0.0.0:13133');
  assert.equal(cfg.service.telemetry.metrics.address, '0.0.0.0:8888');
  for (const [name, p] of Object.entries(cfg.service.pipelines)) {
    assert.deepEqual(p.processors, ['memory_limiter', 'batch'], `pipeline ${name}`);
  }
  // The Dockerfile bakes the same file in, and compose mounts it where the image reads it.
  assert.match(read('collector/Dockerfile'), /COPY config\/collector\.yaml \/etc\/otelc\/config\.yaml/);
  assert.ok(services.collector.volumes.includes('./config/collector.yaml:/etc/otelc/config.yaml:ro'));
});

test('loki.yaml and tempo.yaml: structured metadata on schema v13, OTLP into Tempo', () => {
  const loki = parseYaml('config/loki.yaml');
  assert.equal(loki.limits_config.allow_structured_metadata, true);
  const schemas = loki.schema_config.configs;
  const last = schemas[schemas.length - 1];
  assert.equal(last.schema, 'v13');
  assert.equal(last.store, 'tsdb');
  const tempo = parseYaml('config/tempo.yaml');
  assert.equal(tempo.distributor.receivers.otlp.protocols.grpc.endpoint, '0.0.0.0:4317');
  assert.equal(tempo.storage.trace.backend, 'local');
  assert.equal(tempo.server.http_listen_port, 3200);
});

// FROM lines with their stage names, and the instructions of the last stage.
function dockerfileStages(file) {
  const lines = read(file).replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages = [];
  for (const l of lines) {
    const m = l.match(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i);
    if (m) stages.push({ image: m[1], name: m[2], lines: [] });
    else if (stages.length) stages[stages.length - 1].lines.push(l);
  }
  return stages;
}

for (const file of ['collector/Dockerfile', 'todo-api/Dockerfile']) {
  test(`${file}: multi-stage, pinned bookworm bases, non-root, health check`, () => {
    const stages = dockerfileStages(file);
    assert.ok(stages.length >= 2, 'not multi-stage');
    const names = new Set(stages.map((s) => s.name).filter(Boolean));
    for (const s of stages) {
      if (names.has(s.image)) continue;
      const tag = imageTag(s.image);
      assert.ok(tag && tag !== 'latest', `${s.image}: not pinned`);
      assert.match(s.image, /^debian:(12\.\d+|bookworm)/, `${s.image}: not Debian bookworm`);
    }
    const final = stages[stages.length - 1];
    assert.match(final.image, /^debian:(12\.\d+-slim|bookworm-slim|bookworm-\d+-slim)$/, 'runtime stage is not bookworm-slim');
    assert.ok(!final.lines.some((l) => /apt-get install[^&]*-dev\b/.test(l)), 'runtime stage installs -dev packages');
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).pop();
    assert.ok(user, 'no USER in the runtime stage');
    assert.doesNotMatch(user, /^USER\s+(root|0)(:|$)/i, 'runtime user is root');
    assert.ok(final.lines.some((l) => /^HEALTHCHECK\s+.*CMD/i.test(l)), 'no HEALTHCHECK');
    // Files copied from the build context exist.
    for (const l of final.lines.concat(stages.flatMap((s) => s.lines))) {
      const m = l.match(/^COPY\s+(?!--from)(.+)\s+(\S+)$/i);
      if (!m) continue;
      for (const src of m[1].trim().split(/\s+/)) assert.ok(fs.existsSync(rel(src)), `${file}: COPY ${src} does not exist`);
    }
  });
}

// The images build from the same Debian packages as CI: a library added to the build (and to
// .ci/run) but not to a Dockerfile would break `docker compose up --build`, which no test here can
// run. The collector image needs every library but libpq; the Todo API image (which configures the
// whole tree) needs them all.
test('Dockerfiles: the build stage installs every library package .ci/run installs', () => {
  const ci = read('.ci/run');
  const block = ci.match(/PACKAGES=\(([\s\S]*?)\)/);
  assert.ok(block, '.ci/run has no PACKAGES list');
  const libs = block[1].split(/\s+/).filter((p) => /^lib.*-dev$/.test(p) && !/^libclang/.test(p));
  assert.ok(libs.length >= 8, `too few library packages found in .ci/run: ${libs}`);
  for (const [file, skip] of [['collector/Dockerfile', ['libpq-dev']], ['todo-api/Dockerfile', []]]) {
    const build = dockerfileStages(file)[0].lines.join(' ');
    const missing = libs.filter((p) => !skip.includes(p) && !new RegExp(`\\b${p.replace(/[+.]/g, '\\$&')}\\b`).test(build));
    assert.deepEqual(missing, [], `${file}: the build stage lacks ${missing.join(', ')}`);
  }
});

test('.dockerignore keeps build trees, tools and node_modules out of the context', () => {
  const ignore = read('.dockerignore').split('\n').map((l) => l.trim());
  for (const p of ['build', 'build-*', '**/node_modules', '.tools', '.tmp']) assert.ok(ignore.includes(p), p);
});

// ------------------------------------------------------------------------------ Grafana

const datasources = parseYaml('grafana/provisioning/datasources/datasources.yaml').datasources;
const dsByUid = Object.fromEntries(datasources.map((d) => [d.uid, d]));
const dashboardFiles = fs.readdirSync(rel('grafana/dashboards')).filter((f) => f.endsWith('.json'));

test('datasources: fixed uids, wired to each other by uid', () => {
  assert.deepEqual(datasources.map((d) => d.uid).sort(), [...DATASOURCE_UIDS].sort());
  assert.equal(dsByUid.prometheus.type, 'prometheus');
  assert.equal(dsByUid.loki.type, 'loki');
  assert.equal(dsByUid.tempo.type, 'tempo');
  for (const d of datasources) {
    const host = new URL(d.url).hostname;
    assert.ok(services[host], `${d.uid}: ${d.url} is not a compose service`);
  }
  const tempo = dsByUid.tempo.jsonData;
  assert.equal(tempo.tracesToLogsV2.datasourceUid, 'loki');
  assert.match(tempo.tracesToLogsV2.query, /trace_id="\$\$\{__trace\.traceId\}"/, 'trace → logs must match trace_id');
  assert.equal(tempo.tracesToMetrics.datasourceUid, 'prometheus');
  assert.equal(tempo.serviceMap.datasourceUid, 'prometheus');
  const derived = dsByUid.loki.jsonData.derivedFields;
  assert.ok(derived.some((f) => f.matcherType === 'label' && f.matcherRegex === 'trace_id' && f.datasourceUid === 'tempo'),
    'Loki: no derived field on the trace_id structured metadata');
  const exemplars = dsByUid.prometheus.jsonData.exemplarTraceIdDestinations;
  assert.ok(exemplars.some((e) => e.name === 'trace_id' && e.datasourceUid === 'tempo'));
  // Every uid a datasource links to exists.
  const linked = [
    ...derived.map((f) => f.datasourceUid),
    ...exemplars.map((e) => e.datasourceUid),
    tempo.tracesToLogsV2.datasourceUid, tempo.tracesToMetrics.datasourceUid, tempo.serviceMap.datasourceUid,
    tempo.lokiSearch.datasourceUid,
  ];
  for (const uid of linked) assert.ok(dsByUid[uid], `link to unknown datasource ${uid}`);
});

test('dashboards provisioning: the provider reads where compose mounts the dashboards', () => {
  const prov = parseYaml('grafana/provisioning/dashboards/dashboards.yaml');
  const mounts = services.grafana.volumes.map((v) => String(v).split(':'));
  const target = mounts.find(([s]) => s === './grafana/dashboards')?.[1];
  assert.ok(target, 'grafana/dashboards is not mounted');
  assert.deepEqual(prov.providers.map((p) => p.options.path), [target]);
  assert.deepEqual(dashboardFiles.sort(), ['collector.json', 'slo.json', 'todo-api.json']);
});

// Every panel, rows' nested panels included.
function allPanels(panels) {
  return (panels ?? []).flatMap((p) => [p, ...allPanels(p.panels)]);
}

// Every datasource reference in a dashboard: panels, targets, template variables, annotations.
function datasourceRefs(d) {
  const refs = [];
  for (const p of allPanels(d.panels)) {
    if (p.datasource) refs.push([`panel "${p.title}"`, p.datasource]);
    for (const t of p.targets ?? []) if (t.datasource) refs.push([`panel "${p.title}" target ${t.refId}`, t.datasource]);
  }
  for (const v of d.templating?.list ?? []) if (v.datasource) refs.push([`variable ${v.name}`, v.datasource]);
  for (const a of d.annotations?.list ?? []) if (a.datasource) refs.push([`annotation ${a.name}`, a.datasource]);
  return refs;
}

for (const file of ['todo-api.json', 'collector.json', 'slo.json']) {
  test(`dashboard ${file}: parses, unique panel ids, known datasource uids, queries present`, () => {
    const d = JSON.parse(read('grafana/dashboards', file));
    assert.ok(d.uid && d.title, 'uid and title');
    assert.equal(d.id ?? null, null, 'provisioned dashboards carry no database id');
    const panels = allPanels(d.panels);
    const ids = panels.map((p) => p.id);
    assert.ok(ids.every((id) => Number.isInteger(id)), 'every panel has an integer id');
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids: ${ids}`);
    for (const [where, ds] of datasourceRefs(d)) {
      const uid = typeof ds === 'string' ? ds : ds.uid;
      if (uid === '-- Grafana --' || uid?.startsWith('$')) continue;
      assert.ok(dsByUid[uid], `${where} names datasource uid ${uid}, which is not provisioned`);
      if (typeof ds === 'object' && ds.type) assert.equal(ds.type, dsByUid[uid].type, `${where}: type of ${uid}`);
    }
    // Every non-row panel queries something, and every target has its query text.
    for (const p of panels.filter((x) => x.type !== 'row')) {
      assert.ok(p.targets?.length, `panel "${p.title}" has no query`);
      for (const t of p.targets) assert.ok(t.expr || t.query, `panel "${p.title}" target ${t.refId}: empty query`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `panel "${p.title}": duplicate refIds`);
    }
    // Grafana variables the PromQL test knows how to substitute, and template variables only
    // with regex matchers (an "All" value becomes .*).
    const vars = new Set((d.templating?.list ?? []).map((v) => v.name));
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const text = t.expr ?? t.query ?? '';
        for (const m of text.matchAll(/\$\{?(\w+)/g)) {
          const name = m[1];
          assert.ok(['__rate_interval', '__interval', '__range', '__range_s'].includes(name) || vars.has(name),
            `panel "${p.title}": unknown variable $${name}`);
        }
        for (const m of text.matchAll(/(\w+)\s*(=|!=)\s*"\$\{?(\w+)/g)) {
          const v = (d.templating.list ?? []).find((x) => x.name === m[3]);
          if (v?.includeAll) assert.fail(`panel "${p.title}": $${m[3]} can be All and needs =~, not ${m[2]}`);
        }
      }
    }
  });
}

test('dashboards: the panels the issue lists', () => {
  const titles = (file) => allPanels(JSON.parse(read('grafana/dashboards', file)).panels).map((p) => p.title.toLowerCase());
  const exprs = (file) => allPanels(JSON.parse(read('grafana/dashboards', file)).panels)
    .flatMap((p) => (p.targets ?? []).map((t) => `${p.type}|${t.datasource?.uid}|${t.expr ?? t.query}`)).join('\n');
  const todo = exprs('todo-api.json');
  for (const re of [
    /rate\(http_server_request_duration_seconds_count/, // request rate
    /http_response_status_code!~"5\.\."/, // error rate
    /histogram_quantile\(0\.50,[^\n]*http_route/, /histogram_quantile\(0\.95,[^\n]*http_route/, /histogram_quantile\(0\.99,[^\n]*http_route/,
    /todo_count/, /todo_completed_ratio/, /db_client_operation_duration_seconds/,
    /^logs\|loki\|/m, // logs panel
    /^table\|tempo\|/m, // recent traces
  ]) assert.match(todo, re, `todo-api.json lacks ${re}`);
  assert.ok(titles('todo-api.json').some((t) => t.includes('level')), 'logs by level');
  const col = exprs('collector.json');
  for (const m of ['receiver_accepted', 'receiver_refused', 'exporter_sent', 'exporter_send_failed', 'dropped_items',
    'exporter_queue_size', 'exporter_queue_capacity', 'memory_limiter_held_bytes', 'memory_limiter_limit_bytes',
    'exporter_in_flight_requests']) assert.match(col, new RegExp(`otelcol_${m}`), `collector.json lacks otelcol_${m}`);
  for (const s of ['spans', 'metric_points', 'log_records']) assert.match(col, new RegExp(`otelcol_receiver_accepted_${s}`));
  const slo = titles('slo.json').join('\n');
  for (const t of ['availability sli', 'latency sli', 'error budget', 'burn rate', 'apdex']) assert.match(slo, new RegExp(t), `slo.json lacks ${t}`);
});

test('every JSON and YAML file of the stack parses', () => {
  const files = [
    'docker-compose.yml',
    ...fs.readdirSync(rel('config')).filter((f) => /\.(ya?ml)$/.test(f)).map((f) => `config/${f}`),
    'grafana/provisioning/datasources/datasources.yaml',
    'grafana/provisioning/dashboards/dashboards.yaml',
  ];
  for (const f of files) parseYaml(f);
  for (const f of dashboardFiles) JSON.parse(read('grafana/dashboards', f));
});
