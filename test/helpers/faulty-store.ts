// A real store with some methods replaced, to see how the server behaves when the database fails.
import { openTestStore, type TestStore } from './stores.ts';
import type { Store } from '../../server/store/types.ts';

export interface FaultyStore {
  store: Store;
  /** The database, for startTestServer({ database }); its store is the wrapped one. */
  database: TestStore;
}

/** `overrides` may be a function of the real store, to fail some calls and pass the others on. */
export function faultyStore(overrides: Partial<Store> | ((real: Store) => Partial<Store>)): FaultyStore {
  const database = openTestStore();
  const real = database.store;
  const replaced = typeof overrides === 'function' ? overrides(real) : overrides;
  const store = new Proxy(real, {
    get(target, property, receiver) {
      if (Object.hasOwn(replaced, property)) return replaced[property as keyof Store];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return { store, database: { ...database, store } };
}
