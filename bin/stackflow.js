#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `prepare` on install).
// The AWS SDK we pin (package.json) runs on Node 20 and 22 alike; its nine-line notice that
// later SDK releases need Node 22 is about versions we do not use, so it is silenced here
// (README: "Node versions"). Set the variable to "false" to see it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/lib/cli.js');

process.exitCode = await main(process.argv.slice(2));
