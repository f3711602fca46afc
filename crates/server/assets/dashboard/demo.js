// The Tephra Times: a small news portal for one reader (`/demo?reader=<user id>`).
// It shows the reader's personalized feed, stories related to the one last
// opened and what is trending, and tells Tephra what it did: every story shown
// in the feed or the Related box is an `impression` (with the answer's
// request_id, the 0-based position and the scene), every story opened a `click`,
// and the time spent on it, once the reader moves on, a `read` whose value is
// the seconds it was open.
//
// `document.body.dataset.ready` is "true" whenever the page is settled, for
// the browser tests.

import { api, describe, enc, h, itemsById, onKeyChange } from "./api.js";

const state = {
  reader: new URLSearchParams(location.search).get("reader"),
  opened: null,
  /** The story open now: the item, how it was shown, since when. */
  reading: null,
};

onKeyChange(() => start());
window.addEventListener("unhandledrejection", (event) => showError(event.reason));
start();

/** Loads everything for the reader. */
async function start() {
  document.body.dataset.ready = "false";
  clearError();
  try {
    if (!state.reader) {
      const first = await api("/v1/users?limit=1");
      state.reader = first.users[0]?.id ?? null;
    }
    await fillPicker();
    if (!state.reader) {
      document.getElementById("feed-list").replaceChildren(
        h("p", { class: "muted" }, "No readers yet: send some events to Tephra first (or run `tephra demo`)."),
      );
    } else {
      await Promise.all([loadFeed(), loadRelated(), loadTrending()]);
    }
  } catch (e) {
    showError(e);
  }
  document.body.dataset.ready = "true";
}

async function fillPicker() {
  const select = document.getElementById("reader");
  const page = await api("/v1/users?limit=100");
  const ids = page.users.map((u) => u.id);
  if (state.reader && !ids.includes(state.reader)) ids.unshift(state.reader);
  select.replaceChildren(...ids.map((id) => h("option", { value: id, selected: id === state.reader }, id)));
  select.onchange = () => {
    location.search = `?reader=${enc(select.value)}`;
  };
  if (state.reader) {
    document.getElementById("reader-link").href = `/dashboard#/users/${enc(state.reader)}`;
  }
}

/** Sends events; they are the point of the page, so a failure is shown. */
async function record(events) {
  if (events.length) await api("/v1/events", { method: "POST", body: events });
}

/** What was shown where: the answer's request_id, the position and the scene. */
function shownAs(answer, position) {
  return { request_id: answer.request_id, position, scene: answer.scene };
}

/** Shows a recommendation answer in `list` and records the impressions. */
async function showAnswer(list, answer, compact) {
  const items = await itemsById(answer.items.map((r) => r.id));
  list.replaceChildren(
    ...answer.items.map((r, position) => story(items.get(r.id) ?? { id: r.id }, shownAs(answer, position), compact)),
  );
  if (!answer.items.length) list.replaceChildren(h("p", { class: "muted" }, "Nothing to show yet."));
  await record(
    answer.items.map((r, position) => ({
      user_id: state.reader,
      item_id: r.id,
      type: "impression",
      ...shownAs(answer, position),
    })),
  );
}

async function loadFeed() {
  const feed = await api(`/v1/recommend/${enc(state.reader)}?n=10`);
  // Which arm of a running experiment this reader's feed comes from.
  document.getElementById("feed-arm").textContent = feed.experiment
    ? `Experiment ${feed.experiment.name}: this reader gets the ${feed.experiment.variant} feed.`
    : "";
  await showAnswer(document.getElementById("feed-list"), feed, false);
}

async function loadRelated() {
  const list = document.getElementById("related-list");
  if (!state.opened) {
    list.replaceChildren(h("p", { class: "muted" }, "Open a story to see related ones."));
    return;
  }
  const related = await api(`/v1/items/${enc(state.opened)}/similar?n=5`);
  await showAnswer(list, related, true);
}

async function loadTrending() {
  const list = document.getElementById("trending-list");
  const trending = await api("/v1/trending?n=5");
  const items = await itemsById(trending.items.map((r) => r.id));
  list.replaceChildren(...trending.items.map((r) => story(items.get(r.id) ?? { id: r.id }, {}, true)));
  if (!trending.items.length) list.replaceChildren(h("p", { class: "muted" }, "Nothing is trending yet."));
}

/** One story teaser; opening it records a click with how it was shown. */
function story(item, shown, compact) {
  const open = (event) => {
    event.preventDefault();
    openStory(item, shown);
  };
  return h(
    "article",
    {
      class: "story",
      dataset: {
        item: item.id,
        position: shown.position ?? "",
        requestId: shown.request_id ?? "",
      },
    },
    h("div", { class: "labels" }, (item.categories ?? []).map((c) => h("span", { class: "label" }, c))),
    h(compact ? "h4" : "h3", {}, h("a", { href: `#${enc(item.id)}`, onclick: open }, item.title || item.id)),
    !compact && item.text ? h("p", {}, snippet(item.text)) : "",
  );
}

function snippet(text) {
  return text.length > 160 ? `${text.slice(0, 157).trimEnd()}…` : text;
}

/** Records how long the open story was read, if one is open. */
async function finishReading() {
  const reading = state.reading;
  if (!reading) return;
  state.reading = null;
  const seconds = Math.max(1, Math.round((Date.now() - reading.since) / 1000));
  try {
    await record([{ user_id: state.reader, item_id: reading.item.id, type: "read", value: seconds, ...reading.shown }]);
  } catch (e) {
    // A server configured without the `read` type refuses it; reading time is optional.
    if (e.status !== 422) throw e;
  }
}

async function openStory(item, shown) {
  document.body.dataset.ready = "false";
  clearError();
  try {
    await finishReading();
    await record([{ user_id: state.reader, item_id: item.id, type: "click", ...shown }]);
    state.reading = { item, shown, since: Date.now() };
    state.opened = item.id;
    showArticle(item);
    await Promise.all([loadRelated(), loadFeed()]);
  } catch (e) {
    showError(e);
  }
  document.body.dataset.ready = "true";
}

function showArticle(item) {
  const article = document.getElementById("article");
  article.hidden = false;
  article.dataset.item = item.id;
  const published = item.published_at ? new Date(item.published_at).toLocaleString() : "";
  article.replaceChildren(
    h("div", { class: "labels" }, (item.categories ?? []).map((c) => h("span", { class: "label" }, c))),
    h("h2", {}, item.title || item.id),
    published ? h("p", { class: "muted" }, `Published ${published}`) : "",
    h("p", { class: "text" }, item.text || "(This story has no text.)"),
    h(
      "button",
      {
        onclick: () => {
          article.hidden = true;
          finishReading().catch(showError);
        },
      },
      "Close",
    ),
  );
  article.scrollIntoView({ block: "start" });
}

function showError(error) {
  document.getElementById("status").replaceChildren(h("div", { class: "error", role: "alert" }, describe(error)));
}

function clearError() {
  document.getElementById("status").replaceChildren();
}
