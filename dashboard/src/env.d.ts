/// <reference types="vite/client" />

declare module 'virtual:openrush-enums' {
  interface EnumValue {
    value: number;
    /** The contract's x-enum-varnames entry, e.g. READ_ONLY. */
    name: string;
    /** The contract's x-enum-descriptions entry. */
    description: string;
  }
  const enums: Record<'ApiKeyStatus' | 'PermissionMode' | 'BudgetPeriod', EnumValue[]>;
  export default enums;
}
