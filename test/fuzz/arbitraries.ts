// fast-check arbitraries built from the contract's schemas: valid values (types, enums, bounds, lengths, patterns,
// formats, required and optional properties, min/maxProperties, nullables, oneOf, $refs), and for every rule of a
// schema a mutation that breaks that rule once while the rest of the value stays valid.
import fc from 'fast-check';
import { deref, formatHolds, type Schema } from './contract.ts';

/** Values that exist on the server (ids of real keys, of real usage records), by the `pattern` of their schema. */
export type Pools = Map<string, string[]>;

const JSON_TYPES = ['string', 'integer', 'number', 'boolean', 'null', 'object', 'array'] as const;
type JsonType = (typeof JSON_TYPES)[number];

export function jsonTypeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

/** The JSON types a schema admits (through enum, const, oneOf/anyOf as well as `type`). */
export function typesOf(raw: Schema): Set<JsonType> {
  const schema = deref(raw);
  const types = new Set<JsonType>();
  if (schema.type !== undefined) {
    for (const type of [schema.type].flat()) types.add(type as JsonType);
  } else if (schema.enum) {
    for (const value of schema.enum) types.add(jsonTypeOf(value));
  } else if ('const' in schema) {
    types.add(jsonTypeOf(schema.const));
  } else if (schema.oneOf || schema.anyOf) {
    for (const branch of schema.oneOf ?? schema.anyOf ?? []) for (const type of typesOf(branch)) types.add(type);
  } else if (schema.properties) {
    types.add('object');
  } else {
    for (const type of JSON_TYPES) types.add(type);
  }
  if (types.has('number')) types.add('integer');
  return types;
}

/** Code points, as JSON Schema counts a string's length. */
export function lengthOf(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

function patternOf(schema: Schema): RegExp | undefined {
  return schema.pattern === undefined ? undefined : new RegExp(schema.pattern, 'u');
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 3339 date-times, in every form the contract's validator (ajv-formats, 'full') accepts: T/t/space separator,
// Z/z or an offset (±hh:mm, ±hhmm, ±hh), fractions of any length, leap seconds (23:59:60 UTC in any offset), years up
// to 9999. In the future, so that an expiry is accepted (a past one is a documented 400).

const pad = (value: number, width = 2) => String(value).padStart(width, '0');
const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

const offsetArb = fc.oneof(
  fc.constantFrom('Z', 'z', '+00:00', '-00:00', '+23:59', '-23:59'),
  fc
    .tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.constantFrom(':', '', 'hours'))
    .map(([sign, hours, minutes, style]) => (style === 'hours' ? `${sign}${pad(hours)}` : `${sign}${pad(hours)}${style}${pad(minutes)}`)),
);

function dateTimeArb(): fc.Arbitrary<string> {
  const thisYear = new Date().getUTCFullYear();
  const year = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: thisYear + 1, max: thisYear + 30 }) },
    { weight: 2, arbitrary: fc.integer({ min: thisYear + 30, max: 9999 }) },
    { weight: 1, arbitrary: fc.constant(9999) },
  );
  const date = fc
    .tuple(year, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 }))
    .map(([y, m, d]) => `${pad(y, 4)}-${pad(m)}-${pad(Math.min(d, daysIn(y, m)))}`);
  const fraction = fc.option(fc.stringMatching(/^\.[0-9]{1,9}$/), { nil: '' });
  const separator = fc.constantFrom('T', 'T', 'T', 't', ' ');
  const ordinary = fc
    .tuple(date, separator, fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }), fraction, offsetArb)
    .map(([d, sep, h, m, s, f, z]) => `${d}${sep}${pad(h)}:${pad(m)}:${pad(s)}${f}${z}`);
  // A leap second: 23:59:60 UTC, written in some offset.
  const leap = fc
    .tuple(date, fc.constantFrom(-1, 1), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fraction)
    .map(([d, sign, hours, minutes, f]) => {
      const local = (((23 * 60 + 59 + sign * (hours * 60 + minutes)) % 1440) + 1440) % 1440;
      const zone = hours === 0 && minutes === 0 ? 'Z' : `${sign < 0 ? '-' : '+'}${pad(hours)}:${pad(minutes)}`;
      return `${d}T${pad(Math.floor(local / 60))}:${pad(local % 60)}:60${f}${zone}`;
    });
  return fc
    .oneof({ weight: 6, arbitrary: ordinary }, { weight: 1, arbitrary: leap })
    .filter((value) => formatHolds('date-time', value));
}

/** Strings the date-time format refuses: impossible dates and times, missing parts, other notations. */
export const BROKEN_DATE_TIMES = [
  '2030-02-30T00:00:00Z',
  '2031-02-29T12:00:00Z',
  '2030-13-01T00:00:00Z',
  '2030-00-10T00:00:00Z',
  '2030-06-31T00:00:00Z',
  '2030-06-30T24:00:00Z',
  '2030-06-30T12:60:00Z',
  '2030-06-30T12:00:60Z',
  '2030-06-30T23:59:61Z',
  '2030-06-30T12:00:00',
  '2030-06-30T12:00:00+24:00',
  '2030-06-30T12:00:00+01:60',
  '2030-06-30',
  '12:00:00Z',
  '+012030-06-30T12:00:00Z',
  '2030-6-30T12:00:00Z',
  '30-06-2030T12:00:00Z',
  '2030-06-30T12:00Z',
  '2030-06-30TT12:00:00Z',
  'Sun, 30 Jun 2030 12:00:00 GMT',
  '1893456000',
  'tomorrow',
  'now',
  '',
  '2030-06-30T12:00:00.Z',
  '２０３０-06-30T12:00:00Z',
].filter((value) => !formatHolds('date-time', value));

function formatArb(format: string): fc.Arbitrary<string> {
  switch (format) {
    case 'date-time':
      return dateTimeArb();
    case 'date':
      return dateTimeArb().map((value) => value.slice(0, 10));
    case 'uri':
      return fc.webUrl();
    case 'email':
      return fc.emailAddress();
    case 'uuid':
      return fc.uuid();
    default:
      throw new Error(`The fuzz suite cannot generate format "${format}" yet: teach test/fuzz/arbitraries.ts`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Valid values.

export interface GenOptions {
  pools: Pools;
  /** Strings on the wire (headers): printable ASCII only, as an HTTP client can send them. */
  ascii?: boolean;
}

function stringArb(schema: Schema, options: GenOptions): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Math.max(min, 64);
  const pattern = patternOf(schema);
  const fits = (value: string) => {
    // The contract refuses U+0000 in any text (its Limits section), beyond what JSON Schema can say.
    if (value.includes('\u0000')) return false;
    const length = lengthOf(value);
    return length >= min && length <= max && (pattern === undefined || pattern.test(value));
  };
  let arb: fc.Arbitrary<string>;
  if (schema.format !== undefined) {
    arb = formatArb(schema.format);
  } else if (schema.pattern !== undefined && schema.pattern.startsWith('^')) {
    arb = fc.stringMatching(new RegExp(schema.pattern));
  } else {
    const unit = options.ascii ? fc.constantFrom(...Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i))) : 'binary';
    const short = fc.string({ unit, minLength: min, maxLength: Math.min(max, Math.max(min, 24)) });
    const full = fc.string({ unit, minLength: max, maxLength: max });
    arb = fc.oneof({ weight: 4, arbitrary: short }, { weight: 1, arbitrary: full });
  }
  arb = arb.filter(fits);
  const pool = schema.pattern === undefined ? undefined : options.pools.get(schema.pattern);
  if (pool && pool.length > 0) {
    // Mostly values that exist (a real key's id), sometimes any value of the right shape (a 404, documented).
    const real = fc.nat().map((index) => pool[index % pool.length]!);
    return fc.oneof({ weight: 3, arbitrary: real }, { weight: 1, arbitrary: arb });
  }
  return arb;
}

function integerArb(schema: Schema): fc.Arbitrary<number> {
  let min = schema.minimum ?? Number.MIN_SAFE_INTEGER;
  let max = schema.maximum ?? Number.MAX_SAFE_INTEGER;
  if (schema.exclusiveMinimum !== undefined) min = Math.max(min, Math.floor(schema.exclusiveMinimum) + 1);
  if (schema.exclusiveMaximum !== undefined) max = Math.min(max, Math.ceil(schema.exclusiveMaximum) - 1);
  const edges = [min, max].filter((value) => Math.abs(value) < Number.MAX_SAFE_INTEGER);
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: Math.max(min, -1000), max: Math.min(max, Math.max(Math.max(min, -1000), 1000)) }) },
    { weight: 2, arbitrary: fc.integer({ min, max }) },
    { weight: 1, arbitrary: edges.length ? fc.constantFrom(...edges) : fc.integer({ min, max }) },
  );
}

function numberArb(schema: Schema): fc.Arbitrary<number> {
  return fc.double({
    min: schema.minimum ?? schema.exclusiveMinimum ?? -1e12,
    max: schema.maximum ?? schema.exclusiveMaximum ?? 1e12,
    minExcluded: schema.exclusiveMinimum !== undefined,
    maxExcluded: schema.exclusiveMaximum !== undefined,
    noNaN: true,
    noDefaultInfinity: true,
  });
}

/** An object of the schema; `forced` is a property that must be present, drawn from its own arbitrary. */
function objectArb(schema: Schema, options: GenOptions, forced?: { name: string; arb: fc.Arbitrary<unknown> }): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  if (forced) required.add(forced.name);
  const optional = Object.keys(properties).filter((name) => !required.has(name));
  const low = Math.max(0, (schema.minProperties ?? 0) - required.size);
  const high = Math.min(optional.length, (schema.maxProperties ?? Number.POSITIVE_INFINITY) - required.size);
  if (high < low) throw new Error(`Cannot satisfy min/maxProperties of ${JSON.stringify(schema).slice(0, 200)}`);
  return fc.subarray(optional, { minLength: low, maxLength: high }).chain((chosen) => {
    const record: Record<string, fc.Arbitrary<unknown>> = {};
    for (const name of [...required, ...chosen]) {
      record[name] = name === forced?.name ? forced.arb : valid(properties[name] ?? {}, options);
    }
    return fc.record(record);
  });
}

/** Any value the schema accepts. */
export function valid(raw: Schema, options: GenOptions): fc.Arbitrary<unknown> {
  const schema = deref(raw);
  if (schema.allOf) throw new Error('allOf is not supported by the fuzz suite (the contract avoids it)');
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if ('const' in schema) return fc.constant(schema.const);
  const branches = schema.oneOf ?? schema.anyOf;
  if (branches) return fc.oneof(...branches.map((branch) => valid(branch, options)));
  const types = schema.type === undefined ? (schema.properties ? ['object'] : []) : [schema.type].flat();
  if (types.length === 0) return fc.jsonValue({ maxDepth: 2 });
  return fc.oneof(
    ...types.map((type): fc.Arbitrary<unknown> => {
      switch (type) {
        case 'string':
          return stringArb(schema, options);
        case 'integer':
          return integerArb(schema);
        case 'number':
          return numberArb(schema);
        case 'boolean':
          return fc.boolean();
        case 'null':
          return fc.constant(null);
        case 'array':
          return fc
            .array(valid(schema.items ?? {}, options), {
              minLength: schema.minItems ?? 0,
              maxLength: Math.min(schema.maxItems ?? 4, Math.max(schema.minItems ?? 0, 4)),
            })
            .map((items) => distinct(schema, items))
            .filter((items) => items.length >= (schema.minItems ?? 0));
        case 'object':
          return objectArb(schema, options);
        default:
          throw new Error(`Unknown type ${type}`);
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Sites and mutations: a site is a path into a value (through properties, oneOf branches and array items); a
// mutation replaces the valid value at its site by one that breaks exactly one rule of the site's schema.

export type Step = { property: string } | { branch: number } | { item: true };

export interface Mutation {
  /** What is broken, e.g. `/constraints/budget/amount: maximum`. */
  rule: string;
  steps: Step[];
  /** The broken value at the site, from the site's valid value. */
  breaks: (validValue: fc.Arbitrary<unknown>) => fc.Arbitrary<unknown>;
}

/** A valid value of `raw`, except at the site `steps`, where `leaf` decides. */
export function validExceptAt(raw: Schema, steps: Step[], leaf: (validValue: fc.Arbitrary<unknown>) => fc.Arbitrary<unknown>, options: GenOptions): fc.Arbitrary<unknown> {
  if (steps.length === 0) return leaf(valid(raw, options));
  const schema = deref(raw);
  const [step, ...rest] = steps as [Step, ...Step[]];
  if ('branch' in step) {
    const branch = (schema.oneOf ?? schema.anyOf ?? [])[step.branch]!;
    return validExceptAt(branch, rest, leaf, options);
  }
  if ('property' in step) {
    const inner = validExceptAt(schema.properties?.[step.property] ?? {}, rest, leaf, options);
    return objectArb(schema, options, { name: step.property, arb: inner });
  }
  const item = validExceptAt(schema.items ?? {}, rest, leaf, options);
  return fc.tuple(item, fc.array(valid(schema.items ?? {}, options), { maxLength: Math.max(0, (schema.maxItems ?? 3) - 1) })).map(([first, others]) => distinct(schema, [first, ...others]));
}

/** The items, without repeats where the schema says `uniqueItems` (compared as JSON, as the validator does). */
function distinct(schema: Schema, items: unknown[]): unknown[] {
  if (schema.uniqueItems !== true) return items;
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(JSON.stringify(item)) && seen.add(JSON.stringify(item)));
}

export function pointerOf(steps: Step[]): string {
  return steps.map((step) => ('property' in step ? `/${step.property}` : 'item' in step ? '/0' : '')).join('') || '/';
}

/** Property names a strict object must refuse: plain, empty, and the ones JavaScript treats specially. */
const unknownName = (known: string[]) =>
  fc
    .oneof(fc.constantFrom('fuzz_unknown', '', '__proto__', 'constructor', 'prototype', 'toString', ' name', 'NAME'), fc.string({ minLength: 1, maxLength: 12 }))
    .filter((name) => !known.includes(name));

/** Strings that break many patterns: blanks, controls, separators, other scripts. */
const ODD_STRINGS = ['', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\u0000', '!', '/', '..', '%', 'a b', '\u00e9', '😀', 'x'.repeat(300)];

const WRONG_TYPE_VALUES: unknown[] = ['7', 7, 7.5, true, null, {}, [], [7], { value: 7 }];

/** Every rule of the schema at every site, each broken once. */
export function mutations(raw: Schema, steps: Step[] = [], seen = new Set<Schema>()): Mutation[] {
  const schema = deref(raw);
  const here = pointerOf(steps);
  const found: Mutation[] = [];
  const add = (rule: string, breaks: Mutation['breaks']) => found.push({ rule: `${here}: ${rule}`, steps, breaks });
  const types = typesOf(schema);

  const wrongTypes = WRONG_TYPE_VALUES.filter((value) => !types.has(jsonTypeOf(value)));
  if (wrongTypes.length) add(`type (${[...types].join('|')})`, () => fc.constantFrom(...wrongTypes));

  if (schema.enum) {
    const outside: unknown[] = [];
    for (const type of types) {
      if (type === 'integer' || type === 'number') {
        const numbers = schema.enum.filter((value): value is number => typeof value === 'number');
        outside.push(Math.max(...numbers) + 1, Math.min(...numbers) - 1);
      }
      if (type === 'string') {
        const strings = schema.enum.filter((value): value is string => typeof value === 'string');
        outside.push('fuzz_not_listed', ...strings.map((value) => value.toUpperCase()), ...strings.map((value) => ` ${value}`));
      }
    }
    const values = outside.filter((value) => !schema.enum!.includes(value));
    if (values.length) add('enum', () => fc.constantFrom(...values));
  }
  if ('const' in schema) add('const', () => fc.constantFrom(...['fuzz', 0, false].filter((value) => value !== schema.const && types.has(jsonTypeOf(value)))));

  if (types.has('integer') || types.has('number')) {
    const integersOnly = !types.has('number');
    // Just past the bound, further out, and beyond what a double holds exactly.
    const below = (bound: number) =>
      bound - 1 > Number.MIN_SAFE_INTEGER ? fc.oneof(fc.constant(bound - 1), fc.integer({ min: Math.max(Number.MIN_SAFE_INTEGER, Math.min(-1e9, bound - 1)), max: bound - 1 })) : fc.constantFrom(bound - 1, -1e21, -(2 ** 63));
    const above = (bound: number) =>
      bound + 1 < Number.MAX_SAFE_INTEGER ? fc.oneof(fc.constant(bound + 1), fc.integer({ min: bound + 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(1e21, 2 ** 63)) : fc.constantFrom(bound + 1, 1e21, 2 ** 63);
    if (schema.minimum !== undefined) add(`minimum ${schema.minimum}`, () => below(schema.minimum!));
    if (schema.maximum !== undefined) add(`maximum ${schema.maximum}`, () => above(schema.maximum!));
    if (integersOnly) {
      // Fractions a double holds exactly (next to a bound of ±2^53 there are none).
      const nearMax = schema.maximum !== undefined && Math.abs(schema.maximum) < 2 ** 52 ? [schema.maximum - 0.5] : [];
      add('integer (a fraction)', () => fc.constantFrom(0.5, 1.5, -0.5, 1e-7, ...nearMax));
    }
  }

  if (types.has('string')) {
    const min = schema.minLength ?? 0;
    const pattern = patternOf(schema);
    if (min > 0) {
      add(`minLength ${min}`, (validValue) =>
        fc.oneof(
          fc.constant('a'.repeat(min - 1)),
          validValue.filter((value): value is string => typeof value === 'string').map((value) => [...value].slice(0, min - 1).join('')),
        ),
      );
    }
    if (schema.maxLength !== undefined) {
      const max = schema.maxLength;
      add(`maxLength ${max}`, (validValue) =>
        fc.oneof(
          fc.constant('a'.repeat(max + 1)),
          fc.constant('😀'.repeat(max + 1)),
          validValue.filter((value): value is string => typeof value === 'string').map((value) => value + 'z'.repeat(max + 1 - lengthOf(value))),
        ),
      );
    }
    if (pattern) {
      // Strings that break the pattern within the length bounds: odd ones, and a sample of random ones (seeded);
      // plus valid values with one character changed. No filter on the arbitrary: a pattern that random strings
      // rarely break (\S) would make fast-check spin.
      const min = schema.minLength ?? 0;
      const max = schema.maxLength ?? Number.POSITIVE_INFINITY;
      const breaking = (value: string) => !pattern.test(value) && lengthOf(value) >= min && lengthOf(value) <= max;
      const sampled = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), { seed: 7, numRuns: 300 });
      const candidates = [...new Set([...ODD_STRINGS, ...sampled])].filter(breaking);
      if (candidates.length) {
        add(`pattern ${schema.pattern}`, (validValue) =>
          fc.oneof(
            fc.constantFrom(...candidates),
            fc
              .tuple(validValue, fc.nat(), fc.constantFrom(' ', '!', 'a', 'I', 'O', '\u00e9', '\u0000', '/', '%'), fc.nat())
              .map(([value, index, char, fallback]) => {
                if (typeof value !== 'string' || value.length === 0) return candidates[fallback % candidates.length]!;
                const chars = [...value];
                chars[index % chars.length] = char;
                const changed = chars.join('');
                return breaking(changed) ? changed : candidates[fallback % candidates.length]!;
              }),
          ),
        );
      }
    }
    // Each broken date-time is a rule of its own, so that every one of them is sent in every run.
    if (schema.format === 'date-time') for (const broken of BROKEN_DATE_TIMES) add(`format date-time: ${JSON.stringify(broken)}`, () => fc.constant(broken));
  }

  if (types.has('object') && schema.properties !== undefined) {
    const names = Object.keys(schema.properties);
    for (const name of schema.required ?? []) {
      add(`required ${name}`, (validValue) =>
        validValue.map((value) => {
          if (value === null || typeof value !== 'object') return value;
          const { [name]: _, ...rest } = value as Record<string, unknown>;
          return rest;
        }),
      );
    }
    if (schema.additionalProperties === false) {
      add('additionalProperties false', (validValue) =>
        fc.tuple(validValue, unknownName(names), fc.jsonValue({ maxDepth: 1 })).map(([value, name, extra]) => {
          if (value === null || typeof value !== 'object') return value;
          // An own property even for "__proto__" (an assignment would set the prototype instead).
          const copy = { ...value };
          Object.defineProperty(copy, name, { value: extra, enumerable: true, writable: true, configurable: true });
          return copy;
        }),
      );
    }
    if ((schema.minProperties ?? 0) > (schema.required?.length ?? 0)) add(`minProperties ${schema.minProperties}`, () => fc.constant({}));
    if (schema.maxProperties !== undefined && names.length > schema.maxProperties) {
      const options: GenOptions = { pools: new Map() };
      add(`maxProperties ${schema.maxProperties}`, () =>
        fc.record(Object.fromEntries(names.map((name) => [name, valid(schema.properties![name]!, options)]))),
      );
    }
    if (!seen.has(schema)) {
      const inner = new Set(seen).add(schema);
      for (const name of names) found.push(...mutations(schema.properties[name]!, [...steps, { property: name }], inner));
    }
  }

  if (types.has('array') && schema.items !== undefined) {
    if (schema.minItems) add(`minItems ${schema.minItems}`, () => fc.constant([]));
    if (schema.uniqueItems === true && (schema.maxItems ?? 2) >= 2) {
      add('uniqueItems', () => valid(schema.items!, { pools: new Map() }).map((item) => [item, item]));
    }
    if (schema.maxItems !== undefined) {
      const options: GenOptions = { pools: new Map() };
      add(`maxItems ${schema.maxItems}`, () => fc.array(valid(schema.items!, options), { minLength: schema.maxItems! + 1, maxLength: schema.maxItems! + 1 }));
    }
    found.push(...mutations(schema.items, [...steps, { item: true }], seen));
  }

  (schema.oneOf ?? schema.anyOf ?? []).forEach((branch, index) => {
    // The branch's own rules, except "wrong type" (a value of another branch's type is valid).
    for (const mutation of mutations(branch, [...steps, { branch: index }], seen)) {
      if (!/: type \(/.test(mutation.rule) || mutation.steps.length > steps.length + 1) found.push(mutation);
    }
  });
  return found;
}

/** Every site of a schema where a string may stand (through properties, oneOf branches and array items). */
export function stringSites(raw: Schema, steps: Step[] = [], depth = 0): Step[][] {
  const schema = deref(raw);
  if (depth > 12) return [];
  const found: Step[][] = [];
  if (typesOf(schema).has('string') && (schema.type !== undefined || schema.enum !== undefined)) found.push(steps);
  for (const [name, inner] of Object.entries(schema.properties ?? {})) found.push(...stringSites(inner, [...steps, { property: name }], depth + 1));
  if (schema.items) found.push(...stringSites(schema.items, [...steps, { item: true }], depth + 1));
  (schema.oneOf ?? schema.anyOf ?? []).forEach((branch, index) => found.push(...stringSites(branch, [...steps, { branch: index }], depth + 1)));
  return found;
}

/**
 * Strings an attacker or a careless client sends: ill-formed Unicode (lone surrogates), NUL and other controls,
 * invisible and direction-changing characters, astral and composed characters, very long ones, path traversal,
 * percent-encoding tricks, SQL, template and format strings, and text shaped like a secret.
 */
export function hostileStrings(keyShaped: string[]): fc.Arbitrary<string> {
  const fixed = [
    '\ud800', 'x\ud800y', '\udfff', 'a\udc00\ud800b', '\ud83d',
    '\u0000', 'a\u0000b', '\u0001\u001f\u007f', '\r\n', 'a\r\nSet-Cookie: x=1', '\t',
    '\ufeff', '\ufffe', '\uffff', '\u{10ffff}', '\ufffd', '\u200b', '\u200d', '\u202e', '\u2066', 'e\u0301', '👩‍👩‍👧‍👦', '𝕏', '🏳️‍🌈',
    'İ', 'ß', 'ﬁ', 'Ⅻ', '١٢٣', '５', '\u00a0', '\u3000', ' ',
    'a'.repeat(121), 'a'.repeat(4096), '😀'.repeat(120), '😀'.repeat(2049),
    '../../../../etc/passwd', '..\\..\\windows\\win.ini', '%2e%2e%2f', '..%2F..%2F', '/..;/', '%00', '%', '%zz', '%uD800', '%C0%AE',
    "' OR 1=1 --", '"; DROP TABLE accounts; --', '1; SELECT pg_sleep(0)', '${7*7}', '{{7*7}}', '%s%s%n', '<script>alert(1)</script>',
    '__proto__', 'constructor', 'null', 'undefined', 'NaN', '-0', '1e309', '{"a":1}', '\\', '"',
    'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', ...keyShaped,
  ];
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...fixed) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 4 }), fc.constantFrom(...fixed), fc.string({ maxLength: 4 })).map((parts) => parts.join('')) },
  );
}

/** How deeply nested JSON is built: arrays, objects, the two in turn, or arrays under a member of an object. */
export type NestingShape = 'arrays' | 'objects' | 'mixed' | 'member';

/**
 * JSON text nested `levels` deep (the outermost object or array is level 1), written as text: JSON.stringify of
 * a value this deep would overflow the test's own stack.
 */
export function nestedJsonText(shape: NestingShape, levels: number): string {
  switch (shape) {
    case 'arrays':
      return '['.repeat(levels) + ']'.repeat(levels);
    case 'objects':
      return '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
    case 'member':
      return `{"domain":"example.com","name":"x","nested":${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}}`;
    case 'mixed': {
      const open: string[] = [];
      for (let level = 1; level < levels; level++) open.push(level % 2 ? '{"a":' : '[');
      return open.join('') + (levels % 2 ? '{}' : '[]') + open.map((part) => (part === '[' ? ']' : '}')).reverse().join('');
    }
  }
}

/** The most levels of `shape` that fit in `bytes`. */
export function mostLevelsIn(shape: NestingShape, bytes: number): number {
  const perLevel = nestedJsonText(shape, 1001).length - nestedJsonText(shape, 1).length;
  return Math.floor((bytes - nestedJsonText(shape, 1).length) / (perLevel / 1000));
}

/**
 * Deeply nested bodies: every shape just under, at and just over `limit` levels, at the most a body of
 * `maxBytes` holds, and anywhere in between.
 */
export function nestedBodies(limit: number, maxBytes: number): fc.Arbitrary<{ shape: NestingShape; levels: number; text: string }> {
  const shapes: NestingShape[] = ['arrays', 'objects', 'mixed', 'member'];
  return fc
    .constantFrom(...shapes)
    .chain((shape) => {
      const most = mostLevelsIn(shape, maxBytes);
      return fc.tuple(
        fc.constant(shape),
        fc.oneof(fc.constantFrom(limit - 1, limit, limit + 1, limit + 2, most), fc.integer({ min: 1, max: most })),
      );
    })
    .map(([shape, levels]) => ({ shape, levels, text: nestedJsonText(shape, levels) }));
}
