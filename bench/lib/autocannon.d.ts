// The part of autocannon 9's programmatic API the benchmarks use (it ships no types).
declare module 'autocannon' {
  interface Stats {
    average: number;
    p50: number;
    p99: number;
    max: number;
  }
  interface Result {
    requests: Stats;
    latency: Stats;
    throughput: Stats;
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    amount?: number;
    headers?: Record<string, string>;
    /** Each request in turn; `setupRequest` may rewrite one before it is sent (e.g. its path). */
    requests?: Array<{ setupRequest?: (req: { path?: string }) => { path?: string } }>;
  }
  function autocannon(opts: Options): Promise<Result>;
  export default autocannon;
}
