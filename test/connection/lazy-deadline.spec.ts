import { LazyDeadline } from '../../src/connection/lazy-deadline';

describe('LazyDeadline', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('expires limitMs after the latest start while the condition holds, with one timer however often it starts', () => {
    const expired: number[] = [];
    const deadline = new LazyDeadline(
      100,
      () => true,
      (elapsed) => expired.push(elapsed),
    );
    deadline.start();
    jest.advanceTimersByTime(60);
    deadline.start(); // restarted: 100 ms from now
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(60);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(40);
    expect(expired).toEqual([100]);
  });

  it('does nothing when the condition no longer holds, or once stopped', () => {
    let holds = true;
    const expired: number[] = [];
    const deadline = new LazyDeadline(
      50,
      () => holds,
      (elapsed) => expired.push(elapsed),
    );
    deadline.start();
    holds = false;
    jest.advanceTimersByTime(100);
    holds = true;
    deadline.start();
    deadline.stop();
    jest.advanceTimersByTime(100);
    expect(expired).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });
});
