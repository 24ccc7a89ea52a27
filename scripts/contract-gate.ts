// The breaking-change gate: which changes between a released contract and the working one break a client.
//
// api-smart-diff (which understands OpenAPI 3.1 and tells request schemas from response schemas when it walks
// them through `paths`) classifies each change. Only changes under `paths` are judged: a schema in `components`
// matters through the operations that use it, and api-smart-diff classifies a bare component schema without
// knowing whether it is read or written. Three rules it gets wrong for this contract are corrected here:
//   - a request field removed from an object with `additionalProperties: false` is breaking (a client that still
//     sends it is now refused with 400);
//   - a `type` that changes is judged by the set of types: in a request, dropping a type is breaking and adding one
//     (e.g. `null`) is not; in a response, adding a type is breaking (a client now meets a value it cannot read)
//     and dropping one is not;
//   - an enum value removed is breaking on either side: api-smart-diff lets a response enum narrow, but the values
//     a client once read are the ones it stores, switches over and sends back in filters (`status`), and its
//     generated types lose a member.
import { apiDiff, type Diff } from 'api-smart-diff';

export interface ContractChange {
  /** Where, as a JSON pointer into the working contract (through `paths`). */
  pointer: string;
  action: Diff['action'];
  side: 'request' | 'response' | 'operation';
  breaking: boolean;
  /** api-smart-diff's own class of the change (`annotation`: a description, summary or example). */
  kind: Diff['type'];
  before?: unknown;
  after?: unknown;
}

export interface GateResult {
  /** True when nothing breaks, or when the major version went up. */
  ok: boolean;
  breaking: ContractChange[];
  changes: ContractChange[];
  beforeVersion: string;
  afterVersion: string;
  majorBumped: boolean;
}

type Json = Record<string, unknown>;

function pointerOf(path: ReadonlyArray<string | number>): string {
  return `/${path.map((part) => String(part).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;
}

/** The node at `path`, following local `$ref`s on the way (api-smart-diff reports paths through resolved refs). */
function nodeAt(document: Json, path: ReadonlyArray<string | number>): unknown {
  const resolve = (node: unknown): unknown => {
    for (let depth = 0; depth < 20; depth++) {
      const ref = (node as Json | null)?.['$ref'];
      if (typeof ref !== 'string' || !ref.startsWith('#/')) return node;
      node = ref
        .slice(2)
        .split('/')
        .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
        .reduce<unknown>((current, part) => (current as Json | undefined)?.[part], document);
    }
    return node;
  };
  let node: unknown = resolve(document);
  for (const part of path) {
    node = resolve((node as Json | undefined)?.[part as string]);
    if (node === undefined) return undefined;
  }
  return node;
}

function sideOf(path: ReadonlyArray<string | number>): ContractChange['side'] {
  if (path.includes('responses')) return 'response';
  if (path.includes('requestBody') || path.includes('parameters')) return 'request';
  return 'operation';
}

function typeSet(value: unknown): Set<string> {
  return new Set(Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)]);
}

function isSubset(small: Set<string>, large: Set<string>): boolean {
  return [...small].every((item) => large.has(item));
}

function judge(diff: Diff, before: Json): boolean {
  const path = diff.path;
  const side = sideOf(path);
  const last = path.at(-1);
  if (last === 'type' && diff.action === 'replace' && side !== 'operation') {
    const was = typeSet(diff.before);
    const is = typeSet(diff.after);
    return side === 'request' ? !isSubset(was, is) : !isSubset(is, was);
  }
  if (diff.action === 'remove' && path.at(-2) === 'enum') return true;
  if (side === 'request' && diff.action === 'remove' && path.at(-2) === 'properties') {
    const parent = nodeAt(before, path.slice(0, -2)) as Json | undefined;
    if (parent?.['additionalProperties'] === false) return true;
  }
  return diff.type === 'breaking';
}

export function majorOf(version: string): number {
  const major = /^(\d+)\./.exec(version)?.[1];
  if (major === undefined) throw new Error(`info.version "${version}" is not a semantic version`);
  return Number(major);
}

const INLINED_COMPONENTS = /^#\/components\/(responses|parameters|requestBodies|headers)\//;

/**
 * A copy where operations hold their shared responses, parameters, request bodies and headers inline (schemas stay
 * references). Through a `$ref` to `components/responses`, api-smart-diff loses track of being in a response and
 * judges a new response field as if it were a new required request field.
 */
function inlineSharedComponents(document: Json): Json {
  const copy = structuredClone(document);
  const inline = (node: unknown, depth: number): unknown => {
    if (Array.isArray(node)) return node.map((item) => inline(item, depth));
    if (typeof node !== 'object' || node === null) return node;
    const ref = (node as Json)['$ref'];
    if (typeof ref === 'string' && INLINED_COMPONENTS.test(ref) && depth < 10) {
      return inline(structuredClone(nodeAt(copy, ref.slice(2).split('/'))), depth + 1);
    }
    return Object.fromEntries(Object.entries(node as Json).map(([key, value]) => [key, inline(value, depth)]));
  };
  copy['paths'] = inline(copy['paths'], 0);
  return copy;
}

/** Every change under `paths`, each judged breaking or not. */
export function contractChanges(before: Json, after: Json): ContractChange[] {
  before = inlineSharedComponents(before);
  after = inlineSharedComponents(after);
  return apiDiff(before, after)
    .filter((diff) => diff.path[0] === 'paths')
    .map((diff) => ({
      pointer: pointerOf(diff.path),
      action: diff.action,
      side: sideOf(diff.path),
      breaking: judge(diff, before),
      kind: diff.type,
      ...(diff.before !== undefined ? { before: diff.before } : {}),
      ...(diff.after !== undefined ? { after: diff.after } : {}),
    }));
}

export function checkContract(before: Json, after: Json): GateResult {
  const changes = contractChanges(before, after);
  const breaking = changes.filter((change) => change.breaking);
  const beforeVersion = String((before['info'] as Json | undefined)?.['version'] ?? '');
  const afterVersion = String((after['info'] as Json | undefined)?.['version'] ?? '');
  const majorBumped = majorOf(afterVersion) > majorOf(beforeVersion);
  return { ok: breaking.length === 0 || majorBumped, breaking, changes, beforeVersion, afterVersion, majorBumped };
}
