#!/usr/bin/env node
// The driftwatch CLI. Runs the built code (npm run build); see README.md.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/services/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("driftwatch: not built yet; run `npm run build` (npm start builds first)\n");
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
