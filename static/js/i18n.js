// Translation for the browser modules: Django's JavaScript catalog (the jsi18n script base.html
// loads before any module) defines gettext(), ngettext() and interpolate() on the page. Where it
// is absent (the AudioWorklet scope imports protocol.js; a page without base.html) the English
// text is used as is. `manage.py makemessages -d djangojs` finds the gettext('…') calls.
const catalog = globalThis;

export function gettext(text) {
  return typeof catalog.gettext === 'function' ? catalog.gettext(text) : text;
}

export function ngettext(singular, plural, count) {
  if (typeof catalog.ngettext === 'function') return catalog.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

// interpolate('Page %(n)s', {n: 2}): named placeholders, as Django's own interpolate(…, true).
export function interpolate(format, values) {
  if (typeof catalog.interpolate === 'function') return catalog.interpolate(format, values, true);
  return format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}
