import { describe, expect, it } from 'vitest';
import { escapeHtml, html, pathSegment, rawHtml } from '../../../src/http/html.js';

describe('html', () => {
  describe('when a value holds markup', () => {
    it('escapes it in text and in attributes', () => {
      const value = `<script>alert('x')</script>"&\``;
      const out = html`<p title="${value}">${value}</p>`.value;
      expect(out).toBe(
        '<p title="&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;&#96;">' +
          '&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;&#96;</p>',
      );
    });

    it('escapes every item of an array and keeps nested html as is', () => {
      const items = ['<a>', '<b>'];
      // prettier-ignore
      const out = html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.value;
      expect(out).toBe('<ul><li>&lt;a&gt;</li><li>&lt;b&gt;</li></ul>');
    });
  });

  describe('when a value is empty', () => {
    it('renders null, undefined and false as nothing, numbers and true as text', () => {
      expect(html`${null}|${undefined}|${false}|${0}|${true}`.value).toBe('|||0|true');
      expect(escapeHtml(undefined)).toBe('');
    });
  });

  it('passes rawHtml through untouched (constants only)', () => {
    expect(html`${rawHtml('<hr>')}`.value).toBe('<hr>');
  });

  it('encodes path segments so a value cannot change the route', () => {
    expect(pathSegment('hubspot:1/../x?y#z')).toBe('hubspot%3A1%2F..%2Fx%3Fy%23z');
  });
});
