// A real SQLite store with some methods replaced, to see how the server behaves when the database fails.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { Store } from '../../server/store/types.ts';

export interface FaultyStore {
  store: Store;
  /** Removes the temp folder; the server closes the store itself. */
  cleanup(): void;
}

export function faultyStore(overrides: Partial<Store>): FaultyStore {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-faulty-'));
  const real = openSqliteStore(join(dir, 'openrush.db'));
  const store = new Proxy(real, {
    get(target, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return { store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
