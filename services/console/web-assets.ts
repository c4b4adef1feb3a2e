import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/**
 * The web console's built files (services/console/web, built by `npm run build` into
 * dist/console-web), served at `/` by the console itself: same origin as the API, so the
 * page needs no CORS and reads the API with the caller's own token and role. The page holds
 * no data: it is served to anyone who can reach the console, and every read it makes is
 * an authenticated /api/v1 call.
 */

/**
 * What a page of the console may load: its own scripts, styles and API, nothing inline,
 * nothing from elsewhere, never framed.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The repository (or image) root: the nearest folder above this file with a package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

export const DEFAULT_WEB_DIR = join(packageRoot(), "dist", "console-web");

const securityHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export function serveWebConsole(app: FastifyInstance, webDir: string): void {
  if (!existsSync(join(webDir, "index.html"))) {
    // an API-only build (tsc alone) still says where its console went
    app.get("/", async (_req, reply) =>
      reply
        .code(503)
        .headers(securityHeaders)
        .type("text/plain; charset=utf-8")
        .send(`The Driftwatch web console is not built (no ${join(webDir, "index.html")}): run \`npm run build\`, then restart.\n`),
    );
    return;
  }
  app.register(fastifyStatic, {
    root: webDir,
    prefix: "/",
    index: ["index.html"],
    // a route per file built (read at start): any other path is the router's 404, as for the API
    wildcard: false,
    // no listing of the folder, no dotfiles
    list: false,
    dotfiles: "deny",
    cacheControl: false,
    setHeaders: (reply, path) => {
      for (const [name, value] of Object.entries(securityHeaders)) reply.header(name, value);
      // Vite names each asset by its content's hash: cached for good; the page itself is checked each time
      reply.header("cache-control", path.startsWith(join(webDir, "assets")) ? "public, max-age=31536000, immutable" : "no-cache");
    },
  });
}
