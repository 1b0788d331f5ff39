// Keeps the admin live-sessions list current: re-fetches the page every few seconds and swaps
// in the results table, unless the admin is selecting rows for an action.
const REFRESH_MS = 2000;

function selecting() {
  return document.querySelector('#result_list input.action-select:checked') !== null;
}

async function refresh() {
  if (document.hidden || selecting()) return;
  try {
    const response = await fetch(window.location.href, { credentials: 'same-origin' });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), 'text/html');
    const fresh = page.querySelector('#changelist-form .results');
    const current = document.querySelector('#changelist-form .results');
    if (fresh && current) current.replaceWith(fresh);
    const freshCount = page.querySelector('.paginator');
    const currentCount = document.querySelector('.paginator');
    if (freshCount && currentCount) currentCount.replaceWith(freshCount);
  } catch {
    // A failed refresh leaves the last list on screen; the next tick tries again.
  }
}

window.setInterval(refresh, REFRESH_MS);
