/**
 * The HTTP load generator of the `http` suite, run as its own Node process (forked by http.ts) so
 * autocannon never shares an event loop with the server it measures. It takes one run at a time over
 * IPC and answers with the figures the suite reports.
 */
import autocannon from 'autocannon';

export interface LoadRequest {
  id: number;
  url: string;
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  id: number;
  /** Completed requests per second over the whole run. */
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

process.on('message', (message: LoadRequest) => {
  void run(message).then(
    (result) => process.send!(result),
    (error: unknown) =>
      process.send!({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });

async function run({ id, url, connections, durationSeconds }: LoadRequest): Promise<LoadResult> {
  const result = await autocannon({ url, connections, duration: durationSeconds, pipelining: 1 });
  return {
    id,
    requestsPerSec: result.requests.total / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
