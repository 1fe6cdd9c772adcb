/* The privacy portal's consent banner for the retailer's website (portal/banner/bundle.py builds and serves it).
 *
 * Nothing is stored in the visitor's browser and nothing is sent before they answer, except a count that the banner
 * was shown (no id, no cookie). The answer is kept in localStorage on the site's own origin with a random visitor id,
 * and sent to the portal, whose consent ledger is the proof. Closing the banner is refusing. A browser sending
 * Global Privacy Control refuses the marketing and analytics purposes without being asked.
 *
 * The page's own tags read the choices through window.PortalConsent (README: "Consent banner for your website").
 */
(() => {
  "use strict";
  const C = "__PORTAL_BANNER_CONFIG__";
  const KEY = "portal-consent";
  const doc = document;
  const me = doc.currentScript;
  const listeners = {};
  let stored = read();
  let choices = fresh(stored) ? stored.choices : null;
  let host = null;
  let root = null;
  let opener = null;

  function language() {
    const asked = ((me && me.getAttribute("data-lang")) || doc.documentElement.lang || "").slice(0, 2).toLowerCase();
    return C.i18n[asked] ? asked : C.lang;
  }
  const lang = language();
  const T = C.i18n[lang];

  function read() {
    try {
      const value = JSON.parse(localStorage.getItem(KEY));
      return value && typeof value === "object" ? value : null;
    } catch (e) {
      return null;
    }
  }

  // A choice counts for 6 months, and only for the policy version it answered.
  function fresh(value) {
    return !!value && value.policy === C.policy && typeof value.at === "number" &&
      Date.now() - value.at < C.days * 864e5 && !!value.choices && typeof value.id === "string";
  }

  function keep(value) {
    stored = value;
    try {
      localStorage.setItem(KEY, JSON.stringify(value));
    } catch (e) { /* storage refused: the choice lasts as long as the page */ }
  }

  function visitorId() {
    if (stored && typeof stored.id === "string") return stored.id;
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function post(path, body) {
    return fetch(C.base + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  function granted(code) {
    return !!(choices && choices[code]);
  }

  function call(fn, value) {
    try {
      fn(value);
    } catch (e) {
      setTimeout(() => { throw e; });
    }
  }

  function tell(before) {
    for (const code of C.purposes) {
      const was = !!(before && before[code]);
      if (was !== granted(code)) (listeners[code] || []).forEach((fn) => call(fn, granted(code)));
    }
  }

  function send() {
    const answer = stored;
    post("/consent/v1/answers", {
      visitor_id: answer.id,
      choice: answer.kind,
      consents: answer.choices,
      policy_version: C.policy,
      banner_version: C.version,
      locale: lang,
    }).then((response) => {
      if (response.ok && stored === answer) keep(Object.assign({}, answer, { sent: true }));
    }, () => { /* offline: sent again on the next page */ });
  }

  function answer(kind, values) {
    const before = choices;
    choices = values;
    keep({ id: visitorId(), at: Date.now(), policy: C.policy, kind: kind, choices: values, sent: false });
    close(true);
    tell(before);
    send();
  }

  function all(value) {
    const values = {};
    for (const code of C.purposes) values[code] = value;
    return values;
  }

  // --- What the visitor sees: in a shadow root, so the site's CSS and ours never meet. -----------------------------

  function el(name, attributes, children) {
    const node = doc.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== false && value !== null) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function mount() {
    if (host) return;
    host = el("div", { id: "portal-consent", "data-portal-consent-banner": true });
    root = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function" && CSSStyleSheet.prototype.replaceSync) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(C.css);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(el("style", { text: C.css }));
    }
    // First in the page's order, so that keyboard and screen-reader users meet it first; fixed, so nothing moves.
    doc.body.prepend(host);
  }

  function purposeItem(code, choosing) {
    const p = T.purposes[code];
    const id = `pc-${code}`;
    const heading = choosing
      ? el("label", { class: "pc-check", for: id }, [
        el("input", { type: "checkbox", id: id, name: code, checked: granted(code) }),
        el("span", { class: "pc-name", text: p.title }),
      ])
      : el("span", { class: "pc-name", text: p.title });
    return el("li", { class: "pc-purpose" }, [
      heading,
      el("details", {}, [
        el("summary", { text: T.details }),
        el("p", { text: p.description }),
        el("p", { text: `${T.recipients} ${p.recipients.join(" ; ")}` }),
      ]),
    ]);
  }

  function show(choosing, focus) {
    mount();
    const gpc = navigator.globalPrivacyControl === true;
    const form = el("form", {
      class: "pc-form",
      onsubmit: (event) => {
        event.preventDefault();
        const values = {};
        for (const code of C.purposes) values[code] = !!form.elements[code] && form.elements[code].checked;
        answer("custom", values);
      },
    }, [
      el("ul", { class: "pc-purposes" }, C.purposes.map((code) => purposeItem(code, choosing))),
      choosing ? el("button", { type: "submit", class: "pc-button pc-save", text: T.save }) : null,
    ]);
    const dialog = el("section", {
      class: "pc-banner",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": "pc-title",
      "aria-describedby": "pc-intro",
      tabindex: "-1",
      lang: lang,
      onkeydown: (event) => { if (event.key === "Escape") answer("refuse_all", all(false)); },
    }, [
      el("button", {
        type: "button", class: "pc-close", "aria-label": T.close, title: T.close, text: "×",
        onclick: () => answer("refuse_all", all(false)),
      }),
      el("h2", { id: "pc-title", text: T.title }),
      el("p", { id: "pc-intro", text: T.intro }),
      gpc ? el("p", { class: "pc-gpc", text: T.gpc }) : null,
      form,
      el("div", { class: "pc-actions" }, [
        el("button", {
          type: "button", class: "pc-button", "data-choice": "refuse_all", text: T.refuse_all,
          onclick: () => answer("refuse_all", all(false)),
        }),
        el("button", {
          type: "button", class: "pc-button", "data-choice": "accept_all", text: T.accept_all,
          onclick: () => answer("accept_all", all(true)),
        }),
        el("button", {
          type: "button", class: "pc-button", "data-choice": "choose", text: T.choose, "aria-expanded": String(choosing),
          onclick: () => show(true, true),
        }),
      ]),
      el("p", { class: "pc-policy" }, [el("a", { href: C.privacy, text: T.policy, rel: "noopener" })]),
    ]);
    root.replaceChildren(dialog);
    if (focus) {
      const first = choosing ? root.querySelector("input") : dialog;
      (first || dialog).focus();
    }
  }

  function notice() {
    mount();
    const box = el("section", { class: "pc-banner pc-notice", role: "status", lang: lang }, [
      el("p", { text: T.gpc_notice }),
      el("div", { class: "pc-actions pc-two" }, [
        el("button", { type: "button", class: "pc-button", text: T.settings, onclick: () => open() }),
        el("button", { type: "button", class: "pc-button", text: T.dismiss, onclick: () => close(true) }),
      ]),
    ]);
    root.replaceChildren(box);
  }

  function close(restore) {
    if (host) {
      host.remove();
      host = null;
      root = null;
    }
    if (restore && opener && opener.isConnected) opener.focus();
    opener = null;
  }

  function open() {
    opener = doc.activeElement;
    show(false, true);
  }

  // --- Start ---------------------------------------------------------------------------------------------------

  function count(path, body) {
    post(path, body).catch(() => { /* a count lost is not worth a retry */ });
  }

  // A visitor the web shop linked to a customer follows the customer's record: a choice made since in the portal, a
  // store or by phone wins here too. Their callbacks wait for that record (at most two seconds, then the kept choice).
  let ready = Promise.resolve();

  function check() {
    return post("/consent/v1/state", { visitor_id: stored.id }).then((r) => (r.ok ? r.json() : null)).then((state) => {
      if (!state || state.policy_version !== C.policy || !stored) return;
      const values = {};
      for (const code of C.purposes) values[code] = !!state.consents[code];
      const before = choices;
      const changed = C.purposes.some((code) => values[code] !== granted(code));
      if (state.linked) choices = values;
      keep(Object.assign({}, stored, state.linked ? { choices: values, linked: true } : { linked: false }));
      if (state.linked && changed) tell(before);
    }, () => {});
  }

  function start() {
    doc.addEventListener("click", (event) => {
      const link = event.target.closest && event.target.closest("[data-portal-consent=settings]");
      if (link) {
        event.preventDefault();
        opener = link;
        show(false, true);
      }
    });
    if (fresh(stored)) {
      if (!stored.sent) send();
      return;
    }
    if (navigator.globalPrivacyControl === true) {
      answer("gpc", all(false));
      notice();
      return;
    }
    count("/consent/v1/shown", {});
    show(false, false);
  }

  if (fresh(stored)) {
    const checked = check();
    if (stored.linked) ready = Promise.race([checked, new Promise((done) => setTimeout(done, 2000))]);
  }

  const api = {
    version: C.version,
    policyVersion: C.policy,
    purposes: C.purposes.slice(),
    /** Whether the visitor consented to `code` (false until they answer). */
    granted: granted,
    /** Every purpose with true or false; null while the visitor has not answered. */
    choices: () => (choices ? Object.assign({}, choices) : null),
    /** Call fn(true) when `code` is granted (at once if it is) and fn(false) when it is withdrawn. */
    onConsent: (code, fn) => {
      ready.then(() => {
        (listeners[code] = listeners[code] || []).push(fn);
        if (granted(code)) call(fn, true);
      });
    },
    /** Reopen the choices (what a "Cookie settings" link does). */
    open: open,
    /** The random visitor id, for the web shop to link to the customer at sign-in (null before an answer). */
    visitorId: () => (stored && fresh(stored) ? stored.id : null),
  };
  window.PortalConsent = api;
  const queue = window.portalConsentQueue;
  window.portalConsentQueue = { push: (fn) => call(fn, api) };
  if (Array.isArray(queue)) queue.forEach((fn) => call(fn, api));
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start);
  else start();
})();
