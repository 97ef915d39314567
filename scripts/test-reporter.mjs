/**
 * The workspace's node:test reporter (scripts/test.ts passes it with --test-reporter): a line per
 * test file as it finishes, failures in full, and a summary at the end.
 *
 *   ✔ packages/core/test/push.test.ts  23 tests  4.1 s
 *   ✖ packages/core/test/claim.test.ts  12 tests, 1 failed  3.0 s
 *     ✖ claim > skips paused queues
 *       AssertionError [ERR_ASSERTION]: … (the error, its diff and stack)
 *     output:
 *       │ … (what the file wrote to stdout/stderr, shown with a failure or when unexpected)
 *
 *   61 files, 812 tests, 312.4 s
 *   tests: 809 passed, 0 failed, 3 skipped
 *
 * The last line is the plain `N passed, N failed, N skipped` a CI log reader looks for; the exit
 * code stays node:test's own. Output a test provokes on purpose is wrapped in
 * `expectOutput(label, …)` (@docket/testing) and folded into `expected: <label> (N lines)`.
 * Skipped and todo tests are listed by name under their file.
 */
import { relative } from 'node:path';
import { inspect } from 'node:util';

// Plain JavaScript: node:test (20) loads reporters before `--import tsx` takes effect.

/** The markers of @docket/testing's expectOutput (packages/testing/test/reporter.test.ts holds them equal). */
export const EXPECTED_OUTPUT_BEGIN = '[expected output follows] ';
export const EXPECTED_OUTPUT_END = '[end of expected output]';

/**
 * @typedef {{ name: string, nesting: number, file?: string, skip?: boolean | string, todo?: boolean | string, message?: string,
 *   details?: { duration_ms?: number, type?: 'suite' | 'test', error?: unknown, passed?: boolean } }} TestEventData
 * @typedef {{ type: string, data: TestEventData }} TestEvent
 * @typedef {{ path: string[], error: unknown }} Failure
 * @typedef {{ tests: number, failed: Failure[], skipped: string[], open: string[], output: string[], partial: string, fileError: unknown,
 *   passed: boolean, ms: number | undefined }} FileReport
 *   open: the suite/test names open at each nesting level (a failure's path); partial: a line of
 *   output the next chunk completes; fileError: the file's own error when it failed outside its
 *   tests; passed, ms: from the file's `complete` event.
 */

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (/** @type {number} */ code) => (/** @type {string} */ text) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = paint(32);
const red = paint(31);
const yellow = paint(33);
const dim = paint(2);

const seconds = (/** @type {number} */ ms) => `${(ms / 1000).toFixed(1)} s`;
const plural = (/** @type {number} */ n, /** @type {string} */ word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const indent = (/** @type {string} */ text, /** @type {string} */ by) =>
  text
    .replace(/\n$/, '')
    .split('\n')
    .map((line) => by + line)
    .join('\n');

/** @param {unknown} error */
function describeError(error) {
  // node:test wraps what the test threw in ERR_TEST_FAILURE; the cause is what the author wrote.
  const failure = /** @type {{ code?: string, failureType?: string, cause?: unknown } | null} */ (error);
  const cause = failure?.code === 'ERR_TEST_FAILURE' && failure.cause !== undefined ? failure.cause : error;
  if (cause instanceof Error && cause.name.startsWith('AssertionError')) return cause.stack ?? cause.message;
  return inspect(cause, { depth: 6, colors: false });
}

/** Folds each expectOutput block into one line; keeps every other line. */
/** @param {string[]} lines */
function foldExpected(lines) {
  /** @type {string[]} */
  const shown = [];
  let unexpected = 0;
  /** @type {{ label: string, lines: number } | null} */
  let block = null;
  for (const line of lines) {
    if (line.startsWith(EXPECTED_OUTPUT_BEGIN)) {
      block = { label: line.slice(EXPECTED_OUTPUT_BEGIN.length), lines: 0 };
    } else if (block && line === EXPECTED_OUTPUT_END) {
      if (block.lines > 0) shown.push(dim(`expected: ${block.label} (${plural(block.lines, 'line')} of output, hidden)`));
      block = null;
    } else if (block) {
      block.lines++;
    } else {
      shown.push(`│ ${line}`);
      unexpected++;
    }
  }
  if (block) shown.push(dim(`expected: ${block.label} (${plural(block.lines, 'line')}; the block was never closed)`));
  return { shown, unexpected };
}

/** @param {AsyncIterable<TestEvent>} source */
export default async function* docketReporter(source) {
  const started = performance.now();
  /** @type {Map<string, FileReport>} */
  const files = new Map();
  const totals = { files: 0, tests: 0, passed: 0, failed: 0, skipped: 0 };
  /** @type {string[]} */
  const failedFiles = [];

  /** @param {string | undefined} file @returns {FileReport} */
  const reportOf = (file) => {
    const key = file ?? '(no file)';
    let report = files.get(key);
    if (!report)
      files.set(
        key,
        (report = { tests: 0, failed: [], skipped: [], open: [], output: [], partial: '', fileError: null, passed: true, ms: undefined }),
      );
    return report;
  };

  /** The file whose ordered events are coming in. */
  let head = /** @type {string | undefined} */ (undefined);
  /** @param {string | undefined} file */
  function* finishHeadUnless(file) {
    if (head !== undefined && head !== file && files.has(head)) yield render(head, /** @type {FileReport} */ (files.get(head)));
    head = file;
  }

  /** @param {string} file @param {FileReport} report */
  function render(file, report) {
    const { ms, passed } = report;
    if (report.partial) report.output.push(report.partial);
    report.partial = '';
    totals.files++;
    const ok = passed && report.failed.length === 0 && report.fileError === null;
    if (!ok) failedFiles.push(file);
    const counts = [plural(report.tests, 'test')];
    if (report.failed.length > 0) counts.push(red(`${report.failed.length} failed`));
    if (report.skipped.length > 0) counts.push(yellow(`${report.skipped.length} skipped`));
    const lines = [
      `${ok ? green('✔') : red('✖')} ${relative(process.cwd(), file)}  ${counts.join(', ')}${ms === undefined ? '' : `  ${dim(seconds(ms))}`}`,
    ];
    for (const name of report.skipped) lines.push(yellow(`  - ${name}`));
    for (const failure of report.failed) {
      // A test that failed only because a subtest did: the subtest is listed with its error.
      if (/** @type {{ failureType?: string } | null} */ (failure.error)?.failureType === 'subtestsFailed') {
        lines.push(red(`  ✖ ${failure.path.join(' > ')} ${dim('(a subtest failed)')}`));
        continue;
      }
      lines.push(red(`  ✖ ${failure.path.join(' > ')}`));
      lines.push(indent(describeError(failure.error), '      '));
    }
    if (!ok && report.failed.length === 0) {
      lines.push(red('  ✖ the file failed outside its tests'));
      if (report.fileError !== null) lines.push(indent(describeError(report.fileError), '      '));
    }
    const { shown, unexpected } = foldExpected(report.output);
    // A passing file's expected output is one quiet line; anything else it printed is shown.
    if (shown.length > 0 && (!ok || unexpected > 0)) lines.push('  output:', indent(shown.join('\n'), '    '));
    else if (shown.length > 0) lines.push(indent(shown.join('\n'), '    '));
    files.delete(file);
    return `${lines.join('\n')}\n`;
  }

  for await (const event of source) {
    const { type, data } = event;
    switch (type) {
      case 'test:stdout':
      case 'test:stderr': {
        const report = reportOf(data.file);
        const text = report.partial + (data.message ?? '');
        const lines = text.split('\n');
        report.partial = lines.pop() ?? '';
        report.output.push(...lines);
        break;
      }
      case 'test:start': {
        yield* finishHeadUnless(data.file);
        const report = reportOf(data.file);
        report.open[data.nesting] = data.name;
        report.open.length = data.nesting + 1;
        break;
      }
      case 'test:pass':
      case 'test:fail': {
        yield* finishHeadUnless(data.file);
        if (data.details?.type === 'suite') break;
        const report = reportOf(data.file);
        const path = [...report.open.slice(0, data.nesting), data.name];
        report.tests++;
        totals.tests++;
        if (type === 'test:fail') {
          report.failed.push({ path, error: data.details?.error });
          totals.failed++;
        } else if (data.skip !== undefined || data.todo !== undefined) {
          report.skipped.push(
            `${path.join(' > ')} (${data.todo !== undefined ? 'todo' : 'skipped'}${typeof (data.skip ?? data.todo) === 'string' ? `: ${data.skip ?? data.todo}` : ''})`,
          );
          totals.skipped++;
        } else {
          totals.passed++;
        }
        break;
      }
      case 'test:complete': {
        // node:test (20) ends each file with a `complete` event named after the file. `complete`
        // events come as tests end, out of order; the file's line is printed once its ordered
        // events (start, pass, fail) are all in, i.e. when the next file's begin.
        if (data.nesting !== 0 || data.file === undefined || data.name !== data.file) break;
        const report = reportOf(data.file);
        report.ms = data.details?.duration_ms;
        report.passed = data.details?.passed !== false;
        if (!report.passed) report.fileError = data.details?.error ?? null;
        break;
      }
      case 'test:diagnostic':
        // Per-test diagnostics (t.diagnostic) belong with their file; the runner's own closing
        // diagnostics (tests, pass, fail, …) are replaced by the summary below.
        if (data.file) reportOf(data.file).output.push(`diagnostic: ${data.message}`);
        break;
    }
  }

  for (const [file, report] of [...files]) {
    if (report.tests > 0 || report.output.length > 0 || report.partial || report.fileError !== null) yield render(file, report);
  }

  const lines = ['', `${plural(totals.files, 'file')}, ${plural(totals.tests, 'test')}, ${seconds(performance.now() - started)}`];
  if (failedFiles.length > 0) lines.push(red(`failed: ${failedFiles.map((f) => relative(process.cwd(), f)).join(', ')}`));
  lines.push(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  yield `${lines.join('\n')}\n`;
}
