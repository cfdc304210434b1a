// Reads something again and again until it is final: what the command and
// automation pages do while a run goes on. Kept apart from the pages so its
// rules (when it stops, what it retries) are tested without a browser.

// Failures that pass by themselves: tried again, after twice the interval.
// Anything else (a refusal, a missing id) is shown and polling stops.
const PASSING = new Set(["ThrottlingException", "NetworkError", "InternalServerError"]);

export function isPassing(error) {
  return PASSING.has(error?.code);
}

// Calls `read()`, gives its result to `onResult`, and reads again `every`
// ms later until `isFinal(result)`. An error goes to `onError`; a passing
// one is read again. Returns `stop`: no read starts and no result or
// error is given after it, even one already on its way.
export function pollUntilFinal({ read, isFinal, onResult, onError, every }) {
  let live = true;
  let timer = null;
  const later = (ms) => {
    timer = setTimeout(round, ms);
  };
  async function round() {
    timer = null;
    try {
      const result = await read();
      if (!live) return;
      onResult(result);
      if (!isFinal(result)) later(every);
    } catch (e) {
      if (!live) return;
      onError(e);
      if (isPassing(e)) later(every * 2);
    }
  }
  round();
  return () => {
    live = false;
    if (timer !== null) clearTimeout(timer);
  };
}
