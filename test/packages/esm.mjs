// A consumer's ESM script, run with plain node against a running server: the client as installed from its tarball.
import { allUsage, createOpenRushClient, OpenRushError, unwrap } from '@openrush/client';

const openrush = createOpenRushClient({ baseUrl: process.env.OPENRUSH_URL, apiKey: process.env.OPENRUSH_KEY });
const credits = await unwrap(openrush.GET('/v1/me/credits'));
const created = await unwrap(openrush.POST('/v2/api-keys', { body: { name: 'from the packed client' } }));
const endpoints = [];
for await (const record of allUsage(openrush, { limit: 2 })) endpoints.push(record.endpoint);
let refused;
try {
  await unwrap(openrush.POST('/v2/api-keys', { body: { name: '' } }));
} catch (error) {
  refused = { isOpenRushError: error instanceof OpenRushError, status: error.status, requestId: error.requestId };
}
console.log(JSON.stringify({ node: process.version, credits, created: created.api_key.slice(0, 3), endpoints, refused }));
