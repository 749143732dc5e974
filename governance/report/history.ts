/**
 * The rollout history as stretches of time per version and mode, for the report's timeline (charts.ts rolloutsChart)
 * and its drift markers. A pure fold of the model's control-log records in log order, following the registry's rules
 * for routing (governance/registry.ts): a live rollout or a promotion replaces the live version, a canary replaces any
 * canary, a shadow adds one, a rollback takes the version out (restoring the previous live one when it was live).
 */
import type { ModelChange, RolloutMode } from '../types.ts';
import type { RolloutSpan } from './types.ts';

interface Open {
  readonly version: string;
  readonly from: number;
  readonly detail: string;
}

/**
 * @example
 * rolloutSpans(registry.history('deterioration'));
 * // [{ version: '1.0.0', mode: 'live', from: 1700000000000, to: null, detail: '' }, ...]
 */
export function rolloutSpans(history: readonly ModelChange[]): RolloutSpan[] {
  const spans: RolloutSpan[] = [];
  // An object, not two lets: the closures below change it, which narrowing of a let would not see.
  const state: { live: Open | null; canary: Open | null } = { live: null, canary: null };
  const shadows = new Map<string, Open>();
  const close = (mode: RolloutMode, open: Open | null, at: number) => {
    if (open !== null) spans.push({ version: open.version, mode, from: open.from, to: at, detail: open.detail });
  };
  // A version moving to another mode leaves the one it ran in.
  const leave = (version: string, at: number) => {
    if (state.canary?.version === version) {
      close('canary', state.canary, at);
      state.canary = null;
    }
    const shadow = shadows.get(version);
    if (shadow !== undefined) {
      close('shadow', shadow, at);
      shadows.delete(version);
    }
  };
  const goLive = (version: string, at: number) => {
    if (state.live?.version === version) return;
    close('live', state.live, at);
    leave(version, at);
    state.live = { version, from: at, detail: '' };
  };
  for (const change of history) {
    const at = change.at;
    if (change.kind === 'rollout') {
      if (change.mode === 'live') goLive(change.version, at);
      else if (change.mode === 'canary') {
        close('canary', state.canary, at);
        state.canary = null;
        leave(change.version, at);
        state.canary = {
          version: change.version,
          from: at,
          detail: `${change.percent}% of ${change.cohort_expr || 'everyone'}`,
        };
      } else if (!shadows.has(change.version)) {
        shadows.set(change.version, { version: change.version, from: at, detail: '' });
      }
    } else if (change.kind === 'promoted') {
      goLive(change.version, at);
    } else if (change.kind === 'rollback') {
      if (change.from_mode === 'live' && state.live?.version === change.version) {
        close('live', state.live, at);
        state.live = null;
        if (change.restored !== null) goLive(change.restored, at);
      } else leave(change.version, at);
    }
  }
  const stillOpen: [RolloutMode, Open][] = [];
  if (state.live !== null) stillOpen.push(['live', state.live]);
  if (state.canary !== null) stillOpen.push(['canary', state.canary]);
  for (const shadow of shadows.values()) stillOpen.push(['shadow', shadow]);
  for (const [mode, open] of stillOpen)
    spans.push({ version: open.version, mode, from: open.from, to: null, detail: open.detail });
  return spans.sort((a, b) => a.from - b.from || a.version.localeCompare(b.version));
}

/** A one-line summary of one change, for the history table and the drift chart's markers. */
export function describeChange(change: ModelChange): string {
  switch (change.kind) {
    case 'added':
      return `added ${change.version} (artifact ${change.artifact_sha256.slice(0, 12)})`;
    case 'approved':
      return `approved ${change.version} as ${change.role}`;
    case 'rollout':
      return change.mode === 'canary'
        ? `canary ${change.version}: ${change.percent}% of ${change.cohort_expr || 'everyone'}`
        : `${change.mode} ${change.version}`;
    case 'rollback':
      return `rollback ${change.version} from ${change.from_mode}${change.restored ? `, ${change.restored} live again` : ''} (${change.trigger})`;
    case 'promoted':
      return `promoted ${change.version}${change.previous ? ` over ${change.previous}` : ''}: ${change.criteria.length} criteria held`;
  }
}
