import { InvalidOptionError } from '../errors.js';
import type { AttemptStart } from '../hooks.js';
import { describe } from '../options.js';
import type { AttemptAbort } from './attempt-abort.js';

/** The longest delay setTimeout takes; a longer one fires at once, so the timer is re-armed in steps. */
const MAX_DELAY_MS = 2_147_483_647;

/**
 * The `attempt` argument of `jobStart`: times at which plugins want the attempt stopped (a deadline
 * over all attempts). Made only when a `jobStart` tap wants the job; the earliest time wins, and
 * one timer is armed for it once the taps have run (`arm`), cleared when the attempt ends.
 */
export class AttemptBound implements AttemptStart {
  private at = Infinity;
  private reason: (() => Error) | null = null;

  constructor(private readonly abort: AttemptAbort) {}

  abortAt(at: Date, reason: () => Error): void {
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
      throw new InvalidOptionError(`attempt.abortAt(at, reason): at must be a valid Date, got ${describe(at)}.`);
    }
    if (typeof reason !== 'function') {
      throw new InvalidOptionError(`attempt.abortAt(at, reason): reason must be a function returning the error, got ${describe(reason)}.`);
    }
    if (at.getTime() < this.at) {
      this.at = at.getTime();
      this.reason = reason;
    }
  }

  /** Arms the timer for the earliest time given (if any); returns what clears it. */
  arm(): (() => void) | null {
    const reason = this.reason;
    if (reason === null) return null;
    let timer: NodeJS.Timeout | undefined;
    const wait = () => {
      const left = this.at - Date.now();
      if (left <= 0) {
        this.abort.abort(stopReason(reason));
        return;
      }
      timer = setTimeout(wait, Math.min(left, MAX_DELAY_MS));
    };
    wait();
    return () => clearTimeout(timer);
  }
}

/** The tap's error, or a plain Error saying what it gave instead (an abort always has an Error reason). */
function stopReason(reason: () => Error): Error {
  try {
    const error = reason();
    return error instanceof Error ? error : new Error(`attempt.abortAt: the reason function returned ${describe(error)}, not an Error.`);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
