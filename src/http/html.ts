/**
 * Server-rendered HTML with escaping by construction: `html` is a tagged template whose every
 * interpolated value is escaped unless it is itself `SafeHtml` (built by `html` or `rawHtml`).
 * Arrays are rendered item by item under the same rule, so a list of rows needs no join.
 * Nothing else in src/http/ builds markup by string concatenation.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(value: string | number | boolean | null | undefined): string {
  const text = value === null || value === undefined ? '' : String(value);
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Markup written in this codebase (constants only: never pass request or ledger data). */
export function rawHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** A path segment for a link: percent-encoded, so `/` or `?` in a value cannot change the route. */
export function pathSegment(value: string): string {
  return encodeURIComponent(value);
}
