// An embedder of the server package: createApp on its own store, on a port of its choosing; the contract files.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createApp, loadConfig, openStore } from 'openrush';

const store = openStore('sqlite::memory:');
await store.migrate();
const app = createApp({ store, config: loadConfig({}) });
const server = await new Promise((resolve) => {
  const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
});
const response = await fetch(`http://127.0.0.1:${server.address().port}/v1/capabilities`);
const capabilities = await response.json();
server.close();
await store.close();
const yaml = fileURLToPath(import.meta.resolve('openrush/openapi.yaml'));
console.log(JSON.stringify({ status: response.status, tools: capabilities.tools.map((tool) => tool.name), yaml: existsSync(yaml) }));
