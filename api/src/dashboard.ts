import fs from 'node:fs';
import path from 'node:path';
import type { Route } from './server';

/**
 * The dashboard's page loads only its own files: no inline script or style, no third party, no
 * framing. Its API key travels in headers and the WebSocket's connection params, never in a URL.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const headers = (type: string, immutable: boolean): Record<string, string> => ({
  'content-type': type,
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
});

/**
 * Serves the built dashboard (`dir`: its `index.html` and hashed assets) at `/dashboard`. Without
 * a build it answers 404 saying how to make one, and the API runs on.
 */
export const dashboardRoute = (dir: string): Route => {
  const root = path.resolve(dir);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/dashboard' && !url.pathname.startsWith('/dashboard/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    if (url.pathname === '/dashboard') {
      res.writeHead(308, { location: '/dashboard/' }).end();
      return true;
    }
    const relative = decodeURIComponent(url.pathname.slice('/dashboard/'.length)) || 'index.html';
    const file = path.resolve(root, relative);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      // The page routes by its URL's hash; any other path under /dashboard/ is a missing file.
      const index = path.join(root, 'index.html');
      if (relative !== 'index.html' || !fs.existsSync(index)) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(
          fs.existsSync(index) ? 'not found\n' : 'the dashboard is not built: run `npm run build` (npm start builds it)\n',
        );
        return true;
      }
    }
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    const body = fs.readFileSync(file);
    res.writeHead(200, { ...headers(type, relative.startsWith('assets/')), 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
};
