// An evaluation run's page: while the run is queued or running, polls its progress (a small
// JSON view named by data-progress-url) and updates the status and the bar. When a turn is
// added, the status changes or a queued run's wait changes (a runner busy elsewhere, or none
// seeming to run), the page is reloaded so the new rows, the finished report or the right
// notice show. A failed poll leaves the page as it is; the next one retries.
const POLL_MS = 1500;

async function poll(state) {
  if (document.hidden) return;
  try {
    const response = await fetch(state.dataset.progressUrl, { credentials: 'same-origin' });
    if (!response.ok) return;
    const run = await response.json();
    const bar = document.getElementById('run-progress');
    if (bar) {
      bar.max = Math.max(run.total, 1);
      bar.value = run.done;
    }
    const status = document.getElementById('run-status');
    if (status) status.textContent = run.status_text;
    if (
      run.status !== state.dataset.status ||
      String(run.done) !== state.dataset.done ||
      run.runner_state !== state.dataset.runnerState
    ) {
      window.location.reload();
    }
  } catch {
    // The next tick tries again.
  }
}

function start() {
  const state = document.getElementById('run-state');
  if (!state || state.dataset.active !== '1') return;
  window.setInterval(() => poll(state), POLL_MS);
}

start();
