/**
 * Light and dark: follows the system (prefers-color-scheme) unless the user picks one; the choice is
 * kept in localStorage and applied as `data-theme` on <html> before the first render.
 */
export type ThemeChoice = 'auto' | 'light' | 'dark';

const KEY = 'telemark.theme';
const ORDER: readonly ThemeChoice[] = ['auto', 'light', 'dark'];

export function themeChoice(): ThemeChoice {
  try {
    const value = localStorage.getItem(KEY);
    return value === 'light' || value === 'dark' ? value : 'auto';
  } catch {
    return 'auto';
  }
}

export function applyTheme(choice: ThemeChoice = themeChoice()): void {
  const root = document.documentElement;
  if (choice === 'auto') delete root.dataset.theme;
  else root.dataset.theme = choice;
}

/** Auto → light → dark → auto. */
export function cycleTheme(): ThemeChoice {
  const next = ORDER[(ORDER.indexOf(themeChoice()) + 1) % ORDER.length] as ThemeChoice;
  try {
    if (next === 'auto') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, next);
  } catch {
    // Without storage the choice lasts for this page only.
  }
  applyTheme(next);
  return next;
}
