import type { Clock } from '../../server/clock.ts';

/** A clock that tests move by hand. */
export class TestClock implements Clock {
  constructor(private millis = Date.now()) {}
  now(): Date {
    return new Date(this.millis);
  }
  advance(ms: number): void {
    this.millis += ms;
  }
}
