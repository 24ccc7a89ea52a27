// The package.json that is published carries no `prepare`: in this repository it patches node_modules and builds
// dist/ (patch-package, scripts/build.ts, neither shipped), and npm treats a dependency's `prepare` as an install
// script — it warns on every consumer's install that it is not approved, and would run it (and fail) once approved.
// So packing takes it out and puts it back after:
//   prepack       tsx scripts/publish-manifest.ts strip     package.json without it; the original kept beside it
//   postpack      tsx scripts/publish-manifest.ts restore   (skipped under `npm publish`, which re-reads the manifest
//   postpublish   tsx scripts/publish-manifest.ts restore    after packing to send to the registry: restored later)
// scripts/check-packages.ts packs with the same two steps around `npm pack --ignore-scripts`.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');
const MANIFEST = join(root, 'package.json');
const KEPT = join(root, '.package.json.repository');

/** The scripts that run in a consumer's install and belong to this repository only. */
export const REPOSITORY_ONLY_SCRIPTS = ['prepare'];

export function restoreManifest(): void {
  if (existsSync(KEPT)) renameSync(KEPT, MANIFEST);
}

export function stripManifest(): void {
  restoreManifest(); // a pack that failed half-way left the original aside
  const text = readFileSync(MANIFEST, 'utf8');
  const manifest = JSON.parse(text) as { scripts?: Record<string, string> };
  for (const name of REPOSITORY_ONLY_SCRIPTS) delete manifest.scripts?.[name];
  writeFileSync(KEPT, text);
  // Written beside it and renamed over it: anything reading package.json meanwhile (another test file's module
  // resolution, while the packages test packs) sees one whole manifest or the other, never a truncated file.
  const stripped = `${MANIFEST}.published`;
  writeFileSync(stripped, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(stripped, MANIFEST);
}

/** Runs `work` with the published package.json in place, restoring the repository's after. */
export function withPublishedManifest<T>(work: () => T): T {
  stripManifest();
  try {
    return work();
  } finally {
    restoreManifest();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const step = process.argv[2];
  if (step === 'strip') stripManifest();
  else if (step === 'restore') {
    // `npm publish` packs (prepack, postpack), then reads package.json again for the registry: restore after that.
    if (!(process.env.npm_lifecycle_event === 'postpack' && process.env.npm_command === 'publish')) restoreManifest();
  } else throw new Error('usage: tsx scripts/publish-manifest.ts strip|restore');
}
