// A TypeScript consumer of the client (installed alone), compiled with tsc --strict (and exactOptionalPropertyTypes) under
// module nodenext and under moduleResolution bundler. The README's example, verbatim, comes first.
import { createOpenRushClient } from '@openrush/client';

const openrush = createOpenRushClient({ baseUrl: 'http://localhost:3000', apiKey: process.env.OPENRUSH_KEY });
const { data, error, response } = await openrush.GET('/v1/me/usage', { params: { query: { limit: 10 } } });
if (error) console.error(response.status, error.detail); // error is typed as the contract's Problem
else for (const record of data) console.log(record.endpoint, record.status_code);

import { allApiKeys, OpenRushError, unwrap, type ApiKey, type paths } from '@openrush/client';
import type { components } from '@openrush/client';

const balance: number = (await unwrap(openrush.GET('/v1/me/credits'))).balance;
const keys: ApiKey[] = [];
for await (const key of allApiKeys(openrush, { limit: 5 })) keys.push(key);
const failure = new OpenRushError(404, undefined);
const requestId: string | undefined = failure.requestId;
type UsagePath = keyof paths;
const usagePath: UsagePath = '/v1/me/usage';
const problem: components['schemas']['Problem']['status'] = 400;
// @ts-expect-error the contract has no such path: the types are the contract's, not `any`
void openrush.GET('/v1/no-such-path');
console.log(balance, keys.length, requestId, usagePath, problem);
