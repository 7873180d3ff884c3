/**
 * Security headers on every HTTP answer (API, metrics, releases, the dashboard), from Hono's secureHeaders.
 *
 * The Content-Security-Policy fits the dashboard's Vite build: one module script and stylesheets from the hub itself
 * (the charts' chunk and its CSS are loaded from /assets too), fetch and the SSE stream to the same origin, no inline
 * script or `style` attribute (Preact and uPlot set styles through the CSSOM, which CSP does not govern), and `data:`
 * images only. tests/src/dashboard/csp.test.ts loads every page in Chromium under it and fails on any violation.
 */
import { secureHeaders } from 'hono/secure-headers';

export function securityHeaders() {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'"],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    xContentTypeOptions: 'nosniff',
    // Not sent: the hub's TLS is often a bureau-internal or self-signed certificate, and HSTS would take away the
    // browser's click-through for a year; a TLS proxy in front sets it where the certificate is a real one.
    strictTransportSecurity: false,
  });
}
