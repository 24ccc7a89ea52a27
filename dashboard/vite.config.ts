// The Dashboard's build: `npm run build` (scripts/build.ts) runs Vite with this file and puts the app in
// dist/dashboard/, which `openrush serve` serves at /dashboard (server/http/dashboard.ts). The app is plain static
// files: hashed assets under /dashboard/assets/ and one index.html for every route (history routing).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

const root = import.meta.dirname;

/**
 * `virtual:openrush-enums`: the names and meanings of the contract's integer enums (x-enum-varnames and
 * x-enum-descriptions of ApiKeyStatus, PermissionMode, BudgetPeriod), read from the bundled contract at build time,
 * so the page shows "Disabled" for status 2 from the same source the server and the docs read, without shipping
 * the whole contract to the browser.
 */
function contractEnums(): Plugin {
  const id = 'virtual:openrush-enums';
  return {
    name: 'openrush-contract-enums',
    resolveId: (source) => (source === id ? `\0${id}` : undefined),
    load(resolved) {
      if (resolved !== `\0${id}`) return undefined;
      const contract = JSON.parse(readFileSync(resolve(root, '../generated/openapi.json'), 'utf8'));
      const schemas = contract.components.schemas;
      const enums = Object.fromEntries(
        ['ApiKeyStatus', 'PermissionMode', 'BudgetPeriod'].map((name) => {
          const schema = schemas[name];
          return [name, schema.enum.map((value: number, index: number) => ({
            value,
            name: schema['x-enum-varnames'][index],
            description: schema['x-enum-descriptions'][index],
          }))];
        }),
      );
      return `export default ${JSON.stringify(enums)};`;
    },
  };
}

export default defineConfig({
  root,
  base: '/dashboard/',
  plugins: [react(), contractEnums()],
  // No public/ folder: every file the page loads is hashed (and so cached for good) under assets/.
  publicDir: false,
  build: {
    outDir: resolve(root, '../dist/dashboard'),
    emptyOutDir: true,
    assetsDir: 'assets',
    // The CSP allows no inline script and no data: script; small assets stay files rather than data: URLs
    // (img-src allows data:, but one rule for every asset is easier to hold).
    assetsInlineLimit: 0,
    // The entry's imports are preloaded by <link rel="modulepreload"> tags Vite writes into index.html, not by an
    // inline script: nothing for the CSP to refuse.
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  logLevel: 'warn',
});
