// The pieces of a key's settings that more than one form asks for: the permission mode, the budget and the rate
// limit. API access's create form and the OAuth consent page (which makes a key too: the grant) use the same
// fields, with the same labels, bounds and help, and turn them into the contract's shapes the same way.
import type { components } from '@openrush/client';
import { enumOptions } from './format.ts';

type ApiKeyBudget = components['schemas']['ApiKeyBudget'];
type ApiKeyRateLimit = components['schemas']['ApiKeyRateLimit'];

/** What a person typed into the budget and rate-limit fields (strings, as inputs hold them; empty: none). */
export interface LimitsDraft {
  budgetPeriod: string;
  budgetAmount: string;
  rateLimit: string;
}

export const NO_LIMITS: LimitsDraft = { budgetPeriod: '', budgetAmount: '', rateLimit: '' };

export function budgetOf(draft: LimitsDraft): ApiKeyBudget | null {
  if (!draft.budgetPeriod || !draft.budgetAmount) return null;
  return { period: Number(draft.budgetPeriod) as ApiKeyBudget['period'], amount: Number(draft.budgetAmount) };
}

export function rateLimitOf(draft: LimitsDraft): ApiKeyRateLimit | null {
  return draft.rateLimit ? { requests_per_minute: Number(draft.rateLimit) } : null;
}

/** The permission mode select, with the contract's name and meaning of each mode (`modes`: the ones offered). */
export function PermissionField({
  id,
  value,
  onChange,
  modes,
  describe = (_mode, description) => description,
}: {
  id: string;
  value: number;
  onChange: (mode: number) => void;
  modes?: readonly number[];
  /** The help shown under the select for the chosen mode; the contract's description by default. */
  describe?: (mode: number, description: string) => string;
}) {
  const options = enumOptions('PermissionMode').filter((option) => !modes || modes.includes(option.value));
  const chosen = options.find((option) => option.value === value);
  return (
    <div className="field">
      <label htmlFor={id}>Permissions</label>
      <select id={id} value={value} onChange={(event) => onChange(Number(event.target.value))} aria-describedby={`${id}-help`}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      <p id={`${id}-help`} className="help">
        {chosen ? describe(chosen.value, chosen.description) : ''}
      </p>
    </div>
  );
}

/** Budget (credits per day, week or month) and rate limit (requests per minute); empty fields mean none. */
export function LimitsFields({ idPrefix, draft, onChange }: { idPrefix: string; draft: LimitsDraft; onChange: (draft: LimitsDraft) => void }) {
  const set = (field: keyof LimitsDraft, value: string) => onChange({ ...draft, [field]: value });
  return (
    <>
      <fieldset className="field budget">
        <legend>Budget (empty: none)</legend>
        <div className="field inline">
          <label htmlFor={`${idPrefix}-budget-amount`}>Budget in credits</label>
          <input
            id={`${idPrefix}-budget-amount`}
            type="number"
            min={1}
            max={1_000_000_000}
            inputMode="numeric"
            value={draft.budgetAmount}
            onChange={(event) => set('budgetAmount', event.target.value)}
          />
        </div>
        <div className="field inline">
          <label htmlFor={`${idPrefix}-budget-period`}>Budget period</label>
          <select id={`${idPrefix}-budget-period`} value={draft.budgetPeriod} onChange={(event) => set('budgetPeriod', event.target.value)} required={draft.budgetAmount !== ''}>
            <option value="">—</option>
            {enumOptions('BudgetPeriod').map((option) => (
              <option key={option.value} value={option.value}>
                {option.label}
              </option>
            ))}
          </select>
        </div>
      </fieldset>
      <div className="field">
        <label htmlFor={`${idPrefix}-rate`}>Rate limit, requests per minute (empty: none)</label>
        <input
          id={`${idPrefix}-rate`}
          type="number"
          min={1}
          max={100_000}
          inputMode="numeric"
          value={draft.rateLimit}
          onChange={(event) => set('rateLimit', event.target.value)}
        />
      </div>
    </>
  );
}
