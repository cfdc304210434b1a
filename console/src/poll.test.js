import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isPassing, pollUntilFinal } from "./poll.js";
import { ApiError } from "./errors.js";

const EVERY = 2000;

// A read that answers with `answers` in turn (an Error is thrown).
function scripted(answers) {
  const read = vi.fn(async () => {
    const next = answers[Math.min(read.mock.calls.length - 1, answers.length - 1)];
    if (next instanceof Error) throw next;
    return next;
  });
  return read;
}

function poll(read) {
  const seen = { results: [], errors: [] };
  const stop = pollUntilFinal({
    read,
    isFinal: (r) => r === "Success",
    onResult: (r) => seen.results.push(r),
    onError: (e) => seen.errors.push(e.code),
    every: EVERY,
  });
  return { seen, stop };
}

describe("polling until final", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("reads every interval while it runs, and not after it is final", async () => {
    const read = scripted(["Pending", "InProgress", "Success"]);
    const { seen } = poll(read);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen.results).toEqual(["Pending"]);
    await vi.advanceTimersByTimeAsync(EVERY - 1);
    expect(read).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.results).toEqual(["Pending", "InProgress"]);
    await vi.advanceTimersByTimeAsync(EVERY * 10);
    expect(seen.results).toEqual(["Pending", "InProgress", "Success"]);
    expect(read).toHaveBeenCalledTimes(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops when the page is left, between reads", async () => {
    const read = scripted(["InProgress"]);
    const { seen, stop } = poll(read);
    await vi.advanceTimersByTimeAsync(EVERY);
    expect(read).toHaveBeenCalledTimes(2);
    stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(EVERY * 10);
    expect(read).toHaveBeenCalledTimes(2);
    expect(seen.results).toEqual(["InProgress", "InProgress"]);
  });

  it("gives nothing from a read still on its way when the page is left", async () => {
    let answer;
    const read = vi.fn(() => new Promise((resolve) => (answer = resolve)));
    const { seen, stop } = poll(read);
    stop();
    answer("InProgress");
    await vi.advanceTimersByTimeAsync(EVERY * 10);
    expect(seen.results).toEqual([]);
    expect(read).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("tries a passing failure again, after twice the interval", async () => {
    const busy = new ApiError("ThrottlingException", "Rate exceeded", 400);
    const read = scripted([busy, "Success"]);
    const { seen } = poll(read);
    await vi.advanceTimersByTimeAsync(EVERY * 2 - 1);
    expect(seen.errors).toEqual(["ThrottlingException"]);
    expect(read).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.results).toEqual(["Success"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops at a refusal, which is shown", async () => {
    const refused = new ApiError("AccessDeniedException", "not authorized", 400);
    const read = scripted([refused, "Success"]);
    const { seen } = poll(read);
    await vi.advanceTimersByTimeAsync(EVERY * 10);
    expect(seen.errors).toEqual(["AccessDeniedException"]);
    expect(seen.results).toEqual([]);
    expect(read).toHaveBeenCalledTimes(1);
  });

  it("names the passing failures", () => {
    for (const code of ["ThrottlingException", "NetworkError", "InternalServerError"]) {
      expect(isPassing({ code })).toBe(true);
    }
    for (const code of ["AccessDeniedException", "InvalidCommandId", undefined]) {
      expect(isPassing({ code })).toBe(false);
    }
    expect(isPassing(null)).toBe(false);
  });
});
