/**
 * `<schema>.push_job(...)`: a push from plain SQL — psql, a trigger, another language's client —
 * in the caller's transaction. It checks what the TypeScript push checks (the rules of
 * identifiers.ts and job-definition.ts, repeated here in SQL: a test holds the two to the same
 * answers), inserts one row and sends the same notification as a TypeScript push of one job
 * (`p:<queue>` when due, `t:<queue>@<ms>` when later), delivered when the caller commits.
 *
 * It runs no hook: a plugin's job option that a `beforePush` tap turns into columns is not
 * available here; a plugin may add its own function for that, in its own migration.
 *
 * The function's parameters are named for calls in named notation:
 * `SELECT docket.push_job(queue => 'emails', name => 'emails.send', args => '{"to": "a@b.c"}')`.
 * NULL in an optional parameter means "not given" (a trigger's NULL column takes the default);
 * NULL in queue, name or args is refused (`'null'::jsonb` is the JSON null).
 */
export function pushJobFunction(schema: string): string {
  // The schema arrives quoted ("docket"); it is a validated lower-case identifier, so its name is
  // the text between the quotes, and the channel is the app's: docket:<schema name>.
  const channel = `docket:${schema.slice(1, -1)}`;
  return `
    CREATE FUNCTION ${schema}.push_job(
      queue        text,
      name         text,
      args         jsonb       DEFAULT '{}',
      priority     integer     DEFAULT 0,
      run_at       timestamptz DEFAULT NULL,
      delay        interval    DEFAULT NULL,
      max_attempts integer     DEFAULT 1,
      meta         jsonb       DEFAULT '{}'
    ) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    AS $push_job$
    DECLARE
      job_id bigint;
      job_at timestamptz;
    BEGIN
      -- '+' and a length test rather than {1,128}: a bounded repeat costs PostgreSQL's regex engine
      -- about four times as much per call, and the characters allowed are one byte each.
      IF queue IS NULL OR queue !~ '^[A-Za-z0-9_.:-]+$' OR length(queue) > 128 THEN
        RAISE EXCEPTION 'push_job: invalid queue name %', COALESCE(quote_literal(queue), 'NULL')
          USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Use 1-128 letters, digits or the characters _ - . : (for example ''default'' or ''emails.high'').';
      END IF;
      IF name IS NULL OR name !~ '^[A-Za-z0-9_.:/-]+$' OR length(name) > 200 THEN
        RAISE EXCEPTION 'push_job: invalid job name %', COALESCE(quote_literal(name), 'NULL')
          USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Use 1-200 letters, digits or the characters _ - . : / (for example ''emails.send''); it must be the name a worker has a handler for.';
      END IF;
      IF args IS NULL THEN
        RAISE EXCEPTION 'push_job: args is NULL'
          USING ERRCODE = 'null_value_not_allowed',
                HINT = 'Pass the job''s arguments as jsonb: ''{}'' for none, ''null''::jsonb for the JSON null.';
      END IF;
      IF priority IS NOT NULL AND priority NOT BETWEEN -1000000 AND 1000000 THEN
        RAISE EXCEPTION 'push_job: priority % is out of range', priority
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an integer from -1000000 to 1000000 (higher runs first; default 0).';
      END IF;
      IF max_attempts IS NOT NULL AND max_attempts NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'push_job: max_attempts % is out of range', max_attempts
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an integer from 1 to 1000000 (default 1).';
      END IF;
      IF run_at IS NOT NULL AND delay IS NOT NULL THEN
        RAISE EXCEPTION 'push_job: both run_at and delay are given'
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Give run_at (a time) or delay (an interval from now), not both.';
      END IF;
      IF run_at IS NOT NULL AND NOT isfinite(run_at) THEN
        RAISE EXCEPTION 'push_job: run_at % is not a finite time', run_at
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass a real time (a past one runs at once), or NULL for now.';
      END IF;
      IF delay IS NOT NULL AND (NOT isfinite(delay) OR delay < interval '0') THEN
        RAISE EXCEPTION 'push_job: delay % is negative or infinite', delay
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass an interval of 0 or more (for example interval ''5 minutes''), or NULL for now.';
      END IF;
      IF meta IS NOT NULL AND jsonb_typeof(meta) <> 'object' THEN
        RAISE EXCEPTION 'push_job: meta must be a JSON object, got %', jsonb_typeof(meta)
          USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass a jsonb object such as ''{"tenant": "t1"}'', or ''{}''.';
      END IF;

      INSERT INTO ${schema}.jobs (queue, name, args, priority, max_attempts, scheduled_at, meta)
      VALUES (push_job.queue, push_job.name, push_job.args, COALESCE(push_job.priority, 0), COALESCE(push_job.max_attempts, 1),
              COALESCE(push_job.run_at, now() + COALESCE(push_job.delay, interval '0')), COALESCE(push_job.meta, '{}'))
      RETURNING id, scheduled_at INTO job_id, job_at;

      -- The notification of a TypeScript push of one job, sent when the caller's transaction commits.
      PERFORM pg_notify('${channel}', CASE WHEN job_at <= now() THEN 'p:' || push_job.queue
                                      ELSE 't:' || push_job.queue || '@' || (extract(epoch FROM job_at) * 1000)::bigint END);
      RETURN job_id;
    END
    $push_job$;

    COMMENT ON FUNCTION ${schema}.push_job(text, text, jsonb, integer, timestamptz, interval, integer, jsonb) IS
      'Pushes a job from SQL in the current transaction (no plugin hooks run); returns its id. See @docket/core README, "Push from SQL".';
  `;
}
