// A TypeScript embedder of the server package (installed alone), compiled like consumer.ts.
import { createApp, loadConfig, openStore, type ToolDefinition } from 'openrush';
import type { components } from 'openrush/types';

const tools: ToolDefinition[] = [];
const store = openStore('sqlite::memory:');
const app = createApp({ store, config: loadConfig({}), tools });
const problem: components['schemas']['Problem']['status'] = 400;
console.log(problem, typeof app.listen);
