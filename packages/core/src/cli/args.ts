/**
 * The command line's arguments: `--flag value`, `--flag=value`, switches (`--json`), and
 * positionals, checked against what each command accepts. Anything else is a UsageError, which
 * the entry point answers with the command's usage and exit code 2.
 */

/** A mistake in the arguments; `command` names the usage to print. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string | null = null,
  ) {
    super(message);
  }
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: ReadonlyMap<string, string>;
  readonly switches: ReadonlySet<string>;
}

export interface ArgSpec {
  /** Flags that take a value (without `--`). */
  readonly flags: readonly string[];
  /** Flags without a value. */
  readonly switches: readonly string[];
}

export function parseArgs(command: string, argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (spec.switches.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`, command);
      switches.add(name);
      continue;
    }
    if (!spec.flags.includes(name)) throw new UsageError(`unknown option --${name}`, command);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`, command);
    if (flags.has(name)) throw new UsageError(`--${name} is given twice`, command);
    flags.set(name, value);
  }
  return { positionals, flags, switches };
}

/** A positive integer flag within [min, max], or the fallback. */
export function intFlag(args: ParsedArgs, command: string, name: string, fallback: number, min: number, max: number): number {
  const raw = args.flags.get(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, got '${raw}'`, command);
  return Number(raw);
}

/** A job id: digits. */
export function jobIdArg(value: string | undefined, command: string): string {
  if (value === undefined) throw new UsageError('a job id is required', command);
  if (!/^\d{1,19}$/.test(value)) throw new UsageError(`'${value}' is not a job id (digits)`, command);
  return value;
}
