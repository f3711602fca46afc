// Shared by the dashboard and the demo page: calling the Tephra API with the
// API key, building DOM safely (text is never parsed as HTML) and formatting.

const KEY_STORAGE = "tephra.apiKey";
const keyListeners = [];

/** An answer that was not a success; `status` is 0 when nothing answered. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** The API key kept in localStorage, or "". */
export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

/** Calls `fn` after the user entered a new API key. */
export function onKeyChange(fn) {
  keyListeners.push(fn);
}

/**
 * Calls the API and returns the JSON answer. Throws ApiError on a non-2xx
 * answer (with the API's error message); a 401 also asks for the API key.
 */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (response.status === 401) askForKey(json?.error?.message);
  if (!response.ok) {
    const message = json?.error?.message || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, json);
  }
  return json;
}

/** Like `api`, but null instead of an error when the answer is 404 (no data yet). */
export async function apiOrNull(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

/** `encodeURIComponent`, for ids put into paths. */
export const enc = encodeURIComponent;

/** Shows the API key form (once) at the top of the page. */
function askForKey(message) {
  let box = document.getElementById("auth");
  if (!box) {
    box = h("div", { id: "auth" });
    document.body.prepend(box);
  }
  if (box.dataset.open === "true") return;
  box.dataset.open = "true";
  const input = h("input", {
    type: "password",
    name: "api-key",
    placeholder: "API key",
    autocomplete: "off",
    value: apiKey(),
  });
  const form = h(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        try {
          localStorage.setItem(KEY_STORAGE, input.value.trim());
        } catch {
          // Private windows may refuse storage; the key then lasts this page only.
        }
        box.dataset.open = "false";
        box.replaceChildren();
        for (const fn of keyListeners) fn();
      },
    },
    h("strong", {}, "This server needs an API key. "),
    message ? h("span", { class: "muted" }, `(${message}) `) : "",
    input,
    h("button", { type: "submit" }, "Use key"),
  );
  box.replaceChildren(form);
  input.focus();
}

/**
 * Creates an element. `attrs`: `class`, `on*` handlers, `dataset` (object),
 * anything else as an attribute (false/null/undefined skipped). Children:
 * nodes, strings (as text), arrays of those; null/false skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

/** Like `h` for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function appendAll(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** A number with thousands separators, or "—". */
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const rounded = Math.abs(value) < 0.5 * 10 ** -digits ? 0 : value;
  return Number(rounded).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A fraction as a percentage, or "—". */
export function pct(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  const percent = value * 100;
  // Tiny negatives (axis ticks near zero) would print as "-0.00%".
  return `${(Math.abs(percent) < 0.5 * 10 ** -digits ? 0 : percent).toFixed(digits)}%`;
}

/** An RFC 3339 time as local date and time, or "—". */
export function when(rfc3339) {
  if (!rfc3339) return "—";
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
}

/** What an error says, for showing on the page. */
export function describe(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return "The API key is missing or wrong: enter it above.";
    if (error.status === 0) return error.message;
    return `${error.status}: ${error.message}`;
  }
  return String(error?.message || error);
}

const itemCache = new Map();

/**
 * The items with these ids as a Map id → item (null for items that could not be
 * read), fetched in parallel and remembered for the life of the page.
 */
export async function itemsById(ids) {
  const missing = [...new Set(ids)].filter((id) => !itemCache.has(id));
  await Promise.all(
    missing.map(async (id) => {
      try {
        itemCache.set(id, await api(`/v1/items/${enc(id)}`));
      } catch {
        // Not remembered: the item may be readable later (after the API key is entered).
      }
    }),
  );
  return new Map(ids.map((id) => [id, itemCache.get(id) ?? null]));
}
