/**
 * Output a test provokes on purpose (a child process that crashes, V8's report of a heap running
 * out) would read like a failure in the middle of a passing run. A test wraps the code that
 * provokes it in `expectOutput(label, run)`: the lines between the two markers are folded by the
 * workspace's reporter (scripts/test-reporter.mjs) into one line, `expected: <label> (N lines)`.
 * Run with another reporter, the markers still say in plain words what the lines are.
 */
export const EXPECTED_OUTPUT_BEGIN = '[expected output follows] ';
export const EXPECTED_OUTPUT_END = '[end of expected output]';

/**
 * Runs `run` between the markers on stderr. Child processes that inherit stderr write inside
 * them; pipes and files take the markers synchronously, so they bracket the child's output.
 */
export async function expectOutput<T>(label: string, run: () => Promise<T>): Promise<T> {
  process.stderr.write(`${EXPECTED_OUTPUT_BEGIN}${label}\n`);
  try {
    return await run();
  } finally {
    process.stderr.write(`${EXPECTED_OUTPUT_END}\n`);
  }
}
