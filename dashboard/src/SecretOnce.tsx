// A raw API key, shown the one time the API returns it (the create or rotate answer). It lives only in this
// component's state: gone when the person dismisses it or leaves the page, never stored by the page.
import { useEffect, useRef } from 'react';
import { CopyButton } from './CopyButton.tsx';

/** The seed's words: the key is returned only once, and OpenRush keeps no retrievable copy. */
export const KEY_SHOWN_ONCE =
  'The full key is returned only once when it is created. OpenRush stores a hash, fingerprint, and display prefix, not a retrievable raw key: copy it now and keep it somewhere safe.';

export function SecretOnce({ title, secret, onDone }: { title: string; secret: string; onDone: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  // Focus moves to the new key, so keyboard and screen-reader users land on it.
  useEffect(() => heading.current?.focus(), []);
  return (
    <section className="secret" aria-labelledby="secret-title">
      <h3 id="secret-title" tabIndex={-1} ref={heading}>
        {title}
      </h3>
      <p className="warning" role="note">
        {KEY_SHOWN_ONCE}
      </p>
      <div className="secret-value">
        <code data-testid="raw-key" aria-label="API key">{secret}</code>
        <CopyButton text={secret} label="Copy key" />
      </div>
      <button type="button" onClick={onDone}>
        I have copied it
      </button>
    </section>
  );
}
