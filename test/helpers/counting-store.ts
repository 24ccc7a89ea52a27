// A real SQLite store that counts how often each of its methods is called, to prove that a request did (or did
// not) reach the database. Nothing is replaced: every call goes to the real store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { Store } from '../../server/store/types.ts';

export interface CountingStore {
  store: Store;
  /** How many times the named method has been called so far. */
  calls(method: keyof Store): number;
  /** Removes the temp folder; the server closes the store itself. */
  cleanup(): void;
}

export function countingStore(): CountingStore {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-counting-'));
  const real = openSqliteStore(join(dir, 'openrush.db'));
  const counts = new Map<PropertyKey, number>();
  const store = new Proxy(real, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(property, (counts.get(property) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store;
  return {
    store,
    calls: (method) => counts.get(method) ?? 0,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
