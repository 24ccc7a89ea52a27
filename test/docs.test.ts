// The docs page's code samples, generated from the contract: every operation has them, and they name the API key's
// environment variable as the README and the client's README do.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEY_VARIABLE, withCodeSamples } from '../scripts/docs.ts';

const root = resolve(import.meta.dirname, '..');
const bundle = JSON.parse(readFileSync(join(root, 'generated/openapi.json'), 'utf8')) as Record<string, any>;
const documented = withCodeSamples(bundle);
const operations = Object.entries<Record<string, any>>(documented['paths']).flatMap(([path, item]) =>
  Object.entries<any>(item)
    .filter(([, operation]) => Array.isArray(operation?.['x-codeSamples']))
    .map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })),
);
/** Every `$OPENRUSH_…KEY` / `process.env.OPENRUSH_…KEY` a text names. */
const keyVariables = (text: string) => [...text.matchAll(/(?:\$|process\.env\.)(OPENRUSH_\w*KEY\w*)/g)].map((match) => match[1]);

describe('docs code samples', () => {
  it('are on every operation, and authenticated ones take the key from $' + KEY_VARIABLE, () => {
    expect(operations.length).toBe(Object.values<Record<string, unknown>>(bundle['paths']).flatMap((item) => Object.keys(item)).filter((key) => key !== 'parameters').length);
    for (const { name, operation } of operations) {
      const authenticated = (operation.security ?? bundle['security'] ?? []).some((requirement: object) => Object.keys(requirement).length > 0);
      const [curl, typescript] = operation['x-codeSamples'] as Array<{ source: string }>;
      if (authenticated) {
        expect(curl!.source, name).toContain(`-H "Authorization: Bearer $${KEY_VARIABLE}"`);
        expect(typescript!.source, name).toContain(`apiKey: process.env.${KEY_VARIABLE}!`);
      }
      expect([...keyVariables(curl!.source), ...keyVariables(typescript!.source)].every((variable) => variable === KEY_VARIABLE), name).toBe(true);
    }
  });

  it.each(['README.md', 'client/README.md'])('name the same variable as %s', (file) => {
    const variables = new Set(keyVariables(readFileSync(join(root, file), 'utf8')));
    expect(variables.size).toBeGreaterThan(0);
    expect([...variables]).toEqual([KEY_VARIABLE]);
  });
});
