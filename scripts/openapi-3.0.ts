// An OpenAPI 3.0 rendering of the bundled 3.1 contract, for code generators in other languages that only read 3.0.
// @apiture/openapi-down-convert does the bulk (type arrays to `nullable`, `examples` to `example`, `const` to
// `enum`, …); the few 3.1 forms it leaves are rewritten here, so the result validates as 3.0:
//   - `oneOf`/`anyOf` of a schema and `{ type: 'null' }` becomes a copy of that schema with `nullable: true` (3.0
//     ignores `nullable` beside a `$ref`, and validators refuse null under `allOf: [$ref]` + `nullable`); of several
//     schemas and null, each typed member becomes `nullable` (3.0 allows `nullable` only beside a `type`);
//   - a `type` list that is still a list (several non-null types, e.g. a JSON-RPC id) becomes `anyOf` one type each,
//     each `nullable` when null was one of them;
//   - a component schema that nothing refers to any more (its uses were all such unions) is dropped;
//   - `info.summary` (3.1 only) is dropped (the description says the same at more length);
//   - `info.license.identifier` (3.1 only) becomes the SPDX `url` that 3.0 requires.
import { Converter } from '@apiture/openapi-down-convert';

type Json = Record<string, unknown>;

function isNullSchema(node: unknown): boolean {
  return typeof node === 'object' && node !== null && (node as Json)['type'] === 'null' && Object.keys(node).length === 1;
}

function resolve(root: Json, node: unknown): Json | undefined {
  let current = node as Json | undefined;
  for (let depth = 0; depth < 20 && typeof current?.['$ref'] === 'string'; depth++) {
    current = (current['$ref'] as string).slice(2).split('/').reduce<unknown>((at, part) => (at as Json)?.[part], root) as Json;
  }
  return current;
}

function rewriteNullableUnions(root: Json, node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach((item) => rewriteNullableUnions(root, item));
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const object = node as Json;
  for (const keyword of ['oneOf', 'anyOf'] as const) {
    const members = object[keyword];
    if (Array.isArray(members) && members.some(isNullSchema)) {
      const rest = members.filter((member) => !isNullSchema(member));
      delete object[keyword];
      const only = rest.length === 1 ? resolve(root, rest[0]) : undefined;
      if (only) {
        object['nullable'] = true;
        // The copy keeps the component's name as its title, so generators still name the type after it.
        const ref = (rest[0] as Json)['$ref'];
        if (typeof ref === 'string' && only['title'] === undefined) object['title'] = ref.split('/').at(-1);
        for (const [key, value] of Object.entries(structuredClone(only))) if (!(key in object)) object[key] = value;
      } else {
        // 3.0 allows `nullable` only beside a `type`: each typed member takes it (a JSON-RPC id: string, integer or null).
        object[keyword] = rest.map((member) =>
          typeof member === 'object' && member !== null && 'type' in member ? { ...(member as Json), nullable: true } : member,
        );
      }
    }
  }
  if (Array.isArray(object['type'])) {
    const types = (object['type'] as string[]).filter((type) => type !== 'null');
    const nullable = types.length < (object['type'] as string[]).length || object['nullable'] === true;
    delete object['type'];
    delete object['nullable'];
    if (types.length === 1) Object.assign(object, { type: types[0] }, nullable ? { nullable: true } : {});
    else object['anyOf'] = types.map((type) => ({ type, ...(nullable ? { nullable: true } : {}) }));
  }
  for (const [key, value] of Object.entries(object)) {
    // A property map's keys are names (a property may be called `value`), its values schemas.
    if (key === 'properties' && typeof value === 'object' && value !== null) {
      Object.values(value).forEach((schema) => rewriteNullableUnions(root, schema));
      continue;
    }
    // Examples are data, not schemas: a JSON Schema quoted in an example stays as it is.
    if (key === 'example' || key === 'examples' || key === 'value') continue;
    rewriteNullableUnions(root, value);
  }
}

/**
 * Drops the component schemas nothing refers to any more: those whose only uses were nullable unions, now copied
 * inline (the 3.1 contract itself has no unused component; `redocly lint` refuses one).
 */
function dropUnusedSchemas(root: Json): void {
  const schemas = (root['components'] as Json | undefined)?.['schemas'] as Json | undefined;
  if (!schemas) return;
  for (;;) {
    const text = JSON.stringify(root);
    const unused = Object.keys(schemas).filter((name) => !text.includes(`"#/components/schemas/${name.replaceAll('~', '~0').replaceAll('/', '~1')}"`));
    if (unused.length === 0) return;
    for (const name of unused) delete schemas[name];
  }
}

export function downgradeTo30(contract: Json): Json {
  const converted = new Converter(structuredClone(contract), { allOfTransform: false }).convert() as Json;
  rewriteNullableUnions(converted, converted);
  dropUnusedSchemas(converted);
  const info = converted['info'] as Json;
  delete info['summary'];
  const license = info['license'] as Json | undefined;
  const identifier = ((contract['info'] as Json)['license'] as Json | undefined)?.['identifier'];
  if (license && !license['url'] && typeof identifier === 'string') {
    delete license['identifier'];
    license['url'] = `https://spdx.org/licenses/${identifier}.html`;
  }
  return converted;
}
