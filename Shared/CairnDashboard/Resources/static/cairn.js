// Cairn operator dashboard — progressive enhancement only.
// Plain ES2020, no dependencies, no globals. Every feature looks for its own
// markup and quietly does nothing when that markup is absent. Never logs to
// the console: the end-to-end suite treats any console error as a failure.
(() => {
  'use strict';

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const FIELD = 'input, textarea, select, [contenteditable]:not([contenteditable="false"])';
  const isField = (el) => !!(el && el.closest && el.closest(FIELD));

  // ---------------------------------------------------------------- theme
  const THEMES = ['auto', 'light', 'dark'];
  const THEME_KEY = 'cairn.theme';

  // localStorage throws in some privacy modes; treat that as "nothing stored".
  const readTheme = () => {
    try {
      const t = localStorage.getItem(THEME_KEY);
      return THEMES.includes(t) ? t : null;
    } catch { return null; }
  };
  const writeTheme = (t) => { try { localStorage.setItem(THEME_KEY, t); } catch { /* ignore */ } };

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    const btn = $('#theme-toggle');
    if (btn) btn.textContent = 'Theme: ' + theme;
  }

  function initTheme() {
    const current = readTheme() || document.documentElement.dataset.theme;
    applyTheme(THEMES.includes(current) ? current : 'auto');
    const btn = $('#theme-toggle');
    if (!btn) return;
    btn.addEventListener('click', () => {
      const next = THEMES[(THEMES.indexOf(document.documentElement.dataset.theme) + 1) % THEMES.length];
      applyTheme(next);
      writeTheme(next);
    });
  }

  // ---------------------------------------------------------------- selection
  // A checkbox's scope is its form (form.elements also covers inputs tied to
  // it through form="…"), or the whole document when it is outside any form.
  const scopeOf = (el) => (el && (el.form || el.closest('form'))) || document;
  const runBoxes = (scope) => {
    const all = scope instanceof HTMLFormElement ? Array.from(scope.elements) : $$('input', scope);
    return all.filter((i) => i.matches('input[type=checkbox][name=run]'));
  };

  function refreshSelection() {
    for (const el of $$('[data-selected-count]')) {
      el.textContent = String(runBoxes(scopeOf(el)).filter((b) => b.checked).length);
    }
    for (const el of $$('[data-needs-selection]')) {
      el.disabled = !runBoxes(scopeOf(el)).some((b) => b.checked);
    }
    for (const all of $$('input[type=checkbox][data-select-all]')) {
      const boxes = runBoxes(scopeOf(all));
      const n = boxes.filter((b) => b.checked).length;
      all.checked = boxes.length > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
  }

  function initSelection() {
    document.addEventListener('change', (e) => {
      const t = e.target;
      if (!(t instanceof HTMLInputElement) || t.type !== 'checkbox') return;
      if (t.matches('[data-select-all]')) {
        for (const b of runBoxes(scopeOf(t))) b.checked = t.checked;
      }
      if (t.matches('[data-select-all], [name=run]')) refreshSelection();
    });
    refreshSelection();
    // Browsers restore checkbox state on back/forward; resync the counters.
    window.addEventListener('pageshow', refreshSelection);
  }

  // ---------------------------------------------------------------- confirm
  function initConfirm() {
    document.addEventListener('submit', (e) => {
      const form = e.target;
      if (form instanceof HTMLFormElement && form.dataset.confirm !== undefined &&
          !window.confirm(form.dataset.confirm)) {
        e.preventDefault();
      }
    });
  }

  // ---------------------------------------------------------------- copy
  // Old-style copy through a hidden textarea: works over plain http and when
  // the async clipboard API refuses (e.g. the document is not focused).
  function legacyCopy(text) {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    if (!ok) throw new Error('copy failed');
  }

  async function writeClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return; } catch { /* fall through */ }
    }
    legacyCopy(text);
  }

  function copyFrom(btn, text) {
    if (btn.dataset.label === undefined) btn.dataset.label = btn.textContent;
    clearTimeout(Number(btn.dataset.timer) || 0);
    writeClipboard(text)
      .then(() => { btn.textContent = 'Copied'; })
      .catch(() => { btn.textContent = 'Copy failed'; })
      .finally(() => {
        btn.dataset.timer = String(setTimeout(() => { btn.textContent = btn.dataset.label; }, 1500));
      });
  }

  function initCopy() {
    // Give every JSON block a copy button, wrapped so it can float top-right.
    for (const pre of $$('pre.json')) {
      const wrap = document.createElement('div');
      wrap.className = 'json-wrap';
      pre.replaceWith(wrap);
      wrap.appendChild(pre);
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'btn small json-copy';
      btn.textContent = 'Copy';
      btn.setAttribute('aria-label', 'Copy JSON');
      wrap.appendChild(btn);
    }
    document.addEventListener('click', (e) => {
      const btn = e.target.closest && e.target.closest('button[data-copy], button.json-copy');
      if (!btn) return;
      e.preventDefault();
      const pre = btn.classList.contains('json-copy') && btn.parentElement.querySelector('pre.json');
      copyFrom(btn, pre ? pre.textContent : btn.dataset.copy);
    });
  }

  // ---------------------------------------------------------------- times
  function relative(date) {
    const secs = Math.round((date.getTime() - Date.now()) / 1000);
    const abs = Math.abs(secs);
    if (abs < 10) return 'just now';
    let text;
    if (abs < 60) text = abs + ' s';
    else if (abs < 3600) text = Math.round(abs / 60) + ' min';
    else if (abs < 86400) text = Math.round(abs / 3600) + ' h';
    else if (abs < 86400 * 45) text = Math.round(abs / 86400) + ' d';
    else return date.toLocaleDateString();
    return secs < 0 ? text + ' ago' : 'in ' + text;
  }

  function refreshTimes() {
    for (const el of $$('time[datetime]')) {
      const d = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(d.getTime())) continue;
      if (!el.title) el.title = d.toLocaleString();
      if (el.hasAttribute('data-relative')) el.textContent = relative(d);
    }
  }

  function initTimes() {
    refreshTimes();
    if ($('time[data-relative]')) setInterval(refreshTimes, 30000);
  }

  // ---------------------------------------------------------------- live updates
  let reloading = false;
  const reload = () => { if (!reloading) { reloading = true; location.reload(); } };
  const parse = (data) => { try { return JSON.parse(data); } catch { return null; } };

  const showPill = (el, text) => { el.textContent = text; el.hidden = false; };

  function initLive() {
    if (typeof EventSource !== 'function') return;
    const sources = new Map();
    const open = (el) => {
      if (sources.has(el)) return;
      const es = new EventSource(el.dataset.live);
      sources.set(el, es);
      es.addEventListener('runs', (e) => {
        const n = Number((parse(e.data) || {}).new) || 0;
        if (n > 0) showPill(el, n + (n === 1 ? ' new run' : ' new runs') + ' \u2014 show');
      });
      es.addEventListener('run', (e) => {
        if (!(parse(e.data) || {}).changed) return;
        if (isField(document.activeElement)) showPill(el, 'Run updated \u2014 reload');
        else reload();
      });
      // Deliberately no onerror handler: EventSource retries on its own and
      // we must not write anything to the console.
    };

    for (const el of $$('[data-live]')) {
      if (!el.dataset.live) continue;
      // The pill is a div, so make it behave like a button for keyboards.
      el.setAttribute('role', 'button');
      el.tabIndex = 0;
      el.setAttribute('aria-live', 'polite');
      el.addEventListener('click', reload);
      el.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.stopPropagation(); reload(); }
      });
      open(el);
    }
    // Close streams when leaving so the page can enter the back/forward cache;
    // reopen them if it is restored from there.
    window.addEventListener('pagehide', () => {
      for (const es of sources.values()) es.close();
      sources.clear();
    });
    window.addEventListener('pageshow', (e) => {
      if (e.persisted) $$('[data-live]').filter((el) => el.dataset.live).forEach(open);
    });
  }

  // ---------------------------------------------------------------- waterfall
  function initWaterfall() {
    for (const span of $$('.wf-scale span[data-pos]')) {
      const pos = parseFloat(span.dataset.pos);
      if (Number.isFinite(pos)) span.style.left = Math.min(100, Math.max(0, pos)) + '%';
    }
  }

  // ---------------------------------------------------------------- keyboard
  const GO = { o: '/', a: '/apps', f: '/functions', r: '/runs', e: '/events', q: '/queues', w: '/workers' };
  let pendingG = 0; // timestamp of a pending "g" prefix; 0 when none

  // Rows of the first grid table that actually has selectable rows.
  function rows() {
    const first = $('table.grid tr[data-row]');
    return first ? $$('tr[data-row]', first.closest('table')) : [];
  }

  function moveSelection(delta) {
    const list = rows();
    if (!list.length) return;
    const cur = list.findIndex((r) => r.classList.contains('selected'));
    const next = cur < 0 ? 0 : Math.min(list.length - 1, Math.max(0, cur + delta));
    selectRow(list[next]);
    list[next].scrollIntoView({ block: 'nearest' });
  }

  const selectRow = (row) => { for (const r of rows()) r.classList.toggle('selected', r === row); };

  const selectedRow = () => rows().find((r) => r.classList.contains('selected'));

  function openHelp() {
    const dlg = $('dialog#keys');
    if (!dlg || dlg.open) return;
    if (typeof dlg.showModal === 'function') dlg.showModal();
    else dlg.setAttribute('open', '');
  }

  function onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const dlg = $('dialog#keys');

    if (e.key === 'Escape') {
      if (dlg && dlg.open) { e.preventDefault(); dlg.close(); return; }
      const active = document.activeElement;
      if (active && active !== document.body) active.blur();
      pendingG = 0;
      return;
    }
    if (isField(e.target) || (dlg && dlg.open)) return;

    // Enter and x must not hijack focused links/buttons (main#main has tabindex=-1, which is fine).
    const onControl = !!e.target.closest('a, button, summary, [role=button], [tabindex]:not([tabindex="-1"])');

    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      const path = GO[e.key];
      if (path) { e.preventDefault(); location.assign(path); }
      return;
    }
    pendingG = 0;

    switch (e.key) {
      case '/': {
        const search = $('[data-search]');
        if (search) { e.preventDefault(); search.focus(); if (search.select) search.select(); }
        break;
      }
      case 'j': e.preventDefault(); moveSelection(1); break;
      case 'k': e.preventDefault(); moveSelection(-1); break;
      case 'Enter': {
        const link = !onControl && selectedRow() && selectedRow().querySelector('a[data-primary]');
        if (link) { e.preventDefault(); link.click(); }
        break;
      }
      case 'x': {
        const box = !onControl && selectedRow() && selectedRow().querySelector('input[type=checkbox][name=run]');
        if (box && !box.disabled) {
          e.preventDefault();
          box.checked = !box.checked;
          box.dispatchEvent(new Event('change', { bubbles: true }));
        }
        break;
      }
      case 'g': pendingG = Date.now(); break;
      case '?': e.preventDefault(); openHelp(); break;
      default: break;
    }
  }

  function initKeys() {
    document.addEventListener('keydown', onKey);
    // Clicking a row selects it, so j/k continue from where the mouse was.
    document.addEventListener('click', (e) => {
      const row = e.target.closest && e.target.closest('tr[data-row]');
      if (row && rows().includes(row)) selectRow(row);
    });
    // A click on the dialog's backdrop (outside its box) closes it.
    const dlg = $('dialog#keys');
    if (dlg) {
      dlg.addEventListener('click', (e) => {
        const r = dlg.getBoundingClientRect();
        const outside = e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom;
        if (e.target === dlg && outside) dlg.close();
      });
    }
  }

  // ---------------------------------------------------------------- boot
  function init() {
    initTheme();
    initSelection();
    initConfirm();
    initCopy();
    initTimes();
    initWaterfall();
    initKeys();
    initLive();
  }

  // A deferred script runs once parsing is done; this covers async loading too.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
})();
