// The admin dashboard (served at /admin when the gateway runs with `admin: true`). It asks for the API key
// and keeps it in sessionStorage (this tab only); every request it makes carries it. Live numbers arrive
// over Herald's own WebSocket protocol: the page mints a short-lived admin token (POST /api/admin/token)
// and subscribes, with the browser SDK, to the reserved channel each node publishes a stats snapshot to
// once a second. Design: docs/metrics.md.
import { createClient, type HeraldClient } from '@herald/client';
import { drawChart } from './chart.js';
import { DashboardModel, type DashboardView, type NodeSnapshot, type SeriesPoint } from './model.js';

const KEY_STORAGE = 'herald.admin.apiKey';

/** What `POST /api/admin/token` answers. */
interface AdminToken {
  token: string;
  expiresAt: number;
  channel: string;
  type: string;
  wsPath: string;
}

/** An HTTP API error, with the status and the error code of the body. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const e = document.querySelector<T>(selector);
  if (!e) throw new Error(`missing element ${selector}`);
  return e;
};

/** State of the page; exposed as `window.heraldAdmin` for debugging and tests. */
const app = {
  key: null as string | null,
  client: null as HeraldClient | null,
  model: new DashboardModel(),
  state: 'signed-out',
  timer: 0 as number,
};
(window as unknown as { heraldAdmin: typeof app }).heraldAdmin = app;

/** Calls the HTTP API with the key; a 401 signs out. */
async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const key = app.key;
  if (key === null) throw new ApiError(401, 'unauthorized', 'not signed in');
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: 'no-store',
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const e = new ApiError(res.status, err?.code ?? 'http_error', err?.message ?? `HTTP ${res.status}`);
    if (res.status === 401) signOut('The API key was refused.');
    throw e;
  }
  return parsed as T;
}

function setState(state: string, detail = ''): void {
  app.state = state;
  const pill = $('#status');
  pill.textContent = detail ? `${state} (${detail})` : state;
  pill.className = `pill pill-${state}`;
}

// ---- sign in / out ---------------------------------------------------------------------------------

function showLogin(error = ''): void {
  $('#login').hidden = false;
  $('#dashboard').hidden = true;
  $('#logout').hidden = true;
  $('#login-error').textContent = error;
  $<HTMLInputElement>('#api-key').focus();
}

function signOut(error = ''): void {
  sessionStorage.removeItem(KEY_STORAGE);
  app.key = null;
  const client = app.client;
  app.client = null;
  void client?.close();
  window.clearInterval(app.timer);
  app.model = new DashboardModel();
  setState('signed-out');
  showLogin(error);
}

async function signIn(key: string): Promise<void> {
  app.key = key;
  setState('connecting');
  let stats: NodeSnapshot & { series: SeriesPoint[] };
  let token: AdminToken;
  try {
    // Both need the key: a wrong key stops here (401 signs out with a message).
    stats = await api('GET', '/api/stats?series=true');
    token = await api('POST', '/api/admin/token');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      signOut(
        err instanceof ApiError && err.code === 'not_found'
          ? 'The admin dashboard is not enabled on this gateway.'
          : `Cannot reach the gateway: ${String(err)}`,
      );
    }
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('#login').hidden = true;
  $('#dashboard').hidden = false;
  $('#logout').hidden = false;
  app.model.seed(stats.node, stats.series);
  app.model.add(stats, Date.now());
  render();

  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${token.wsPath}`;
  let first: string | undefined = token.token;
  const client = createClient({
    url,
    // The first token was minted above; later ones (after close 4401, when a token expires) are minted anew.
    getToken: async () => {
      const t = first ?? (await api<AdminToken>('POST', '/api/admin/token')).token;
      first = undefined;
      return t;
    },
    logger: { debug() {}, warn() {} },
  });
  app.client = client;
  client.on('state', ({ to, code }) => setState(to === 'connected' ? 'live' : to, code === undefined ? '' : `close ${code}`));
  client.subscribe<NodeSnapshot & Record<string, unknown>>(token.channel, (m) => {
    if (m.type !== token.type) return;
    app.model.add(m.payload, Date.now());
    render();
  });
  client.connect();
  // Nodes that went silent drop out even when nothing else arrives.
  app.timer = window.setInterval(render, 1000);
}

// ---- rendering -------------------------------------------------------------------------------------

const fmt = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

function setText(selector: string, value: string | number): void {
  const text = typeof value === 'number' ? fmt.format(value) : value;
  const e = $(selector);
  if (e.textContent !== text) e.textContent = text;
}

function rows(tbody: HTMLElement, data: ReadonlyArray<ReadonlyArray<string | number>>, empty: string): void {
  const trs = data.map((cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = typeof c === 'number' ? fmt.format(c) : c;
      if (typeof c === 'number') td.className = 'num';
      tr.append(td);
    }
    return tr;
  });
  if (trs.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 9;
    td.className = 'empty';
    td.textContent = empty;
    tr.append(td);
    trs.push(tr);
  }
  tbody.replaceChildren(...trs);
}

function uptime(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** A node's connections, with the count per protocol when it serves more than the native one (`12 (native 10, pusher 2)`). */
function connectionsText(n: DashboardView['nodes'][number]): string | number {
  const parts = Object.entries(n.protocols ?? {})
    .filter(([, c]) => c > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  if (parts.length === 0 || (parts.length === 1 && parts[0]?.[0] === 'native')) return n.connections;
  return `${fmt.format(n.connections)} (${parts.map(([p, c]) => `${p} ${fmt.format(c)}`).join(', ')})`;
}

function render(): void {
  if (app.key === null) return;
  const v: DashboardView = app.model.view(Date.now());
  setText('#connections', v.connections);
  setText('#channels', v.channels);
  setText('#subscriptions', v.subscriptions);
  setText('#rate-in', v.rates.in);
  setText('#rate-out', v.rates.out);
  setText('#rate-dropped', v.rates.dropped);
  setText('#total-published', v.totals.published);
  setText('#total-delivered', v.totals.delivered);
  setText('#total-dropped', v.totals.dropped);
  setText('#webhooks-queued', v.webhooks.queued);
  setText('#webhooks-held', v.webhooks.held);
  setText('#webhooks-dead', v.webhooks.dead);
  setText('#webhooks-age', `${Math.round(v.webhooks.queueAge)} s`);
  setText('#webhooks-sent', v.webhooks.sent);
  setText('#webhooks-failed', v.webhooks.failed);
  setText('#node-count', `${v.nodes.length} node${v.nodes.length === 1 ? '' : 's'}`);
  rows(
    $('#channel-table tbody'),
    v.channelList.map((c) => [c.channel, c.subscribers]),
    'no subscriptions',
  );
  rows(
    $('#drop-table tbody'),
    v.drops.map((d) => [d.reason, d.count]),
    'nothing dropped',
  );
  rows(
    $('#node-table tbody'),
    v.nodes.map((n) => [n.node, n.engine, uptime(n.uptime), connectionsText(n), n.channels, n.sample?.published ?? 0, n.sample?.delivered ?? 0]),
    'waiting for the first snapshot',
  );
  drawChart($<SVGSVGElement>('#chart'), v.chart);
  document.body.dataset['snapshots'] = String(app.model.received);
}

// ---- forms -----------------------------------------------------------------------------------------

function show(selector: string, ok: boolean, text: string): void {
  const out = $(selector);
  out.textContent = text;
  out.className = ok ? 'result ok' : 'result error';
}

async function publishTest(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const channel = $<HTMLInputElement>('#pub-channel').value.trim();
  const type = $<HTMLInputElement>('#pub-type').value.trim();
  let payload: unknown;
  try {
    payload = JSON.parse($<HTMLTextAreaElement>('#pub-payload').value);
  } catch {
    show('#publish-result', false, 'The payload is not valid JSON.');
    return;
  }
  try {
    const r = await api('POST', '/api/publish', { channel, type, payload });
    show('#publish-result', true, JSON.stringify(r));
  } catch (err) {
    show('#publish-result', false, err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err));
  }
}

async function disconnect(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const kind = $<HTMLSelectElement>('#dc-kind').value === 'client' ? 'client' : 'user';
  const id = $<HTMLInputElement>('#dc-id').value.trim();
  const reason = $<HTMLInputElement>('#dc-reason').value.trim();
  try {
    const r = await api('POST', '/api/disconnect', { [kind]: id, ...(reason ? { reason } : {}) });
    show('#disconnect-result', true, JSON.stringify(r));
  } catch (err) {
    show('#disconnect-result', false, err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err));
  }
}

// ---- start -----------------------------------------------------------------------------------------

$<HTMLFormElement>('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const key = $<HTMLInputElement>('#api-key').value.trim();
  if (key) void signIn(key);
});
$('#logout').addEventListener('click', () => signOut());
$<HTMLFormElement>('#publish-form').addEventListener('submit', (ev) => void publishTest(ev));
$<HTMLFormElement>('#disconnect-form').addEventListener('submit', (ev) => void disconnect(ev));

const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) void signIn(saved);
else showLogin();
