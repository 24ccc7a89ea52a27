/** The account's balance cannot cover a charge; nothing was written. */
export class InsufficientCreditsError extends Error {
  constructor(readonly balance: number, readonly required: number) {
    super(`balance ${balance} is below the ${required} credits required`);
    this.name = 'InsufficientCreditsError';
  }
}

/** Another request already stored a response under this idempotency key; nothing was written. */
export class IdempotencyConflictError extends Error {
  constructor() {
    super('idempotency key already used');
    this.name = 'IdempotencyConflictError';
  }
}

/** The key's budget for the current period cannot cover a charge; nothing was written. */
export class BudgetExceededError extends Error {
  constructor(readonly amount: number, readonly periodStart: string) {
    super(`key budget of ${amount} credits for the period from ${periodStart} is spent`);
    this.name = 'BudgetExceededError';
  }
}

/** A grant would take the balance past the largest one the contract allows; nothing was written. */
export class BalanceLimitError extends Error {
  constructor(readonly accountId: string, readonly balance: number, readonly amount: number, readonly maximum: number) {
    super(
      `granting ${amount} credits would take the balance of ${accountId} from ${balance} past ${maximum}, ` +
        'the largest balance the contract allows; nothing was granted',
    );
    this.name = 'BalanceLimitError';
  }
}
