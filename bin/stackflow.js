#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `prepare` on npm ci).
import { main } from '../dist/lib/cli.js';

process.exitCode = await main(process.argv.slice(2));
