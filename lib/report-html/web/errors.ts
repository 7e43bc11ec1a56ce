/** Errors: failed tasks with their last error and how to retry; rows not packed, with links. */
import type { ReportModel } from '../types.js';
import { h, int, section, time } from './dom.js';

const REASONS = ['missing', 'corrupt_gzip', 'undecodable'];

/** A link a browser can open (`file:`), else the URL as text to copy (`s3://…`). */
const link = (url: string): HTMLElement => {
  const name = url.slice(url.lastIndexOf('/') + 1);
  return url.startsWith('file:')
    ? h('a', { href: url, title: url }, name)
    : h('code', { title: url }, url);
};

export function errors(m: ReportModel): HTMLElement {
  const { failed, retry, notPacked } = m.errors;
  const parts: (HTMLElement | false)[] = [];
  if (failed.length === 0)
    parts.push(h('p', { class: 'muted', 'data-empty': 'failed' }, 'No failed task.'));
  else {
    parts.push(
      h('h3', {}, `Failed tasks (${int(failed.length)})`),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'grid failed' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['task', 'reason', 'last error', 'where', 'attempts', 'when', 'retry'].map((x) =>
                h('th', {}, x),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            ...failed.map((f) =>
              h(
                'tr',
                { 'data-task': f.task },
                h('td', {}, h('code', {}, f.task)),
                h('td', {}, f.reason),
                h('td', { class: 'msg' }, f.message),
                h('td', {}, f.host === undefined ? '—' : `${f.worker ?? '?'} on ${f.host}`),
                h('td', { class: 'num' }, f.attempts === undefined ? '—' : String(f.attempts)),
                h('td', {}, f.at === undefined ? '—' : time(f.at)),
                h(
                  'td',
                  {},
                  h(
                    'code',
                    { class: 'cmd' },
                    `npx stackflow run ${quote(f.task)} -f ${quote(m.pipeline.file)}`,
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
      h(
        'p',
        {},
        'Retry every failed task of a stage (tasks that are done are skipped); on a fleet, add ',
        h('code', {}, '--worker'),
        ' and start the workers again:',
      ),
      h('pre', { class: 'cmd' }, retry.join('\n')),
    );
  }
  if (m.staleLeases.length > 0) {
    parts.push(
      h('h3', {}, `Stale leases (${int(m.staleLeases.length)})`),
      h(
        'p',
        {},
        'Their holders stopped heartbeating; ',
        h('code', {}, 'stackflow unlock --stale'),
        ' drops them so others can run the tasks.',
      ),
      h(
        'ul',
        {},
        ...m.staleLeases.map((l) =>
          h('li', {}, h('code', {}, l.task), ` — ${l.worker} on ${l.host}`),
        ),
      ),
    );
  }
  parts.push(h('h3', {}, 'Rows not packed, by language and reason'));
  if (notPacked.length === 0)
    parts.push(
      h('p', { class: 'muted', 'data-empty': 'not-packed' }, 'Every row read so far was packed.'),
    );
  else {
    parts.push(
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          { class: 'grid not-packed' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'language'),
              ...REASONS.map((r) => h('th', { class: 'num' }, r.replace('_', ' '))),
              h('th', {}, '.errors.jsonl (one line per row: row, blob_id, reason, detail)'),
            ),
          ),
          h(
            'tbody',
            {},
            ...notPacked.map((r) =>
              h(
                'tr',
                { 'data-language': r.language },
                h('td', {}, r.language),
                ...REASONS.map((k) => h('td', { class: 'num' }, int(r.counts[k] ?? 0))),
                h('td', { class: 'files' }, ...r.files.flatMap((f) => [link(f), ' '])),
              ),
            ),
          ),
        ),
      ),
    );
  }
  return section('errors', 'Errors', ...parts);
}

/** One shell word, as the retry commands need it. */
function quote(s: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
