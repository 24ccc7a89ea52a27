// A real store with some methods replaced, to see how the server behaves when the database fails.
import { openTestStore, type TestStore } from './stores.ts';
import type { Store } from '../../server/store/types.ts';

export interface FaultyStore {
  store: Store;
  /** The database, for startTestServer({ database }); its store is the wrapped one. */
  database: TestStore;
}

export function faultyStore(overrides: Partial<Store>): FaultyStore {
  const database = openTestStore();
  const real = database.store;
  const store = new Proxy(real, {
    get(target, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return { store, database: { ...database, store } };
}
