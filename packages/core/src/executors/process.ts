import { fork } from 'node:child_process';
import { PooledExecutor, type RunnerEvents, type RunnerHandle, runnerExecArgv, runnerPath } from './pool.js';
import { RUNNER_ARG } from './runner.js';

/**
 * Runs handlers in child processes (`fork` of the runner), loaded from `jobsModule`: pooled per
 * memory limit (see pool.ts), one attempt at a time per process. The children get this process's
 * execArgv (so `--import tsx` and `--conditions` carry over; debugger, test, watch and eval flags
 * do not) plus `--max-old-space-size=N` for `limits.memoryMb`; a child that dies of V8 heap
 * exhaustion (SIGABRT) under a memory limit ends the attempt with LimitExceededError.
 *
 * An aborted attempt's child is killed with SIGKILL. Children ignore SIGINT and SIGTERM (a
 * terminal's Ctrl-C reaches the whole process group, and must not end jobs that a graceful stop is
 * waiting for) and exit when the worker's IPC channel closes. Messages use the 'advanced'
 * (structured clone) serialization, as threads do.
 */
export class ProcessExecutor extends PooledExecutor {
  readonly kind = 'process';
  protected readonly noun = 'its child process';

  protected spawn(memoryMb: number | undefined, events: RunnerEvents): RunnerHandle {
    const child = fork(runnerPath(), [RUNNER_ARG, this.jobsModule], {
      execArgv: [...runnerExecArgv(), ...(memoryMb === undefined ? [] : [`--max-old-space-size=${memoryMb}`])],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let ended = false;
    const end = (code: number | null, signal: NodeJS.Signals | null, cause?: Error) => {
      if (ended) return;
      ended = true;
      // V8 aborts the process when the heap limit is reached (SIGABRT; 134 when a shell reports it).
      const outOfMemory = memoryMb !== undefined && (signal === 'SIGABRT' || signal === 'SIGTRAP' || code === 134 || code === 133);
      const description = cause ? `could not be started (${cause.message})` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
      events.end({ outOfMemory, description, cause });
    };
    child.on('message', (message) => events.message(message as Parameters<RunnerEvents['message']>[0]));
    child.on('error', (error) => {
      if (child.pid === undefined) end(null, null, error); // spawning failed: no 'exit' follows
    });
    child.on('exit', (code, signal) => end(code, signal));
    const channel = () => (child as unknown as { channel?: { ref(): void; unref(): void } | null }).channel;
    return {
      send: (message) => {
        child.send(message, undefined, undefined, () => {
          // A closed channel: the child is gone and 'exit' reports it.
        });
      },
      stop: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
      ref: () => {
        child.ref();
        channel()?.ref();
      },
      unref: () => {
        child.unref();
        channel()?.unref();
      },
    };
  }
}
