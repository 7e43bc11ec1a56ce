/** What the report tests read: the model inlined in a page, and what the sample holds. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReportModel } from '../../lib/report-html/types.js';
import type { Rig } from './rig.js';
import { SAMPLE } from './rig.js';

/** The model inlined in a report page. */
export function modelOf(html: string): ReportModel {
  const m = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html);
  if (m?.[1] === undefined) throw new Error('no report data in the page');
  return JSON.parse(m[1]) as ReportModel;
}

/** What the sample holds: rows per parquet and the rows its defects keep out of the parts. */
export const sample = (() => {
  const manifest = JSON.parse(readFileSync(join(SAMPLE, 'manifest.json'), 'utf8')) as {
    parquets: { rows: number }[];
  };
  const defects = JSON.parse(readFileSync(join(SAMPLE, 'expected-defects.json'), 'utf8')) as Record<
    string,
    unknown[]
  >;
  const notPacked = Object.fromEntries(Object.entries(defects).map(([k, v]) => [k, v.length]));
  const rows = manifest.parquets.reduce((a, p) => a + p.rows, 0);
  return { rows, notPacked, notPackedTotal: Object.values(notPacked).reduce((a, b) => a + b, 0) };
})();

export const stageCount = (rig: Rig): number =>
  (readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8').match(/^ {2}[a-z][a-z0-9_-]*:\s*$/gm) ?? [])
    .length;
