// Request bodies are parsed JSON of any shape a client chose to send, so nothing may walk them by recursion
// without a bound: ~8,000 levels of `[[[…]]]` (16 KB) overflowed the stack of a recursive walk (a 500 for every
// such request). Bodies nested deeper than MAX_JSON_DEPTH are refused with a 400 right after parsing (V8's
// JSON.parse is itself iterative), by the iterative walk below, before the validator (ajv), MCP or any handler
// sees them; a walk written later may then recurse safely up to that depth.

/**
 * The deepest nesting of objects and arrays a JSON body may have, the outermost object or array being level 1.
 * No schema of the contract nests more than a handful of levels; System.Text.Json's default is 64 too.
 */
export const MAX_JSON_DEPTH = 64;

/** The longest `pointer` a ValidationError may hold (the contract's maxLength). */
const MAX_POINTER = 512;

export type JsonFault = { kind: 'depth' | 'text'; pointer: string };

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A pointer of at most MAX_POINTER characters: the nearest ancestor's if the place itself is too long to name. */
function boundedPointer(pointer: string): string {
  if (pointer.length <= MAX_POINTER) return pointer;
  const cut = pointer.lastIndexOf('/', MAX_POINTER);
  return cut <= 0 ? '' : pointer.slice(0, cut);
}

/**
 * The first fault of a parsed JSON value, in document order, without recursion: a `depth` fault at the first
 * object or array nested deeper than MAX_JSON_DEPTH, or a `text` fault at the first string (key or value) for
 * which `refusedText` is true. The walk stops at the first fault, so it never goes past MAX_JSON_DEPTH + 1 levels.
 */
export function firstJsonFault(value: unknown, refusedText: (text: string) => boolean): JsonFault | undefined {
  const values: unknown[] = [value];
  const pointers: string[] = [''];
  const depths: number[] = [0];
  while (values.length > 0) {
    const item = values.pop();
    const pointer = pointers.pop()!;
    const depth = depths.pop()!;
    if (typeof item === 'string') {
      if (refusedText(item)) return { kind: 'text', pointer: boundedPointer(pointer) };
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    if (depth + 1 > MAX_JSON_DEPTH) return { kind: 'depth', pointer: boundedPointer(pointer) };
    // Children are pushed last-first, so they are popped (checked) in document order.
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) {
        values.push(item[i]);
        pointers.push(`${pointer}/${i}`);
        depths.push(depth + 1);
      }
      continue;
    }
    // A key is a string at its member's place, checked just before its value.
    const keys = Object.keys(item);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const at = `${pointer}/${escapePointer(key)}`;
      values.push((item as Record<string, unknown>)[key], key);
      pointers.push(at, at);
      depths.push(depth + 1, depth + 1);
    }
  }
  return undefined;
}
