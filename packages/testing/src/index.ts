export { getTestServer, dockerAnswers, ADMIN_URL_ENV, SERVER_KIND_ENV } from './server.js';
export type { TestServer, TestServerKind } from './server.js';
export { createTestDatabase, databaseUrl, withAdmin, TEMPLATE_ENV, DEFAULT_TEMPLATE_NAME } from './database.js';
export type { TestDatabase, CreateTestDatabaseOptions } from './database.js';
export { waitFor, WaitForTimeoutError } from './wait.js';
export type { WaitForOptions } from './wait.js';
export { testHarness, deferred, nextMessage } from './harness.js';
export type { Harness, HarnessApp, HarnessWorker } from './harness.js';
export { stopChild, stopOnMessage } from './processes.js';
