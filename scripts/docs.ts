// `npm run docs`: docs/index.html, rendered from the bundled contract by Redocly, self-contained (no request leaves
// the reader's machine: the Redoc scripts are inlined, the CDN logo is replaced by an inline image), with a curl and
// a TypeScript client sample on every operation. The samples are generated here, from the contract, into
// `x-codeSamples` of a copy of the bundle, so they cannot drift from it; nobody writes them by hand.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
export const DOCS_FILE = join(root, 'docs/index.html');
/** The environment variable that holds the API key in every sample: the docs', the README's, the client's. */
export const KEY_VARIABLE = 'OPENRUSH_KEY';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Json = Record<string, any>;

interface CodeSample {
  lang: string;
  label: string;
  source: string;
}

function resolveRef(document: Json, node: any): any {
  for (let depth = 0; node && typeof node.$ref === 'string' && depth < 20; depth++) {
    node = node.$ref
      .slice(2)
      .split('/')
      .reduce((at: any, part: string) => at?.[part.replaceAll('~1', '/').replaceAll('~0', '~')], document);
  }
  return node;
}

/** The example of a parameter: its own, else its schema's. */
function parameterExample(document: Json, parameter: Json): unknown {
  if (parameter['example'] !== undefined) return parameter['example'];
  const firstExample = Object.values(parameter['examples'] ?? {})[0];
  if (firstExample !== undefined) return resolveRef(document, firstExample)?.value;
  const schema = resolveRef(document, parameter['schema']);
  return schema?.example ?? schema?.examples?.[0];
}

function requestBodyExample(document: Json, operation: Json): unknown {
  const body = resolveRef(document, operation['requestBody']);
  const media = body?.content?.['application/json'];
  if (!media) return undefined;
  if (media.example !== undefined) return media.example;
  const first = Object.values(media.examples ?? {})[0];
  return first === undefined ? undefined : resolveRef(document, first)?.value;
}

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** JSON as a TypeScript object literal, indented to sit inside a call. */
function tsLiteral(value: unknown, indent: string): string {
  return JSON.stringify(value, null, 2)
    .replace(/"([A-Za-z_$][A-Za-z0-9_$]*)":/g, '$1:')
    .replace(/"((?:[^"\\]|\\.)*)"/g, (_all, text: string) => `'${JSON.parse(`"${text}"`).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
    .replaceAll('\n', `\n${indent}`);
}

export function codeSamples(document: Json, path: string, method: string, operation: Json): CodeSample[] {
  const baseUrl: string = document['servers']?.[0]?.url ?? 'http://localhost:3000';
  const parameters: Json[] = (operation['parameters'] ?? []).map((p: unknown) => resolveRef(document, p));
  const pathParams: Record<string, unknown> = {};
  const query: Record<string, unknown> = {};
  const headers: Record<string, unknown> = {};
  for (const parameter of parameters) {
    const example = parameterExample(document, parameter);
    if (parameter['in'] === 'path') pathParams[parameter['name']] = example;
    // Optional query parameters and headers only where the contract gives an example worth showing.
    // (on the parameter itself: a cursor's schema example is no value for a first request).
    else if (parameter['in'] === 'query' && parameter['example'] !== undefined) query[parameter['name']] = example;
    else if (parameter['in'] === 'header' && parameter['example'] !== undefined) headers[parameter['name']] = example;
  }
  const security: unknown[] = operation['security'] ?? document['security'] ?? [];
  const authenticated = security.length > 0 && security.some((requirement) => Object.keys(requirement as object).length > 0);
  const body = requestBodyExample(document, operation);

  const concretePath = path.replace(/\{([^}]+)\}/g, (_all, name: string) => encodeURIComponent(String(pathParams[name])));
  const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  const curl = [`curl -X ${method.toUpperCase()} ${shellQuote(`${baseUrl}${concretePath}${search ? `?${search}` : ''}`)}`];
  if (authenticated) curl.push(`-H "Authorization: Bearer $${KEY_VARIABLE}"`);
  for (const [name, value] of Object.entries(headers)) curl.push(`-H ${shellQuote(`${name}: ${String(value)}`)}`);
  if (body !== undefined) curl.push(`-H 'Content-Type: application/json'`, `-d ${shellQuote(JSON.stringify(body))}`);

  const options: string[] = [];
  const params: string[] = [];
  if (Object.keys(pathParams).length > 0) params.push(`path: ${tsLiteral(pathParams, '    ')}`);
  if (Object.keys(query).length > 0) params.push(`query: ${tsLiteral(query, '    ')}`);
  if (Object.keys(headers).length > 0) params.push(`header: ${tsLiteral(headers, '    ')}`);
  if (params.length > 0) options.push(`  params: {\n    ${params.join(',\n    ')},\n  },`);
  if (body !== undefined) options.push(`  body: ${tsLiteral(body, '  ')},`);
  const call = options.length > 0 ? `openrush.${method.toUpperCase()}('${path}', {\n${options.join('\n')}\n})` : `openrush.${method.toUpperCase()}('${path}')`;
  const typescript = [
    `import { createOpenRushClient } from '@openrush/client';`,
    '',
    authenticated
      ? `const openrush = createOpenRushClient({ baseUrl: '${baseUrl}', apiKey: process.env.${KEY_VARIABLE}! });`
      : `const openrush = createOpenRushClient({ baseUrl: '${baseUrl}' });`,
    `const { data, error } = await ${call};`,
    `if (error) throw new Error(\`\${error.status} \${error.title}: \${error.detail}\`);`,
    'console.log(data);',
  ].join('\n');

  return [
    { lang: 'Shell', label: 'curl', source: curl.join(' \\\n  ') },
    { lang: 'TypeScript', label: 'TypeScript client', source: typescript },
  ];
}

/** A copy of the bundle with `x-codeSamples` on every operation. */
export function withCodeSamples(bundle: Json): Json {
  const document = structuredClone(bundle);
  for (const [path, item] of Object.entries<Json>(document['paths'] ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (operation) operation['x-codeSamples'] = codeSamples(document, path, method, operation);
    }
  }
  return document;
}

// Redoc's sidebar shows "API docs by Redocly" with a logo it loads from cdn.redoc.ly; the page must not reach out,
// so the two logo addresses become an inline SVG of the same words.
const INLINE_LOGO = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="16" viewBox="0 0 64 16"><text x="0" y="12" font-family="sans-serif" font-size="12" fill="#888">Redocly</text></svg>',
)}`;
const EXTERNAL_ASSETS = ['https://cdn.redoc.ly/redoc/logo-mini-full.svg', 'https://cdn.redoc.ly/redoc/logo-mini.svg'];

// Redoc 3's default theme has two colours below WCAG AA's 4.5:1 for body text (axe-core's color-contrast rule, run by
// the docs page test), and so have its HTTP method badges: the muted grey of the search box and of disabled text (#9b9ca8 on white: 2.7:1; #555761 on the dark background: 2.1:1) and the link
// blue (#1f7cff on #fbfbfc: 3.8:1). The page keeps Redoc's theme and sets just those variables (Redoc switches to
// dark by adding `dark` to <html>, following the reader's system setting); `html:root` outranks Redoc's `:root`.
export const ACCESSIBILITY_FIXES =
  '<style id="openrush-contrast">' +
  'html:root{--text-color-disabled:#6e6f7a;--search-trigger-color:#6e6f7a;--link-color-primary:#0b5fd7}' +
  'html.dark:root{--text-color-disabled:#9b9ca8;--search-trigger-color:#9b9ca8;--link-color-primary:#6aa8ff}' +
  // The HTTP method badges (GET #25b869 on #f3f3f6: 2.3:1, POST #1e65f5: 4.3:1, …) in the light theme.
  'html:root .tag-get{--tag-color:#0a6e37}html:root .tag-post{--tag-color:#1a56d6}' +
  'html:root .tag-delete{--tag-color:#c10838}html:root .tag-patch{--tag-color:#7a6000}' +
  'html:root .tag-put{--tag-color:#8f5400}html:root .tag-option{--tag-color:#0d6e73}' +
  // Code samples' blue, orange and green tokens (#3072db, #db7e21, #149e53 on #fbfbfc: 4.4, 3.0, 3.4:1), light theme.
  'html:root:not(.dark){--color-blue-7:#1f5bbf;--color-carrot-7:#a35508;--color-green-7:#0d7a3e}' +
  // Nested schema names take colours from a fixed list; its purple is 2.9:1 on the dark background: plain text there.
  'html.dark .schema-name{color:var(--text-color-primary)!important}' +
  '</style>' +
  // Redoc names its pickers by what they pick ("Example", "Variant") while they show the choice ("Example 1",
  // "CredentialId"): the accessible name must contain the visible words (WCAG 2.5.3), so it becomes "Variant:
  // CredentialId", kept up to date as the choice changes.
  '<script>new MutationObserver(function(){document.querySelectorAll("button[aria-haspopup][aria-label]").forEach(' +
  'function(e){var t=(e.textContent||"").trim(),l=e.getAttribute("aria-label"),k=e.getAttribute("data-label")||l;' +
  'if(t&&l.toLowerCase().indexOf(t.toLowerCase())<0){e.setAttribute("data-label",k);e.setAttribute("aria-label",k+": "+t)}' +
  'else if(t&&e.hasAttribute("data-label")&&l!==k+": "+t){e.setAttribute("aria-label",k+": "+t)}})})' +
  '.observe(document.documentElement,{subtree:true,childList:true,characterData:true})</script>';

export function buildDocs(outFile = DOCS_FILE): void {
  const bundle = JSON.parse(readFileSync(join(root, 'generated/openapi.json'), 'utf8')) as Json;
  const work = mkdtempSync(join(tmpdir(), 'openrush-docs-'));
  try {
    const source = join(work, 'openapi.json');
    writeFileSync(source, JSON.stringify(withCodeSamples(bundle)));
    // Redoc shows the samples of the languages in its list (by default: curl, JavaScript, Python…, generated by
    // itself): the list is exactly ours, so every operation offers our curl and our TypeScript client sample.
    writeFileSync(
      join(work, 'redocly.yaml'),
      'openapi:\n  codeSamples:\n    languages:\n      - lang: curl\n        label: curl\n' +
        '      - lang: TypeScript\n        label: TypeScript client\n',
    );
    mkdirSync(resolve(outFile, '..'), { recursive: true });
    execFileSync(
      join(root, 'node_modules/.bin/redocly'),
      ['build-docs', source, '--inlineBundle', '--title', String(bundle['info']?.title ?? 'API'), '-o', outFile],
      // Run in the work folder, with its redocly.yaml (not the lint config, whose `apis` would replace the source).
      // REDOCLY_TELEMETRY=off: otherwise the page is built with telemetry on, and Redoc 3 sends usage traces to
      // otel.cloud.redocly.com from the reader's browser (build-docs overrides `disableTelemetry` from this setting).
      { cwd: work, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, REDOCLY_TELEMETRY: 'off' } },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  let html = readFileSync(outFile, 'utf8');
  for (const asset of EXTERNAL_ASSETS) html = html.replaceAll(asset, INLINE_LOGO);
  html = html.replace('</head>', `${ACCESSIBILITY_FIXES}</head>`); // the page's own: the first (inlined scripts hold others)
  writeFileSync(outFile, html);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildDocs(process.argv[2] ? resolve(process.argv[2]) : DOCS_FILE);
  console.log(`${process.argv[2] ?? 'docs/index.html'} written from generated/openapi.json`);
}
