// Light and dark: the system's choice by default (prefers-color-scheme, in styles.css), or the person's, kept in
// localStorage (a display preference, nothing secret).
export type Theme = 'system' | 'light' | 'dark';
const KEY = 'openrush-theme';

export function storedTheme(): Theme {
  try {
    const value = window.localStorage.getItem(KEY);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

export function applyTheme(theme: Theme): void {
  if (theme === 'system') delete document.documentElement.dataset['theme'];
  else document.documentElement.dataset['theme'] = theme;
  try {
    if (theme === 'system') window.localStorage.removeItem(KEY);
    else window.localStorage.setItem(KEY, theme);
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
}
