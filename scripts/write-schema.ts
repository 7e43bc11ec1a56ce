/**
 * Writes lib/config/schema.json: pipeline.yaml's JSON Schema as stackflow validates it (the
 * pipeline's fields and every kind's params, assembled by lib/config/schema.ts), for editors
 * (`# yaml-language-server: $schema=…`) and the published package. Run after changing a kind's
 * params: `npm run schema` (test/unit/schema-file.test.ts fails until the file is current).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { pipelineSchema } from '../lib/config/schema.js';
import { kinds } from '../lib/kinds.js';

const file = fileURLToPath(new URL('../lib/config/schema.json', import.meta.url));
const text = await prettier.format(JSON.stringify(pipelineSchema(kinds()), null, 2), {
  ...(await prettier.resolveConfig(file)),
  filepath: file,
});
writeFileSync(file, text);
console.log(`wrote ${file}`);
