/**
 * The few parts of s3rver 3.7.1 (CommonJS, untyped) and of the Koa it is built on that the server
 * uses, typed by hand. Everything else about s3rver stays behind these interfaces.
 */
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

const require = createRequire(import.meta.url);

/** The slice of a Koa context the harness reads and writes. */
export interface KoaContext {
  readonly method: string;
  /** The URL path, still percent-encoded; s3rver's vhost middleware may rewrite it. */
  readonly path: string;
  readonly query: Record<string, string | string[] | undefined>;
  readonly headers: IncomingHttpHeaders;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  status: number;
  body: unknown;
  length: number;
  type: string;
  /** false: Koa leaves the response alone (the handler wrote it, or destroyed the socket). */
  respond: boolean;
  set(field: string, value: string): void;
}

export type Next = () => Promise<void>;
export type Middleware = (ctx: KoaContext, next: Next) => Promise<void>;

/** s3rver's FilesystemStore: only its path layout and metadata reader are used. */
export interface FilesystemStore {
  readonly rootDirectory: string;
  /** `<root>/<bucket>/<key dirs>/<last key segment>._S3rver_<resource>` */
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  /** Replaced by the harness (see server.ts); the signature is s3rver's. */
  putObject: (object: {
    bucket: string;
    key: string;
    content: unknown;
    metadata: unknown;
  }) => Promise<{ size: number; md5: string }>;
  putBucket(bucket: string): Promise<unknown>;
}

/** The s3rver application: a Koa app whose middleware array can be spliced before `callback()`. */
export interface S3rverApp {
  readonly store: FilesystemStore;
  /** Koa's middleware list: logger, XML encoder, mount path, vhost rewrite, router (in order). */
  readonly middleware: { readonly name: string }[];
  /** Koa's request listener (composes `middleware` when called). */
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  /** Koa's 'error' event: every error a request ended with (Koa logs nothing once one is set). */
  on(event: 'error', listener: (err: unknown) => void): unknown;
}

interface S3rverOptions {
  silent: boolean;
  directory: string;
  address: string;
  port: number;
  /** Off: every request is path-style; no Host header is taken for a bucket name. */
  vhostBuckets: boolean;
}

/** An S3 error that s3rver's context.onerror renders as S3 XML with the right status. */
export interface S3Error extends Error {
  readonly code: string;
  status: number;
}

type S3ErrorConstructor = new (
  code: string,
  message: string,
  detail?: Record<string, string | number>,
) => S3Error;

const S3rverClass = require('s3rver') as new (opts: S3rverOptions) => S3rverApp;
const S3ErrorClass = require('s3rver/lib/models/error') as S3ErrorConstructor;

export function createS3rver(opts: S3rverOptions): S3rverApp {
  return new S3rverClass(opts);
}

/**
 * An S3 error response. `status` overrides s3rver's table, which lacks some codes (e.g.
 * ConditionalRequestConflict) or, like everything it does not know, would answer 500.
 */
export function s3Error(
  code: string,
  message: string,
  detail?: Record<string, string | number>,
  status?: number,
): S3Error {
  const err = new S3ErrorClass(code, message, detail);
  if (status !== undefined) err.status = status;
  return err;
}

export function isS3Error(err: unknown): err is S3Error {
  return err instanceof S3ErrorClass;
}
