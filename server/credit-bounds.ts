// The bounds of a credit balance, as the contract states them (`CreditBalance.balance`): read from the bundled
// contract, not repeated here, so a balance the store accepts is always one that GET /v1/me/credits can answer.
import { loadContract } from './contract.ts';

interface IntegerBounds {
  minimum: number;
  maximum: number;
}

let bounds: IntegerBounds | undefined;

export function balanceBounds(): IntegerBounds {
  if (!bounds) {
    const schema = (loadContract().components?.schemas?.CreditBalance as { properties?: Record<string, Partial<IntegerBounds>> } | undefined)
      ?.properties?.balance;
    const { minimum, maximum } = schema ?? {};
    if (typeof minimum !== 'number' || typeof maximum !== 'number') {
      throw new Error('the contract gives CreditBalance.balance no minimum and maximum');
    }
    bounds = { minimum, maximum };
  }
  return bounds;
}
