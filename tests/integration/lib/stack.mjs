// The PromQL of the stack's Grafana dashboards and Prometheus rules, extracted and made runnable
// as tests/integration/stack_promql.test.mjs needs it, following .tmp/stack-contract.md:
// - every Prometheus target expr of every panel (nested rows and collapsed row panels included)
//   and every Prometheus query variable of the templating;
// - Grafana's built-in variables replaced by fixed values, dashboard variables by `.*` unless they
//   have a current value other than All;
// - alert rules split at their last top-level comparison: the whole expr must be valid, the part
//   before the comparison must return data.

// Datasources that are not Prometheus: their targets hold LogQL or TraceQL, not PromQL.
function isPrometheusDatasource(ds) {
  if (ds === undefined || ds === null) return true; // the panel's or the default one
  if (typeof ds === 'string') return ds === 'prometheus' || ds.toLowerCase() === 'prometheus';
  if (ds.uid === '-- Mixed --' || ds.uid === '-- Dashboard --') return true;
  if (ds.type) return ds.type === 'prometheus';
  return ds.uid === 'prometheus';
}

// Every panel of a dashboard, depth first: top-level panels, panels inside row panels (collapsed
// rows keep theirs in row.panels) and the old schema's rows[].panels.
export function allPanels(dashboard) {
  const out = [];
  const walk = (panels, where) => {
    for (const p of panels ?? []) {
      out.push({ panel: p, where });
      if (Array.isArray(p.panels)) walk(p.panels, `${where}${p.title ? ` / ${p.title}` : ''}`);
    }
  };
  walk(dashboard.panels, '');
  for (const row of dashboard.rows ?? []) walk(row.panels, row.title ? ` / ${row.title}` : '');
  return out;
}

// The PromQL expressions of a dashboard: [{ where, expr, kind: 'panel' | 'variable', variable? }].
export function dashboardQueries(dashboard, file = '') {
  const name = `${file}${dashboard.title ? ` (${dashboard.title})` : ''}`;
  const queries = [];
  for (const { panel, where } of allPanels(dashboard)) {
    for (const t of panel.targets ?? []) {
      const ds = t.datasource ?? panel.datasource;
      if (!isPrometheusDatasource(ds)) continue;
      if (typeof t.expr !== 'string' || !t.expr.trim() || t.hide === true) continue;
      queries.push({
        kind: 'panel',
        where: `${name}${where} / panel ${panel.id ?? '?'} "${panel.title ?? ''}" target ${t.refId ?? '?'}`,
        expr: t.expr,
      });
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query' || !isPrometheusDatasource(v.datasource)) continue;
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
    if (!q.trim()) continue;
    queries.push({ kind: 'variable', where: `${name} / variable ${v.name}`, expr: q, variable: v.name });
  }
  return queries;
}

// Values of the dashboard's template variables for substitution: `.*` unless current.value is set
// and is not All.
export function variableValues(dashboard) {
  const values = {};
  for (const v of dashboard.templating?.list ?? []) {
    if (!v.name) continue;
    let val = v.current?.value;
    if (Array.isArray(val)) val = val.length === 1 ? val[0] : val.length ? val.join('|') : undefined;
    if (val === undefined || val === null || val === '' || val === '$__all' || val === 'All' ||
        v.current?.text === 'All') {
      values[v.name] = '.*';
    } else {
      values[v.name] = String(val);
    }
  }
  return values;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Replaces Grafana's built-in variables and the dashboard's own.
export function substitute(expr, values = {}) {
  const builtins = {
    __rate_interval: '1m',
    __interval: '30s',
    __range_s: '300',
    __range_ms: '300000',
    __range: '5m',
    __interval_ms: '30000',
  };
  const all = { ...values, ...builtins };
  // Longest names first, so that $__range_s is not read as $__range followed by "_s".
  const names = Object.keys(all).sort((a, b) => b.length - a.length);
  let out = expr;
  for (const n of names) {
    const v = all[n];
    const e = escapeRe(n);
    out = out
      .replace(new RegExp(`\\$\\{${e}(?::[^}]*)?\\}`, 'g'), () => v)
      .replace(new RegExp(`\\[\\[${e}(?::[^\\]]*)?\\]\\]`, 'g'), () => v)
      .replace(new RegExp(`\\$${e}(?![A-Za-z0-9_])`, 'g'), () => v);
  }
  return out;
}

// Splits an expression at its last top-level comparison (>, <, >=, <=, ==, != with an optional
// `bool`), outside parentheses, brackets, braces and strings. Returns { query, op, threshold } or
// null when there is none.
export function splitComparison(expr) {
  let depth = 0;
  let quote = null;
  let last = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
      continue;
    }
    if (c === '#') {
      // A comment runs to the end of the line.
      while (i < expr.length && expr[i] !== '\n') i++;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0) {
      const two = expr.slice(i, i + 2);
      if (two === '>=' || two === '<=' || two === '==' || two === '!=') {
        last = { at: i, len: 2 };
        i++;
      } else if ((c === '>' || c === '<') && expr[i + 1] !== '~') {
        last = { at: i, len: 1 };
      }
    }
  }
  if (!last) return null;
  const query = expr.slice(0, last.at).trim();
  const op = expr.slice(last.at, last.at + last.len);
  const threshold = expr.slice(last.at + last.len).replace(/^\s*bool\b/, '').trim();
  if (!query || !threshold) return null;
  return { query, op, threshold };
}

// The queries of a rules file (parsed YAML): alerts give two (the whole expr, which must be
// valid, and the query part, which must return data); recording rules one, which must return
// data.
export function ruleQueries(rules, file = 'alerts.yml') {
  const out = [];
  for (const g of rules?.groups ?? []) {
    for (const r of g.rules ?? []) {
      const expr = String(r.expr ?? '');
      if (r.alert) {
        const where = `${file} / group ${g.name} / alert ${r.alert}`;
        out.push({ kind: 'alert', where, expr, needData: false });
        const split = splitComparison(expr);
        out.push({
          kind: 'alert-query',
          where,
          expr: split ? split.query : expr,
          needData: true,
          noComparison: !split,
        });
      } else if (r.record) {
        out.push({ kind: 'record', where: `${file} / group ${g.name} / record ${r.record}`, expr, needData: true });
      }
    }
  }
  return out;
}

// Grafana's Prometheus variable functions, turned into a check against the Prometheus HTTP API:
// { kind: 'label_values', match, label } | { kind: 'metrics', regex } | { kind: 'query', expr }.
export function parseVariableQuery(q) {
  const s = q.trim();
  let m = /^label_values\(\s*(.*?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/s.exec(s);
  if (m) return { kind: 'label_values', match: m[1], label: m[2] };
  m = /^label_values\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(s);
  if (m) return { kind: 'label_values', match: null, label: m[1] };
  m = /^metrics\(\s*(.*?)\s*\)$/s.exec(s);
  if (m) return { kind: 'metrics', regex: m[1] };
  m = /^query_result\(\s*(.*)\s*\)$/s.exec(s);
  if (m) return { kind: 'query', expr: m[1] };
  return { kind: 'query', expr: s };
}

// Runs an instant query; returns { ok, error?, count }.
export async function promQuery(base, expr) {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json().catch(() => ({ status: 'error', error: `HTTP ${res.status}` }));
  if (body.status !== 'success') return { ok: false, error: body.error ?? `HTTP ${res.status}`, count: 0 };
  const { resultType, result } = body.data;
  const count = resultType === 'scalar' || resultType === 'string' ? 1 : result.length;
  return { ok: true, count, result };
}

// Checks a variable query the way Grafana would run it; returns { ok, error?, count }.
export async function promVariable(base, q) {
  const v = parseVariableQuery(q);
  if (v.kind === 'query') return promQuery(base, v.expr);
  const now = Math.floor(Date.now() / 1000);
  let url;
  if (v.kind === 'metrics') {
    url = `${base}/api/v1/label/__name__/values`;
  } else if (v.match) {
    url = `${base}/api/v1/series?match[]=${encodeURIComponent(v.match)}&start=${now - 3600}&end=${now}`;
  } else {
    url = `${base}/api/v1/label/${v.label}/values?start=${now - 3600}&end=${now}`;
  }
  const res = await fetch(url);
  const body = await res.json().catch(() => ({ status: 'error', error: `HTTP ${res.status}` }));
  if (body.status !== 'success') return { ok: false, error: body.error ?? `HTTP ${res.status}`, count: 0 };
  let values;
  if (v.kind === 'metrics') values = body.data.filter((n) => new RegExp(v.regex).test(n));
  else if (v.match) values = [...new Set(body.data.map((s) => s[v.label]).filter((x) => x !== undefined))];
  else values = body.data;
  return { ok: true, count: values.length };
}
