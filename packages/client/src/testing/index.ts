/**
 * Test helpers for tools that embed telemark: a real in-process collector and assertions on what was
 * reported. No dependency on any test runner.
 *
 * @example
 * const collector = await createFakeCollector({ catalog: telepresence });
 * // run the tool with endpoint collector.url and TELEMARK_ALLOW_IN_TESTS=1, then:
 * await collector.waitForMessages(1);
 * expectReported(collector, 'intercept_fail', { error: match.any(String) });
 * await collector.close();
 */
export type { AsymmetricMatcher, ExpectReportedOptions } from './assertions.js';
export { expectEachOnce, expectNotReported, expectReported, match, matches } from './assertions.js';
export type {
  FailureOptions,
  FakeCollector,
  FakeCollectorOptions,
  RecordedRequest,
} from './fake-collector.js';
export { createFakeCollector } from './fake-collector.js';
