import helmet from 'helmet';

/**
 * helmet's headers, computed once: they do not depend on the request, so the hit path can set them
 * without running helmet per request. The CSP keeps Swagger UI working (its scripts and styles are
 * served from /docs; icons are data: URIs) and drops upgrade-insecure-requests, which would break the
 * UI on a plain-HTTP local run.
 */
export function securityHeaders(): Array<[string, string]> {
  const headers = new Map<string, string>();
  const fakeRes = {
    setHeader: (name: string, value: string) => headers.set(name, String(value)),
    removeHeader: (name: string) => headers.delete(name),
    getHeader: (name: string) => headers.get(name),
  };
  const middleware = helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: { 'upgrade-insecure-requests': null },
    },
    // The API is meant to be called from other origins (browser geocoders): CORS decides, not CORP.
    crossOriginResourcePolicy: { policy: 'cross-origin' },
  });
  middleware({} as never, fakeRes as never, () => undefined);
  return [...headers.entries()];
}
