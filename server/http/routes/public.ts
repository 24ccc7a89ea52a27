import type { components } from '../../../generated/openapi.d.ts';
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { Problem } from '../../problem.ts';
import { route } from './typed.ts';

type Capabilities = components['schemas']['Capabilities'];

/** The routes anyone may call: capabilities and health checks. */
export function publicRoutes(router: Operations, deps: Deps, capabilities: () => Capabilities): void {
  route(router, 'get', '/v1/capabilities', async () => ({ status: 200, body: capabilities() }));
  route(router, 'post', '/v1/capabilities', async () => ({ status: 200, body: capabilities() }));

  route(router, 'get', '/healthz', async () => ({ status: 200, body: { status: 'ok' as const } }));
  route(router, 'get', '/readyz', async () => {
    try {
      await deps.store.ping();
    } catch (error) {
      deps.logger.warn({ err: error }, 'readiness check failed');
      throw new Problem('service_unavailable', 'The database cannot be reached. Try again shortly.', { headers: { 'Retry-After': '1' } });
    }
    return { status: 200, body: { status: 'ok' as const } };
  });
}
