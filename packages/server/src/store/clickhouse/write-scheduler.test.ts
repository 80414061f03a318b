import { describe, expect, it } from 'vitest';
import { createWriteScheduler } from './write-scheduler.js';

/** A task that records when it starts and ends, and finishes when told to. */
function createProbe() {
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const finishers = new Map<string, (ok: boolean) => void>();
  const task = (name: string) => () =>
    new Promise<string>((resolve, reject) => {
      running++;
      most = Math.max(most, running);
      log.push(`start ${name}`);
      finishers.set(name, (ok) => {
        running--;
        log.push(`end ${name}`);
        if (ok) resolve(name);
        else reject(new Error(name));
      });
    });
  const finish = async (name: string, ok = true) => {
    for (let i = 0; i < 20 && !finishers.has(name); i++) await new Promise((r) => setImmediate(r));
    const f = finishers.get(name);
    if (!f) throw new Error(`${name} never started; log: ${log.join(', ')}`);
    finishers.delete(name);
    f(ok);
    await new Promise((r) => setImmediate(r));
  };
  const settle = () => new Promise((r) => setImmediate(r));
  return { log, task, finish, settle, most: () => most };
}

describe('createWriteScheduler', () => {
  it('runs writes of disjoint messages together, at most maxInFlight at once', async () => {
    const p = createProbe();
    const s = createWriteScheduler(2);
    const results = [s.run(p.task('a'), ['m1']), s.run(p.task('b'), ['m2']), s.run(p.task('c'), ['m3'])];
    await p.settle();
    expect(p.log).toEqual(['start a', 'start b']);
    await p.finish('b');
    expect(p.log).toEqual(['start a', 'start b', 'end b', 'start c']);
    await p.finish('a');
    await p.finish('c');
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
    expect(p.most()).toBe(2);
  });

  it('runs a write after every earlier one that shares a message with it, even past a failure', async () => {
    const p = createProbe();
    const s = createWriteScheduler(2);
    const a = s.run(p.task('a'), ['m1', 'm2']);
    const b = s.run(p.task('b'), ['m3', 'm2']);
    const c = s.run(p.task('c'), ['m4']);
    await p.settle();
    expect(p.log).toEqual(['start a', 'start c']);
    await p.finish('c');
    expect(p.log).not.toContain('start b');
    await p.finish('a', false);
    await expect(a).rejects.toThrow('a');
    expect(p.log.at(-1)).toBe('start b');
    await p.finish('b');
    expect(await b).toBe('b');
    expect(await c).toBe('c');
  });

  it('treats a task without keys as a barrier', async () => {
    const p = createProbe();
    const s = createWriteScheduler(2);
    const a = s.run(p.task('a'), ['m1']);
    const barrier = s.run(p.task('housekeeping'));
    const b = s.run(p.task('b'), ['m2']);
    await p.settle();
    expect(p.log).toEqual(['start a']);
    await p.finish('a');
    expect(p.log).toEqual(['start a', 'end a', 'start housekeeping']);
    await p.finish('housekeeping');
    expect(p.log.at(-1)).toBe('start b');
    await p.finish('b');
    await Promise.all([a, barrier, b]);
    let idle = false;
    void s.idle().then(() => {
      idle = true;
    });
    await p.settle();
    expect(idle).toBe(true);
  });

  it('idle() waits for the writes in flight', async () => {
    const p = createProbe();
    const s = createWriteScheduler(2);
    void s.run(p.task('a'), ['m1']);
    let idle = false;
    void s.idle().then(() => {
      idle = true;
    });
    await p.settle();
    expect(idle).toBe(false);
    await p.finish('a');
    await p.settle();
    expect(idle).toBe(true);
  });
});
