/**
 * Small HTTP helpers shared by the S3 handlers: single header values, bounded body reads, XML
 * text escaping, and RFC 7232 entity-tag matching as S3 applies it.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { KoaContext } from './s3rver.js';
import { s3Error } from './s3rver.js';

/** A request header as one string (repeated headers joined), or undefined. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** A query parameter as one string (the first if repeated), or undefined. */
export function queryParam(ctx: KoaContext, name: string): string | undefined {
  const v = ctx.query[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a small request body (XML, JSON) fully; 400 if it exceeds `limit` bytes. */
export async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw s3Error('MaxMessageLengthExceeded', 'Your request was too big.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

export function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e] ?? '';
  });
}

/** The text of every `<tag>...</tag>` directly in `xml` (a flat, trusted-shape S3 request). */
export function xmlElements(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  for (const m of xml.matchAll(re)) out.push(m[1] ?? '');
  return out;
}

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export function sendXml(ctx: KoaContext, xml: string, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = XML_DECL + xml;
}

/** Entity tags in an If-Match / If-None-Match value, unquoted (`W/` dropped), or `*`. */
function etagsOf(value: string): string[] {
  return value
    .split(',')
    .map((t) =>
      t
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .filter((t) => t !== '');
}

/**
 * Whether a conditional header's value matches the object's ETag. S3 compares ETags without
 * their quotes, so `"abc"` and `abc` both match `"abc"`; `*` matches any existing object.
 */
export function etagMatches(value: string, quotedEtag: string): boolean {
  const etag = quotedEtag.replace(/^"(.*)"$/, '$1');
  return etagsOf(value).some((t) => t === '*' || t === etag);
}

/** An HTTP date, or undefined if absent or unparseable (an invalid date is ignored, per RFC 7232). */
export function httpDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Last-Modified as HTTP dates carry it: whole seconds. */
export function toSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
