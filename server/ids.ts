import { randomFillSync } from 'node:crypto';
import type { Clock } from './clock.ts';

export type IdPrefix = 'acct' | 'cred' | 'log' | 'led' | 'req' | 'orc' | 'evt';

/** Makes prefixed ULIDs (`cred_01KW…`): sortable by creation time, so newest-first is an index order. */
export type IdGenerator = (prefix: IdPrefix) => string;

// Crockford's base32, as ULID spells it.
const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_LENGTH = 10;
const RANDOM_LENGTH = 16;
const POOL_BYTES = 4096;

/**
 * Monotonic ULIDs (48-bit millisecond time + 80 random bits, 26 characters), made cheaply: the random part is
 * drawn from a buffer refilled 4 KiB at a time (one getRandomValues per 256 ids, not 16 per id), and within one
 * millisecond — or when the clock steps back — the previous id's random part is incremented, as the ulid
 * package's monotonicFactory does, so ids from one generator always sort in the order they were made.
 */
export function createIdGenerator(clock: Clock): IdGenerator {
  const pool = Buffer.allocUnsafe(POOL_BYTES);
  let poolOffset = POOL_BYTES;
  let lastTime = -1;
  let timeText = '';
  const digits = new Uint8Array(RANDOM_LENGTH);

  function freshRandom(): void {
    if (poolOffset + RANDOM_LENGTH > POOL_BYTES) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    // 256 is a multiple of 32, so the low five bits of a uniform byte are a uniform base32 digit.
    for (let i = 0; i < RANDOM_LENGTH; i++) digits[i] = pool[poolOffset + i]! & 31;
    poolOffset += RANDOM_LENGTH;
  }

  function increment(): void {
    for (let i = RANDOM_LENGTH - 1; i >= 0; i--) {
      if (digits[i]! < 31) {
        digits[i]! += 1;
        return;
      }
      digits[i] = 0;
    }
    // 2^80 ids in one millisecond: cannot happen, but an id must never repeat.
    throw new Error('ULID random part overflowed within one millisecond');
  }

  return (prefix) => {
    const now = clock.now().getTime();
    if (now > lastTime) {
      lastTime = now;
      let time = now;
      let text = '';
      for (let i = 0; i < TIME_LENGTH; i++) {
        text = ENCODING[time % 32]! + text;
        time = Math.floor(time / 32);
      }
      timeText = text;
      freshRandom();
    } else {
      increment();
    }
    let random = '';
    for (let i = 0; i < RANDOM_LENGTH; i++) random += ENCODING[digits[i]!];
    return `${prefix}_${timeText}${random}`;
  };
}
