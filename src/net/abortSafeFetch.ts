/**
 * The fetch gaxios uses on Node (node-fetch 3), except that a request whose signal is already
 * aborted is refused with an AbortedError instead of being handed on.
 *
 * Why: node-fetch, handed an aborted signal, destroys the request's body stream with an error no
 * one listens to: an uncaught exception that ends the process. That happens whenever a deadline
 * (withDeadline), a shutdown or an abandoned read-ahead aborts a request while gaxios is still
 * preparing it (gaxios loads node-fetch lazily, so on a process's first request that takes a
 * while). The check here and node-fetch's own run in one synchronous step: nothing can abort in
 * between. Pass it as gaxios' `fetchImplementation` together with the signal withDeadline gives.
 */
import nodeFetch from 'node-fetch';
import { AbortedError } from '../errors.js';

export const abortSafeFetch = ((url: string | URL, init?: { signal?: AbortSignal | null }) => {
  if (init?.signal?.aborted) return Promise.reject(new AbortedError('request aborted before it was sent'));
  return nodeFetch(url as string, init as Parameters<typeof nodeFetch>[1]);
}) as unknown as typeof fetch;
