// What a browser app bundles: the client and nothing of Node.
import { allUsage, createOpenRushClient, unwrap } from '@openrush/client';

const openrush = createOpenRushClient({ baseUrl: 'https://api.openrush.io', apiKey: 'or_example' });
export async function balance(): Promise<number> {
  return (await unwrap(openrush.GET('/v1/me/credits'))).balance;
}
export { allUsage };
