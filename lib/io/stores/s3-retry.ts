/**
 * The retry policy of every S3 client stackflow builds: bounded attempts, exponential backoff
 * with full jitter (longer for throttling: 503 SlowDown), and a callback per retry so that a run
 * can say how many retries it took. It replaces the SDK's standard strategy, whose shared retry
 * quota stops retrying altogether after a burst of failures across hundreds of requests in
 * flight — exactly the load pack puts on a content bucket.
 *
 * Only throttling, transient (timeouts, resets) and 5xx errors are retried; 4xx never (404 is a
 * missing blob, 412 a lost race, 403 a configuration problem).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';
import type { RetryNotice } from '../../util/retry.js';
import { backoffMs } from '../../util/retry.js';

/**
 * One store call's retry budget, shared by every layer that retries inside it: the SDK's
 * strategy (up to the response headers) and the store's own retry of a body cut mid-stream.
 * Without it the two nest ((1 + retries)² attempts); with it a call makes at most 1 + retries.
 * The store opens a budget per call (`openBudget`) and tags the call's command with its id as
 * the SDK's retry-token scope (`context.partition_id`, which the SDK passes to
 * `acquireInitialRetryToken` and otherwise leaves unset); the strategy finds the budget by it.
 * (Not AsyncLocalStorage: on Node 20 it makes every promise of the process several times slower.)
 */
export interface RetryScope {
  /** What is being retried, for the notice (`GET s3://bucket/key`). */
  readonly what: string;
  /** Retries left for this call. */
  left: number;
}

export interface S3RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff ceiling in ms (doubles per attempt). */
  baseMs: number;
  /** Largest backoff ceiling in ms. */
  maxMs: number;
  /**
   * Largest wait a server may impose with a retry-after hint; default 30 s. A store that asks
   * for an hour must not park a request (and the run) for an hour.
   */
  maxHintMs?: number;
  onRetry?: (n: RetryNotice) => void;
  random?: () => number;
}

/** Default cap on a server's retry-after hint. */
export const MAX_HINT_MS = 30_000;

interface ScopedToken extends RetryToken {
  readonly scope?: RetryScope | undefined;
}

const token = (count: number, delay: number, scope?: RetryScope): ScopedToken => ({
  getRetryCount: () => count,
  getRetryDelay: () => delay,
  scope,
});

/** The retry-token scope the SDK passes for a request tagged with budget `id`. */
const budgetId = (tokenScope: string): string => tokenScope.replace(/:longpoll$/, '');

export class BoundedRetryStrategy implements RetryStrategyV2 {
  private readonly budgets = new Map<string, RetryScope>();
  private opened = 0;

  constructor(private readonly opts: S3RetryOptions) {}

  /** Opens a call's budget; its id goes into the call's `context.partition_id`. */
  openBudget(scope: RetryScope): string {
    const id = `stackflow-call-${String(++this.opened)}`;
    this.budgets.set(id, scope);
    return id;
  }

  closeBudget(id: string): void {
    this.budgets.delete(id);
  }

  acquireInitialRetryToken(tokenScope?: string): Promise<RetryToken> {
    const scope = tokenScope === undefined ? undefined : this.budgets.get(budgetId(tokenScope));
    return Promise.resolve(token(0, 0, scope));
  }

  refreshRetryTokenForRetry(previous: ScopedToken, info: RetryErrorInfo): Promise<RetryToken> {
    const count = previous.getRetryCount();
    const { scope } = previous;
    const spent = scope !== undefined && scope.left <= 0;
    if (info.errorType === 'CLIENT_ERROR' || count >= this.opts.retries || spent) {
      // The SDK rethrows the request's own error when this rejects.
      return Promise.reject(new Error('no retry'));
    }
    if (scope !== undefined) scope.left--;
    const base = info.errorType === 'THROTTLING' ? this.opts.baseMs * 5 : this.opts.baseMs;
    const jittered = backoffMs(count, base, this.opts.maxMs, this.opts.random);
    const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
    const wait = Math.max(jittered, Math.min(hinted, this.opts.maxHintMs ?? MAX_HINT_MS));
    this.opts.onRetry?.({
      what: scope?.what ?? 'S3 request',
      attempt: count + 1,
      reason: describeSdkError(info.error),
      waitMs: wait,
    });
    return Promise.resolve(token(count + 1, wait, scope));
  }

  recordSuccess(): void {
    // No shared quota to refill: every request gets its own bounded attempts.
  }
}

/** A command of the S3 client, whatever its input and output. */
export type SdkCommand = Parameters<S3Client['send']>[0];

/**
 * Sends `command` through `client` under the budget `scope`: opened on `strategy` for this one
 * request and its retries, the command tagged with its id, closed when the request settles.
 */
export async function sendInScope(
  client: S3Client,
  strategy: BoundedRetryStrategy,
  command: SdkCommand,
  scope: RetryScope,
): Promise<unknown> {
  const id = strategy.openBudget(scope);
  command.middlewareStack.add(
    (next, context) => (args) => {
      context['partition_id'] = id;
      return next(args);
    },
    // override: a command sent again (lib-storage's abort) carries its latest budget.
    { step: 'initialize', name: 'stackflowRetryBudget', override: true },
  );
  try {
    return await client.send(command);
  } finally {
    strategy.closeBudget(id);
  }
}

/** `SlowDown (503)`, `ECONNRESET`, …: short, and free of anything secret. */
export function describeSdkError(e: unknown): string {
  if (typeof e !== 'object' || e === null) return String(e);
  const x = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = x.$metadata?.httpStatusCode;
  const name = x.code ?? x.name ?? 'Error';
  return status === undefined ? name : `${name} (${String(status)})`;
}
