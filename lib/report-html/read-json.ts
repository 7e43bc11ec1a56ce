/** EFFECTS. A small JSON object from a store, where a missing or damaged one is no error. */
import type { ObjectStore } from '../io/stores/object-store.js';
import { objectKey } from '../model.js';

/** A JSON object from the store, or undefined when missing or unreadable. */
export async function readJson<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  const r = await store.get(objectKey(key));
  if (!r.ok) return undefined;
  try {
    const v = JSON.parse(r.value.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}
