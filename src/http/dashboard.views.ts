/**
 * The dashboard's pages as pure functions from view models to HTML (html.ts escapes every value).
 * No script at all: the pages work with plain links and forms, and the Content-Security-Policy
 * (dashboard.routes.ts) forbids scripts outright. The one stylesheet is a constant whose hash the
 * policy allows.
 */
import { createHash } from 'node:crypto';
import { html, pathSegment, rawHtml } from './html.js';
import type { HtmlValue, SafeHtml } from './html.js';
import type { Principal } from './admin-auth.js';

export const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.5em;background:#1d2330;color:#fff}
header a{color:#cfe0ff;text-decoration:none}header .who{margin-left:auto;opacity:.85}
header form{margin:0}header button{background:none;border:1px solid #cfe0ff;color:#cfe0ff;border-radius:3px;cursor:pointer}
main{padding:1em 1.5em;max-width:80em}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0 1.5em}
th,td{border:1px solid #dde1e7;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
.ok{color:#116329;font-weight:600}.bad{color:#b3261e;font-weight:700}
.frozen{display:inline-block;background:#0b57d0;color:#fff;border-radius:3px;padding:0 .4em;font-weight:600}
.muted{color:#667085}.hidden{color:#667085;font-style:italic}
.error{background:#fdecea;border:1px solid #f4b8b3;padding:.6em 1em}
form.search{display:flex;gap:.5em;flex-wrap:wrap;align-items:end}
label{display:flex;flex-direction:column;font-size:.85em}
input{font:inherit;padding:.25em .4em}
code{font-size:.9em;word-break:break-all}
td form{margin:0}progress{width:100%;height:1.4em}
`;

export const STYLE_HASH = `sha256-${createHash('sha256').update(STYLE).digest('base64')}`;

/** Built outside any template so that formatting can never change the hashed bytes. */
const STYLE_ELEMENT = rawHtml('<style>' + STYLE + '</style>');

export const HIDDEN_FOR_OPERATOR = 'hidden for operator role';

export interface Nav {
  principal?: Principal;
  /** link to bull-board when mounted and the principal may open it */
  queuesPath?: string;
  verdicts?: boolean;
}

export function page(
  title: string,
  nav: Nav,
  body: HtmlValue,
  options: { refreshSeconds?: number } = {},
): string {
  const p = nav.principal;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        ${
          options.refreshSeconds !== undefined
            ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}" />`
            : ''
        }
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · crm-ledger admin</title>
        ${STYLE_ELEMENT}
      </head>
      <body>
        <header>
          <strong>crm-ledger</strong>
          ${
            p
              ? html`<nav>
                    <a href="/admin/">Overview</a>${
                      nav.verdicts ? html` · <a href="/admin/ui/verdicts">Recent verdicts</a>` : ''
                    }${nav.queuesPath ? html` · <a href="${nav.queuesPath}/">Queues</a>` : ''}
                  </nav>
                  <span class="who">${p.name} (${p.role})</span>
                  <form method="post" action="/admin/logout">
                    <button type="submit">Log out</button>
                  </form>`
              : ''
          }
        </header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `.value;
}

export function loginPage(options: { next?: string; failed?: boolean }): string {
  return page(
    'Log in',
    {},
    html`${
        options.failed
          ? html`<p class="error" role="alert">That token is not valid. (UNAUTHORIZED)</p>`
          : ''
      }
      <form method="post" action="/admin/login">
        <label
          >Admin, auditor or operator token
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            required
            autofocus
            size="48"
        /></label>
        ${options.next ? html`<input type="hidden" name="next" value="${options.next}" />` : ''}
        <p><button type="submit">Log in</button></p>
      </form>`,
  );
}

export function errorPage(nav: Nav, status: number, code: string, message: string): string {
  return page(
    status === 404 ? 'Not found' : 'Error',
    nav,
    html`<p class="error" role="alert">${message} (${code})</p>
      <p><a href="/admin/">Back to the overview</a></p>`,
  );
}

export function searchForm(values: { tenant?: string; object?: string; id?: string } = {}) {
  return html`<form class="search" method="get" action="/admin/ui/records">
    <label
      >Tenant<input name="tenant" placeholder="hubspot:123" value="${values.tenant}" required
    /></label>
    <label
      >Object<input name="object" placeholder="contact" value="${values.object}" required
    /></label>
    <label>Record id<input name="id" placeholder="42" value="${values.id}" required /></label>
    <button type="submit">Show history</button>
  </form>`;
}

// ---------------------------------------------------------------------------------------------
// Overview

export interface TenantRow {
  tenant: string;
  verified: boolean;
  /** blocks in the chain */
  size: number;
  failure?: { firstBadSeq: number; code: string; reason: string };
  /** anchoring is frozen; `resumable`: this viewer may resume it (operator, admin) */
  frozen?: { reason?: string; resumable?: boolean };
  /** the status dependency failed */
  statusUnknown?: boolean;
  checkpoint?: {
    size: number;
    /** anchoredAt of the last block the checkpoint covers */
    coversUntil?: string;
    signedBy: string[];
    /** the note does not open with our keys */
    invalid?: string;
  };
}

export interface QueueDepthRow {
  queue: string;
  counts: Readonly<Record<string, number>>;
}

export interface VerdictRow {
  tenant: string;
  object: string;
  id: string;
  seq: number;
  at: string;
  type: string;
  code?: string;
  reason?: string;
}

export function overviewPage(
  nav: Nav,
  view: {
    mode: 'full' | 'incremental';
    tenants: TenantRow[];
    queues?: QueueDepthRow[] | { error: string };
    verdicts?: VerdictRow[] | { error: string };
  },
): string {
  const tampered = view.tenants.filter((t) => !t.verified).length;
  return page(
    'Overview',
    nav,
    html`<h2>Find a record</h2>
      ${searchForm()}
      <h2>Tenants</h2>
      <p>
        ${view.tenants.length} tenant${view.tenants.length === 1 ? '' : 's'},
        ${
          tampered === 0
            ? html`<span class="ok">all chains verified</span>`
            : html`<span class="bad">${tampered} TAMPERED</span>`
        }
        (${view.mode} verification).
        ${
          view.mode === 'incremental'
            ? html`<a href="/admin/?verify=full">Run a full verification</a>`
            : html`<a href="/admin/">Back to incremental</a>`
        }
      </p>
      <table id="tenants">
        <thead>
          <tr>
            <th>Tenant</th>
            <th>Chain status</th>
            <th>Blocks</th>
            <th>Last checkpoint</th>
            <th>Signed by</th>
            <th>Full check</th>
          </tr>
        </thead>
        <tbody>
          ${view.tenants.map(tenantRow)}
        </tbody>
      </table>
      ${view.tenants.length === 0 ? html`<p class="muted">No tenant has a chain yet.</p>` : ''}
      ${view.queues ? queuesSection(view.queues) : ''}
      ${view.verdicts ? verdictsSection(view.verdicts, nav.principal, 'Recent verdicts') : ''}`,
  );
}

function tenantRow(t: TenantRow): SafeHtml {
  const status = t.verified
    ? html`<span class="ok">verified</span>`
    : html`<span class="bad">TAMPERED</span>${
          t.failure
            ? html` at seq ${t.failure.firstBadSeq}: <code>${t.failure.code}</code> —
                ${t.failure.reason}`
            : ''
        }`;
  const frozen = t.frozen
    ? html` <span class="frozen">frozen</span>${t.frozen.reason ? html` ${t.frozen.reason}` : ''}
        <p class="muted">
          Anchoring is paused; changes keep queuing. Repair from a witness copy (<code
            >crm-ledger repair --tenant ${t.tenant} --from-witness &lt;copy&gt;</code
          >), then resume: the whole chain is verified first.
        </p>
        ${
          t.frozen.resumable
            ? html`<form method="post" action="/admin/ui/resume">
                <input type="hidden" name="tenant" value="${t.tenant}" />
                <button type="submit">Resume anchoring</button>
              </form>`
            : ''
        }`
    : t.statusUnknown
      ? html` <span class="muted">(freeze state unknown)</span>`
      : '';
  const cp = t.checkpoint;
  return html`<tr data-tenant="${t.tenant}">
    <td><code>${t.tenant}</code></td>
    <td>${status}${frozen}</td>
    <td>${t.size}</td>
    <td>
      ${
        cp
          ? html`size
            ${cp.size}${cp.coversUntil ? html`, covers blocks until ${cp.coversUntil}` : ''}`
          : html`<span class="muted">none yet</span>`
      }
    </td>
    <td>
      ${
        cp?.invalid
          ? html`<span class="bad">signature INVALID</span> ${cp.invalid}`
          : cp
            ? cp.signedBy.join(', ')
            : ''
      }
    </td>
    <td>
      <form method="post" action="/admin/ui/verifications">
        <input type="hidden" name="tenant" value="${t.tenant}" />
        <button type="submit">Verify in full</button>
      </form>
    </td>
  </tr> `;
}

export interface VerificationView {
  tenant: string;
  startedAt: string;
  done: number;
  total: number;
  finishedAt?: string;
  /** the outcome once finished */
  outcome?:
    | { ok: true; size: number; root: string }
    | { ok: false; firstBadSeq: number; code: string; reason: string }
    | { error: string };
}

/** Seconds between reloads of a running verification's page (a meta refresh: no script). */
export const VERIFICATION_REFRESH_S = 1;

/** A background full verification: a progress bar while it runs (the page reloads), then the result. */
export function verificationPage(nav: Nav, v: VerificationView): string {
  const running = v.finishedAt === undefined;
  const percent = v.total > 0 ? Math.floor((v.done * 100) / v.total) : 0;
  const o = v.outcome;
  const status = running
    ? v.total > 0
      ? html`Verifying: ${v.done.toLocaleString('en-US')} of ${v.total.toLocaleString('en-US')}
        blocks (${percent} %)`
      : html`Verifying: starting…`
    : o === undefined
      ? html`Finished.`
      : 'error' in o
        ? html`<span class="bad">Verification could not run</span>: ${o.error}`
        : o.ok
          ? html`<span class="ok">verified</span>: ${o.size.toLocaleString('en-US')} blocks, root
              <code>${o.root}</code>`
          : html`<span class="bad">TAMPERED</span> at seq ${o.firstBadSeq}: <code>${o.code}</code> —
              ${o.reason}`;
  const body = html`<p>
      Full verification of <code>${v.tenant}</code>, started
      ${v.startedAt}${v.finishedAt ? html`, finished ${v.finishedAt}` : ''}.
    </p>
    ${
      // Indeterminate until the verifier reports the chain's size.
      v.total > 0 || !running
        ? html`<progress
            id="verify-progress"
            max="${Math.max(v.total, 1)}"
            value="${running ? v.done : Math.max(v.total, 1)}"
          >
            ${percent} %
          </progress>`
        : html`<progress id="verify-progress"></progress>`
    }
    <p id="verify-status" role="status">${status}</p>
    <p><a href="/admin/">Back to the overview</a></p>`;
  return page(
    `Verification of ${v.tenant}`,
    nav,
    body,
    running ? { refreshSeconds: VERIFICATION_REFRESH_S } : {},
  );
}

function queuesSection(queues: QueueDepthRow[] | { error: string }): SafeHtml {
  if (!Array.isArray(queues))
    return html`<h2>Queues</h2>
      <p class="error">Queue depths unavailable: ${queues.error}</p>`;
  const states = [...new Set(queues.flatMap((q) => Object.keys(q.counts)))];
  return html`<h2>Queues</h2>
    <table id="queues">
      <thead>
        <tr>
          <th>Queue</th>
          ${states.map((s) => html`<th>${s}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${queues.map(
          (q) =>
            html`<tr>
              <td><code>${q.queue}</code></td>
              ${states.map((s) => html`<td>${q.counts[s] ?? 0}</td>`)}
            </tr> `,
        )}
      </tbody>
    </table>`;
}

export function verdictsSection(
  verdicts: VerdictRow[] | { error: string },
  principal: Principal | undefined,
  title: string,
): SafeHtml {
  if (!Array.isArray(verdicts))
    return html`<h2>${title}</h2>
      <p class="error">Verdicts unavailable: ${verdicts.error}</p>`;
  const operator = principal?.role === 'operator';
  return html`<h2>${title}</h2>
    ${
      verdicts.length === 0
        ? html`<p class="muted">No verdicts.</p>`
        : html`<table id="verdicts">
            <thead>
              <tr>
                <th>Anchored</th>
                <th>Record</th>
                <th>Seq</th>
                <th>Verdict</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              ${verdicts.map(
                (v) =>
                  html`<tr>
                    <td>${v.at}</td>
                    <td>
                      <a href="${recordPath(v.tenant, v.object, v.id)}"
                        >${v.tenant} ${v.object}/${v.id}</a
                      >
                    </td>
                    <td>${v.seq}</td>
                    <td>${v.type}${v.code ? html` <code>${v.code}</code>` : ''}</td>
                    <td>
                      ${operator ? html`<span class="hidden">${HIDDEN_FOR_OPERATOR}</span>` : (v.reason ?? '')}
                    </td>
                  </tr> `,
              )}
            </tbody>
          </table>`
    }`;
}

export function verdictsPage(nav: Nav, verdicts: VerdictRow[] | { error: string }): string {
  return page('Recent verdicts', nav, verdictsSection(verdicts, nav.principal, 'Latest first'));
}

export function recordPath(tenant: string, object: string, id: string): string {
  return `/admin/ui/records/${pathSegment(tenant)}/${pathSegment(object)}/${pathSegment(id)}`;
}

// ---------------------------------------------------------------------------------------------
// Record timeline

export type ProofStatus =
  { kind: 'verified'; size: number } | { kind: 'pending' } | { kind: 'failed'; reason: string };

export interface TimelineBlock {
  seq: number;
  kind: string;
  occurredAt: string;
  anchoredAt: string;
  actor: string;
  /** field name → value shown (undefined: sealed, the vault no longer opens it) */
  fields: { name: string; opened: boolean; value?: string }[];
  verdicts: { type: string; code?: string; reason?: string }[];
  /** the block's bytes hash to its indexed hash and link to the record's previous block */
  intact: boolean;
  proof: ProofStatus;
}

export interface TimelineView {
  tenant: string;
  object: string;
  id: string;
  ok: boolean;
  checkpoint?: { size: number; signedBy: string[] } | { invalid: string };
  blocks: TimelineBlock[];
  /** may download the evidence bundle (auditor, admin) */
  evidence: boolean;
}

export function timelinePage(nav: Nav, view: TimelineView): string {
  const operator = nav.principal?.role === 'operator';
  const cp = view.checkpoint;
  return page(
    `${view.object}/${view.id}`,
    nav,
    html`<p>
        Tenant <code>${view.tenant}</code>, ${view.blocks.length}
        block${view.blocks.length === 1 ? '' : 's'}:
        ${
          view.ok
            ? html`<span class="ok">history intact</span>`
            : html`<span class="bad">history FAILED its checks</span>`
        }.
        ${
          cp === undefined
            ? html`<span class="muted">No signed checkpoint yet.</span>`
            : 'invalid' in cp
              ? html`<span class="bad">The latest checkpoint does not verify: ${cp.invalid}</span>`
              : html`Proofs against the signed checkpoint of size ${cp.size} (signed by
                ${cp.signedBy.join(', ')}).`
        }${
          view.evidence
            ? html` <a
                href="/admin/evidence/${pathSegment(view.tenant)}/${pathSegment(view.object)}/${pathSegment(view.id)}"
                >Download the evidence bundle</a
              >`
            : ''
        }
      </p>
      ${searchForm({ tenant: view.tenant, object: view.object, id: view.id })}
      <table id="timeline">
        <thead>
          <tr>
            <th>Seq</th>
            <th>Time</th>
            <th>Kind</th>
            <th>Actor</th>
            <th>Field changes</th>
            <th>Verdicts</th>
            <th>Proof</th>
          </tr>
        </thead>
        <tbody>
          ${view.blocks.map((b) => timelineRow(b, operator))}
        </tbody>
      </table>`,
  );
}

function timelineRow(b: TimelineBlock, operator: boolean): SafeHtml {
  return html`<tr data-seq="${b.seq}">
    <td>${b.seq}</td>
    <td>
      ${b.anchoredAt}${
        b.occurredAt && b.occurredAt !== b.anchoredAt
          ? html`<br /><span class="muted">occurred ${b.occurredAt}</span>`
          : ''
      }
    </td>
    <td>${b.kind}</td>
    <td>${b.actor}</td>
    <td>
      ${
        operator
          ? html`${b.fields.map((f) => f.name).join(', ')}<br /><span class="hidden"
                >values ${HIDDEN_FOR_OPERATOR}</span
              >`
          : html`<table class="fields">
              ${b.fields.map(
                (f) =>
                  html`<tr>
                    <th>${f.name}</th>
                    <td>${f.opened ? f.value : html`<span class="hidden">sealed</span>`}</td>
                  </tr>`,
              )}
            </table>`
      }
    </td>
    <td>
      ${b.verdicts.map(
        (v) =>
          html`<div>
            <strong>${v.type}</strong>${v.code ? html` <code>${v.code}</code>` : ''}${
              v.reason
                ? operator
                  ? html` <span class="hidden">(reason ${HIDDEN_FOR_OPERATOR})</span>`
                  : html` — ${v.reason}`
                : ''
            }
          </div>`,
      )}
    </td>
    <td>${proofCell(b)}</td>
  </tr> `;
}

function proofCell(b: TimelineBlock): SafeHtml {
  if (!b.intact)
    return html`<span class="bad">not verified</span>: block bytes or link do not match`;
  switch (b.proof.kind) {
    case 'verified':
      return html`<span class="ok">verified</span> (in checkpoint ${b.proof.size})`;
    case 'pending':
      return html`<span class="muted">not verified: not in a checkpoint yet</span>`;
    case 'failed':
      return html`<span class="bad">not verified</span>: ${b.proof.reason}`;
  }
}
