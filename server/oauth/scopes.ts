// The scopes of /mcp's OAuth tokens, read from the contract: the `mcpOAuth` security scheme's authorization code
// flow lists them, each named `<resource>:<level>` of ApiKeyAccess (the access a grant's API key gets).
import type { components } from '../../generated/openapi.d.ts';
import type { ContractDocument } from '../contract.ts';

type ApiKeyAccess = components['schemas']['ApiKeyAccess'];

export interface OAuthScopeInfo {
  scope: string;
  description: string;
  /** The ApiKeyAccess entry the scope grants. */
  resource: keyof ApiKeyAccess;
  level: string;
}

export const OAUTH_SCHEME = 'mcpOAuth';

/** Every scope the contract declares, in its order. Throws when the contract's scheme is not as described. */
export function oauthScopes(contract: ContractDocument): OAuthScopeInfo[] {
  const scheme = contract.components?.securitySchemes?.[OAUTH_SCHEME] as
    | { flows?: { authorizationCode?: { scopes?: Record<string, string> } } }
    | undefined;
  const scopes = scheme?.flows?.authorizationCode?.scopes;
  if (!scopes) throw new Error(`the contract has no ${OAUTH_SCHEME} authorization code flow with scopes`);
  return Object.entries(scopes).map(([scope, description]) => {
    const [resource, level] = scope.split(':') as [keyof ApiKeyAccess, string];
    return { scope, description, resource, level };
  });
}

/** The scope an operation's `x-openrush-access` ({ resource, level }) needs, or undefined when none is declared. */
export function scopeFor(access: { resource: string; level: string } | undefined): string | undefined {
  return access ? `${access.resource}:${access.level}` : undefined;
}
