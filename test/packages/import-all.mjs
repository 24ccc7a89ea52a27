// Imports every module of the installed server package's dist/: one that imports a package the server does not
// declare fails here, as it would in a project that has only `openrush`. Prints what failed, as JSON. The built
// Dashboard (dist/dashboard/) is browser code, bundled with its dependencies: test/dashboard/ runs it in a browser.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = fileURLToPath(new URL('./node_modules/openrush/dist/', import.meta.url));
const modules = readdirSync(dist, { recursive: true })
  .filter((file) => file.endsWith('.js') && !file.startsWith('dashboard/'))
  .sort();
const failed = [];
for (const file of modules) {
  try {
    await import(pathToFileURL(join(dist, file)).href);
  } catch (error) {
    failed.push(`${file}: ${error.code ?? ''} ${error.message.split('\n')[0]}`);
  }
}
console.log(JSON.stringify({ imported: modules.length, failed }));
