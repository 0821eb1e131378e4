/**
 * The readable form of a subject-access export (GDPR art. 15): one self-contained HTML page, no
 * script, every value escaped. The JSON export beside it is the verifiable one (evidence bundles).
 */
import { createHash } from 'node:crypto';
import { html } from './html.js';
import type { SafeHtml } from './html.js';
import type { SubjectExport } from '../vault/subjects.js';

const PAGE_STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem;max-width:70rem;color:#111}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.ok{color:#065f46}.bad{color:#991b1b}code{font-size:12px;word-break:break-all}`;

/** No script, no external anything; the one inline stylesheet allowed by its hash. */
export const SUBJECT_PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'; frame-ancestors 'none'; base-uri 'none'`;

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function subjectExportPage(data: SubjectExport): string {
  const query =
    'email' in data.query
      ? `email ${data.query.email}`
      : `${data.query.tenant} ${data.query.object}/${data.query.id}`;
  const records: SafeHtml[] = data.records.map((r) => {
    const current = Object.entries(r.current);
    const rows = r.history.blocks.map((b) => {
      const fields = Object.entries(b.fields).map(([name, f]) =>
        'value' in f
          ? `${name} = ${show(f.value)}`
          : `${name}: ${f.opened ? 'hidden' : 'not held'}`,
      );
      return html`<tr>
        <td>${b.seq}</td>
        <td>${b.occurredAt}</td>
        <td>${b.kind}</td>
        <td>${show((b.actor as { id?: unknown } | null)?.id ?? '')}</td>
        <td>${fields.map((f) => html`${f}<br />`)}</td>
        <td class="${b.verified ? 'ok' : 'bad'}">
          ${b.verified ? 'anchored' : 'DOES NOT VERIFY'}${
            b.vault === 'open' ? '' : ` (vault: ${b.vault})`
          }
        </td>
      </tr>`;
    });
    return html`<section>
      <h2>${r.source} ${r.object} ${r.id} <small>(${r.tenant})</small></h2>
      <p class="${r.evidenceVerified ? 'ok' : 'bad'}">
        ${
          r.evidenceVerified
            ? 'This history is proven against the signed ledger checkpoint (evidence bundle in the JSON export).'
            : 'No verified evidence bundle for this record yet.'
        }
      </p>
      <h3>Data held now</h3>
      ${
        current.length === 0
          ? html`<p>No field values are held.</p>`
          : html`<table>
              <tr>
                <th>Field</th>
                <th>Value</th>
              </tr>
              ${current.map(
                ([k, v]) =>
                  html`<tr>
                    <td>${k}</td>
                    <td>${show(v)}</td>
                  </tr>`,
              )}
            </table>`
      }
      <h3>History</h3>
      <table>
        <tr>
          <th>#</th>
          <th>When</th>
          <th>Change</th>
          <th>By</th>
          <th>Fields</th>
          <th>Proof</th>
        </tr>
        ${rows}
      </table>
    </section>`;
  });
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>Subject access report</title>
        <style>
          ${PAGE_STYLE}
        </style>
      </head>
      <body>
        <h1>Subject access report</h1>
        <p>Query: ${query}. Made ${data.createdAt}. Records: ${data.records.length}.</p>
        ${records}
      </body>
    </html>`.value;
}
