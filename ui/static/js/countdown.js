// After a 429 the button that was refused waits out the server's Retry-After with a live countdown
// ("You can run again in 12 s"), then comes back by itself.

const waiting = new WeakSet();

/** Whether `button` is counting down (its caller must then leave it disabled). */
export const isWaiting = (button) => waiting.has(button);

/**
 * When `error` is a 429 with Retry-After: disable `button`, count down in `status` what the server
 * said and when `again` is possible, and give the button back at zero. Returns whether it did.
 */
export function waitOut(error, button, status, again) {
  if (!error || error.status !== 429 || !error.retryAfter || !button || !status) return false;
  // Too many jobs waiting ends when one of them finishes, not at a known moment: no countdown.
  if (error.code === "too_many_jobs") return false;
  // The server's reason, without its own "try again in N s": the countdown says that, live.
  const reason = error.message
    .replace(/[;,.]?\s*(you can )?try again in [^.;]*[.;]?\s*$/i, "")
    .replace(/[.;,]\s*$/, "");
  // Against the clock, not by counting ticks: a background tab's timers run late.
  const until = Date.now() + error.retryAfter * 1000;
  waiting.add(button);
  button.disabled = true;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left > 0) {
      status.textContent = `${reason ? `${reason}. ` : ""}You can ${again} again in ${left} s.`;
      return;
    }
    clearInterval(timer);
    waiting.delete(button);
    button.disabled = false;
    status.textContent = `You can ${again} again now.`;
  };
  const timer = setInterval(tick, 1000);
  tick();
  return true;
}
