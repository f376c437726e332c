// graphile-worker's throughput with its documented batched settings
// (https://worker.graphile.org/docs/performance): `node run.mjs <postgres url> <jobs>`.
// Queues <jobs> jobs of a no-op task with one add_jobs call per 10,000, then
// times one runner from start until it has run them all, and prints
// {"jobs": N, "seconds": S, "jobs_per_second": R} on one line.
import { Logger, makeWorkerUtils, run } from "graphile-worker";

// Quiet: a log line per job would be most of the work measured.
const logger = new Logger(() => () => {});

const [connectionString, count] = [process.argv[2], Number(process.argv[3] ?? 40000)];
const preset = {
  worker: {
    connectionString,
    concurrentJobs: 24,
    maxPoolSize: 25,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};

const utils = await makeWorkerUtils({ connectionString, logger });
await utils.migrate();
for (let queued = 0; queued < count; queued += 10000) {
  const batch = Math.min(10000, count - queued);
  await utils.addJobs(Array.from({ length: batch }, () => ({ identifier: "noop", payload: {} })));
}
await utils.release();

let done = 0;
let finished;
const allDone = new Promise((resolve) => (finished = resolve));
const started = process.hrtime.bigint();
const runner = await run({
  preset,
  concurrency: 24,
  maxPoolSize: 25,
  noHandleSignals: true,
  logger,
  taskList: {
    noop: async () => {
      done += 1;
      if (done === count) finished();
    },
  },
});
await allDone;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
console.log(JSON.stringify({ jobs: count, seconds, jobs_per_second: count / seconds }));
