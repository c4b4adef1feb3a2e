import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/**
 * The web console's build: Preact components in TSX, compiled by Vite's own transform (no
 * plugin: its JSX set to Preact's automatic runtime), bundled into dist/console-web, which the
 * console service serves at `/`. Assets are named by content hash (cached for good); nothing
 * is inlined into the page, so its Content-Security-Policy allows no inline script or style.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  publicDir: false,
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../../../dist/console-web", import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // no module-preload polyfill: it would be an inline script, and the browsers we serve have it
    modulePreload: { polyfill: false },
    sourcemap: true,
    target: "es2022",
  },
  logLevel: "warn",
});
