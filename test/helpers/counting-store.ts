// A real store that counts how often each of its methods is called, to prove that a request did (or did
// not) reach the database. Nothing is replaced: every call goes to the real store.
import { openTestStore, type TestStore } from './stores.ts';
import type { Store } from '../../server/store/types.ts';

export interface CountingStore {
  store: Store;
  /** How many times the named method has been called so far. */
  calls(method: keyof Store): number;
  /** The database, for startTestServer({ database }); its store is the wrapped one. */
  database: TestStore;
}

export function countingStore(): CountingStore {
  const database = openTestStore();
  const real = database.store;
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
    database: { ...database, store },
  };
}
